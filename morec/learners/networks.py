"""Actor (built by :func:`morec.actor.build_actor`), its tanh-Gaussian sampling and
log-probability, and the twin critic for the model-based SAC learners."""

from __future__ import annotations

import math
from typing import cast

import torch
from tianshou.algorithm.modelfree.sac import correct_log_prob_gaussian_tanh
from tianshou.utils.net.common import Net
from tianshou.utils.net.continuous import SIGMA_MAX, SIGMA_MIN, ContinuousActorProbabilistic
from torch import nn

from morec.actor import build_actor
from morec.dynamics.layers import EnsembleLinear, relu_

__all__ = ["TANH_EPS", "TwinCritic", "build_actor", "gaussian_parameters", "sample_action", "tanh_gaussian_log_prob"]

TANH_EPS = 1e-6  # inside log(1 - tanh^2 + eps), as OfflineRL-Kit (tianshou's default is float32's eps)


def tanh_gaussian_log_prob(
    mu: torch.Tensor, sigma: torch.Tensor, pre: torch.Tensor, action: torch.Tensor
) -> torch.Tensor:
    """``[B]`` log-probability of ``action = tanh(pre)`` ``[B, A]`` with ``pre ~ N(mu, sigma)``: the
    Gaussian's, then tianshou's tanh correction."""
    log_prob = (-0.5 * ((pre - mu) / sigma).pow(2) - sigma.log() - 0.5 * math.log(2 * math.pi)).sum(-1)
    return correct_log_prob_gaussian_tanh(log_prob.unsqueeze(-1), action, eps=TANH_EPS).squeeze(-1)


def gaussian_parameters(actor: nn.Module, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mu, sigma)`` ``[B, A]`` of ``obs [B, O]``: the numbers ``actor(obs)`` gives, from its layers
    run here. tianshou's ``MLP.forward`` casts each input to float32, so under bfloat16 autocast
    (MOBILE's ``penalty_dtype``) each head would turn the bfloat16 trunk output ``[B, H]`` into
    float32 and autocast back again; here it stays bfloat16, and ReLU runs in place (``relu_``)."""
    actor = cast(ContinuousActorProbabilistic, actor)  # as build_actor makes it
    h = obs
    for layer in cast(Net, actor.preprocess).model.model:
        h = relu_(h) if isinstance(layer, nn.ReLU) else layer(h)
    mu = actor.mu.model(h)
    sigma = actor.sigma.model(h).clamp(min=SIGMA_MIN, max=SIGMA_MAX).exp()
    return mu, sigma


def sample_action(actor: nn.Module, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Reparameterised tanh-Gaussian action ``[..., A]`` and its log-probability ``[...]``
    (with the tanh correction). ``obs`` may have leading dimensions ``[..., O]``."""
    lead = obs.shape[:-1]
    mu, sigma = gaussian_parameters(actor, obs.reshape(-1, obs.shape[-1]))
    pre = mu + sigma * torch.randn_like(mu)
    action = torch.tanh(pre)
    log_prob = tanh_gaussian_log_prob(mu, sigma, pre, action)
    return action.reshape(*lead, -1), log_prob.reshape(lead)


class TwinCritic(nn.Module):
    """``num_critics`` Q networks run as one: ``(obs [..., B, O], act [..., B, A]) -> Q [C, ...]``."""

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden_sizes: tuple[int, ...],
        num_critics: int = 2,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        sizes = (obs_dim + act_dim, *hidden_sizes, 1)
        self.layers = nn.ModuleList(
            EnsembleLinear(num_critics, i, o, generator=generator) for i, o in zip(sizes[:-1], sizes[1:])
        )
        for layer in self.linears:  # PyTorch's default Linear initialisation, as SAC implementations use
            bound = 1 / math.sqrt(layer.weight.shape[1])
            nn.init.uniform_(layer.weight, -bound, bound, generator=generator)
            nn.init.uniform_(layer.bias, -bound, bound, generator=generator)

    @property
    def linears(self) -> list[EnsembleLinear]:
        """The layers, input first (``self.layers`` holds them as modules)."""
        return cast(list[EnsembleLinear], list(self.layers))

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        lead = obs.shape[:-1]
        x = torch.cat([obs, act], dim=-1).reshape(-1, obs.shape[-1] + act.shape[-1])  # [N, I]
        if x.device.type == "cpu" and not torch.compiler.is_compiling():
            return self._split(x).reshape(-1, *lead)
        return self._batched(x).reshape(-1, *lead)

    def _batched(self, x: torch.Tensor) -> torch.Tensor:
        """``[C, N]``, one batched product per layer over all critics: the fewest kernels (a GPU step
        is launch-bound) and the form ``torch.compile`` fuses best."""
        *hidden, last = self.linears
        for layer in hidden:
            x = torch.relu(layer(x))
        with torch.autocast(x.device.type, enabled=False):  # see _split
            if x.dim() == 2:  # no hidden layer
                return last(x.float())[..., 0]
            return torch.baddbmm(last.bias.float(), x.float(), last.weight.float())[..., 0]

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        """``[C, N]``, the same values with fewer passes over memory, for eager runs on the CPU: the
        first layer of all critics as one product over their stacked weights (``[N, I] @ [I, C * H]``),
        then each critic's layers as plain products on its column block, the bias inside the product
        and ReLU in place (bfloat16 through its bits: ``relu_``; how much faster: docs/speed.md)."""
        first, *rest = self.linears
        num_critics, in_features, out_features = first.weight.shape
        if not rest:
            return self._batched(x)
        h = torch.addmm(first.bias.reshape(-1), x, first.weight.permute(1, 0, 2).reshape(in_features, -1))  # [N, C * H]
        xs = relu_(h).split(out_features, dim=1)  # C column blocks [N, H]
        for layer in rest[:-1]:
            xs = [relu_(torch.addmm(layer.bias[c, 0], xc, layer.weight[c])) for c, xc in enumerate(xs)]
        last = rest[-1]
        # the output layer in float32 even under autocast: a bfloat16 Q of 250 is a multiple of 2
        with torch.autocast(x.device.type, enabled=False):
            q = [torch.addmm(last.bias[c, 0].float(), xc.float(), last.weight[c].float()) for c, xc in enumerate(xs)]
        return torch.cat(q, dim=1).t()
