"""`RolloutConfig`: the settings of model rollouts (the ``rollout:`` section of a training config),
torch-free so that the command line shows their defaults quickly.

:class:`~morec.rollout.engine.RolloutEngine` reads ``horizon``, ``samples_per_member``, ``penalty_coef``
and ``candidate_clip``; the training loop reads ``batch_size``, ``freq`` and ``retain_epochs``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RolloutConfig:
    horizon: int = 5
    batch_size: int = 50_000  # start states per rollout
    freq: int = 1000  # gradient steps between rollouts
    retain_epochs: int = 5  # model buffer holds batch_size * horizon * retain_epochs transitions
    samples_per_member: int = 1  # Gaussian draws per elite; candidates K = elites x samples (MOREC: 2)
    penalty_coef: float = 0.0  # MOPO's lambda: reward -= lambda * max over members of ||sigma||
    candidate_clip: float | None = (
        None  # clip candidates (next state and reward) to +-this (the released MOREC code: 25 on D4RL); None: no clip
    )

    def __post_init__(self) -> None:
        for name in ("horizon", "batch_size", "freq", "retain_epochs", "samples_per_member"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.penalty_coef < 0:
            raise ValueError(f"penalty_coef must be 0 (no penalty) or more, got {self.penalty_coef}")
        if self.candidate_clip is not None and not self.candidate_clip > 0:
            raise ValueError(f"candidate_clip must be positive or null (no clip), got {self.candidate_clip}")
