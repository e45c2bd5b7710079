"""`SACConfig`: the behaviour SAC's settings, free of torch so the command line can show defaults."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SACConfig:
    """Online SAC for behaviour policies. Defaults are sized for a few CPU minutes on Hopper; the
    D4RL behaviour policies were trained for 1M+ steps with 256x256 networks."""

    train_steps: int = 30_000  # environment steps (one gradient step each after warm-up)
    warmup_steps: int = 2_000  # uniform random actions before learning starts
    hidden_size: int = 128
    batch_size: int = 256
    actor_lr: float = 1e-3
    critic_lr: float = 1e-3
    alpha_lr: float = 1e-3
    alpha: float | None = None  # a fixed entropy weight; None: tuned to the target entropy -dim(A), starting at 1
    gamma: float = 0.99
    tau: float = 0.005
    eval_every: int = 2_500  # environment steps between evaluations / checkpoints
    eval_episodes: int = 5

    def __post_init__(self) -> None:
        for name in ("actor_lr", "critic_lr", "alpha_lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive (--lr), got {getattr(self, name)}")
        if self.alpha is not None and not self.alpha > 0:
            raise ValueError(f"alpha must be positive or None (tuned), got {self.alpha} (--alpha)")
