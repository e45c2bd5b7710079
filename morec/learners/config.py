"""The learners' settings: :class:`AgentConfig` (SAC, shared by MOPO and MOBILE) and
:class:`MobileConfig`, free of torch so that a training config validates without it."""

from __future__ import annotations

from dataclasses import dataclass

ALGORITHMS = ("mobile", "mopo")  # a training config's `algorithm`; morec.training.factory.LEARNERS builds each


@dataclass
class AgentConfig:
    """SAC settings shared by MOPO and MOBILE (OfflineRL-Kit defaults)."""

    hidden_sizes: tuple[int, ...] = (256, 256)
    actor_lr: float = 1e-4  # cosine-annealed to 0 over the run
    critic_lr: float = 3e-4
    alpha_lr: float = 1e-4
    gamma: float = 0.99
    tau: float = 0.005
    auto_alpha: bool = True
    alpha: float = 0.2  # the fixed entropy weight when auto_alpha is off
    target_entropy: float | None = None  # default: -act_dim
    num_critics: int = 2

    def __post_init__(self) -> None:
        self.hidden_sizes = tuple(self.hidden_sizes)


@dataclass
class MobileConfig:
    beta: float = 0.5  # penalty coefficient
    num_samples: int = 10  # next-state samples per elite
    deterministic_backup: bool = False
    target_lower_bound: float | None = 0.0  # None: no clamp (tasks with negative returns)
    actor_on_target_critics: bool = False  # MOREC-MOBILE's "accelerate" variant
    # "bfloat16": the penalty's actor and critic passes (no gradients) in bfloat16 under autocast, the
    # critics' output layer in float32: faster MOBILE steps where bfloat16 matrix products are fast
    # (CPUs with AVX512-BF16 or AMX, recent GPUs); docs/speed.md has the speed and how much u changes
    penalty_dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.penalty_dtype not in ("float32", "bfloat16"):
            raise ValueError(f"penalty_dtype must be 'float32' or 'bfloat16', got {self.penalty_dtype!r}")


@dataclass
class BCConfig:
    """Behaviour cloning: the actor's hidden sizes, Adam's learning rate, batch size and updates."""

    hidden_sizes: tuple[int, ...] = (256, 256)
    lr: float = 1e-4
    batch_size: int = 256
    steps: int = 10_000
