"""Training batches: :class:`MixedSampler` draws real and model rows for one learner,
:class:`StackedSampler` the seeds' batches for a stacked one."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from morec.learners.sac_step import MixedBatch
from morec.rollout.buffer import ModelBuffer, TransitionBatch


class MixedSampler:
    """Draws ``int(n * real_ratio)`` real rows and the rest from the model buffer (all real when
    the model buffer is empty)."""

    def __init__(self, real: TransitionBatch, model: ModelBuffer, real_ratio: float, generator: torch.Generator):
        if not 0.0 <= real_ratio <= 1.0:
            raise ValueError(f"real_ratio must be in [0, 1], got {real_ratio}")
        self.real, self.model, self.real_ratio, self.generator = real, model, real_ratio, generator

    def sample(self, n: int) -> MixedBatch:
        return self.gather(*self.draw_rows(n))

    def draw_rows(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Row indices of a batch of ``n``: ``[n_real]`` into the real data and ``[n - n_real]`` into
        the model buffer (``None`` when it is empty)."""
        n_real = n if len(self.model) == 0 else int(n * self.real_ratio)
        real_rows = torch.randint(
            len(self.real), (n_real,), device=self.real.observations.device, generator=self.generator
        )
        model_rows = self.model.draw_rows(n - n_real, generator=self.generator) if n - n_real else None
        return real_rows, model_rows

    def gather(self, real_rows: torch.Tensor, model_rows: torch.Tensor | None) -> MixedBatch:
        """The batch at these rows, real rows first."""
        parts = [TransitionBatch(*(getattr(self.real, f)[real_rows] for f in ModelBuffer.FIELDS))]
        if model_rows is not None:
            parts.append(self.model.rows(model_rows))
        batch = TransitionBatch(*(torch.cat([getattr(p, f) for p in parts]) for f in ModelBuffer.FIELDS))
        return MixedBatch(batch, 0 if model_rows is None else len(model_rows))


class StackedSampler:
    """The seeds' :class:`MixedSampler` s: each draws its rows with its own generator;
    :meth:`gather` stacks the batches into fields ``[S, B, ...]``."""

    def __init__(self, samplers: Sequence[MixedSampler]):
        self.samplers = list(samplers)

    def draw_rows(self, n: int) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """Each seed's row indices (see :meth:`MixedSampler.draw_rows`)."""
        return [sampler.draw_rows(n) for sampler in self.samplers]

    def gather(self, real_rows: torch.Tensor, model_rows: torch.Tensor | None) -> MixedBatch:
        """The batch at ``real_rows [S, n_real]`` and ``model_rows [S, n_model]``, real rows first."""
        batches = [
            sampler.gather(real_rows[s], None if model_rows is None else model_rows[s])
            for s, sampler in enumerate(self.samplers)
        ]
        fields = (torch.stack([getattr(b.transitions, f) for b in batches]) for f in ModelBuffer.FIELDS)
        return MixedBatch(TransitionBatch(*fields), batches[0].n_model)
