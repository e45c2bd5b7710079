"""Batched ensemble layers: all members run in one matmul per layer."""

from __future__ import annotations

import math

import torch
from torch import nn


class EnsembleLinear(nn.Module):
    """``E`` independent linear layers. Weight ``[E, in, out]``, bias ``[E, 1, out]``.

    Input ``[B, in]`` (the same batch for every member) or ``[E, B, in]`` (one batch per member);
    output ``[E, B, out]``. ``weight_decay`` is this layer's L2 coefficient (see :meth:`l2_penalty`).
    """

    weight: nn.Parameter  # [E, in, out]
    bias: nn.Parameter  # [E, 1, out]

    def __init__(
        self,
        num_members: int,
        in_features: int,
        out_features: int,
        weight_decay: float = 0.0,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_members, in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(num_members, 1, out_features))
        self.weight_decay = weight_decay
        std = 1.0 / (2.0 * math.sqrt(in_features))
        nn.init.trunc_normal_(self.weight, std=std, a=-2 * std, b=2 * std, generator=generator)

    def forward(self, x: torch.Tensor, members: torch.Tensor | None = None) -> torch.Tensor:
        """``members``: indices of the members to run (all by default); the output then has
        ``len(members)`` rows in the first dimension, in that order."""
        return ensemble_linear(x, *self.selected(members))

    def selected(self, members: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(weight [E', in, out], bias [E', 1, out])`` of ``members`` (all by default)."""
        return (self.weight, self.bias) if members is None else (self.weight[members], self.bias[members])

    def l2_penalty(self) -> torch.Tensor:
        """``weight_decay * 0.5 * ||W||^2`` summed over members."""
        return self.weight_decay * 0.5 * self.weight.pow(2).sum()


def ensemble_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``x [B, in]`` (shared by every member) or ``[E, B, in]`` times ``weight [E, in, out]`` plus
    ``bias [E, 1, out]`` -> ``[E, B, out]``."""
    if x.dim() == 2:
        return torch.matmul(x, weight) + bias
    return torch.baddbmm(bias, x, weight)


def swish(x: torch.Tensor) -> torch.Tensor:
    """``x * sigmoid(x)`` in one fused kernel (SiLU)."""
    return torch.nn.functional.silu(x)


ACTIVATIONS = {"swish": swish, "relu": torch.relu}


def relu_(h: torch.Tensor) -> torch.Tensor:
    """``max(h, 0)`` in place. bfloat16 on the CPU goes through its bits as int16: the sign bit makes
    exactly the negative numbers negative integers, so clamping the integers at 0 zeroes them (the
    same numbers, 5x as fast as bfloat16's own ``relu_`` on one CPU thread; a NaN with its sign bit
    set becomes 0). Under autograd (``h`` requires grad) and ``torch.compile`` it is ``h.relu_()``."""
    if (
        h.dtype == torch.bfloat16
        and h.device.type == "cpu"
        and not h.requires_grad
        and not torch.compiler.is_compiling()
    ):
        h.view(torch.int16).relu_()
        return h
    return h.relu_()


def soft_clamp(x: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Differentiable clamp of ``x`` into ``(low, high)`` with softplus edges."""
    x = high - nn.functional.softplus(high - x)
    return low + nn.functional.softplus(x - low)
