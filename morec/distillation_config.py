"""`DistillationConfig`: how :mod:`morec.reward_distillation` fits one network to a dynamics
reward's snapshot ensemble (torch-free, so the command line shows its defaults quickly)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class DistillationConfig:
    hidden_sizes: tuple[int, ...] = (256, 256)  # the student's; the teacher has N snapshots of its own
    updates: int = 5000
    batch_size: int = 256  # rows (s, a) per update, each with K candidates and the real s'
    lr: float = 1e-3
    rank_coef: float = 1.0  # weight of the KL between teacher and student picks
    rank_temperature: float = 0.1  # the filter's softmax temperature
    random_action_fraction: float = 0.5  # rows with uniform random actions instead of the dataset's
    model_steps: int = 5  # rows are at dataset states or 1..model_steps steps into model rollouts
    holdout_fraction: float = 0.1  # dataset rows kept out of distillation to measure agreement
    seed: int = 0

    def __post_init__(self) -> None:
        self.hidden_sizes = tuple(self.hidden_sizes)
        if self.updates < 1 or self.batch_size < 1:
            raise ValueError("updates and batch_size must be positive")
        if not 0 < self.holdout_fraction < 1:
            raise ValueError(f"holdout_fraction must be in (0, 1), got {self.holdout_fraction}")
        if not 0 <= self.random_action_fraction <= 1:
            raise ValueError(f"random_action_fraction must be in [0, 1], got {self.random_action_fraction}")
        if self.model_steps < 0:
            raise ValueError(f"model_steps must be >= 0, got {self.model_steps}")
