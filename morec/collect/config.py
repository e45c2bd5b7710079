"""``morec collect``'s settings, free of torch so the command line can show defaults: :class:`SACConfig`
(the behaviour SAC) and :class:`CollectConfig` (what is recorded)."""

from __future__ import annotations

from dataclasses import dataclass, field

from morec.tasks import D4RL_LEVELS, get_task


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

    # the command-line flag that sets each count (batch_size and eval_episodes have none)
    FLAGS = {
        "train_steps": "--train-steps",
        "warmup_steps": "--warmup-steps",
        "eval_every": "--eval-every",
        "hidden_size": "--hidden-size",
    }

    def __post_init__(self) -> None:
        for name in ("train_steps", "eval_every", "hidden_size", "batch_size", "eval_episodes", "warmup_steps"):
            low = 0 if name == "warmup_steps" else 1
            if getattr(self, name) < low:
                flag = f" ({self.FLAGS[name]})" if name in self.FLAGS else ""
                raise ValueError(f"{name} must be at least {low}, got {getattr(self, name)}{flag}")
        for name in ("actor_lr", "critic_lr", "alpha_lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive (--lr), got {getattr(self, name)}")
        if self.alpha is not None and not self.alpha > 0:
            raise ValueError(f"alpha must be positive or None (tuned), got {self.alpha} (--alpha)")


@dataclass
class CollectConfig:
    env_id: str = "Hopper-v4"
    out_dir: str = "data/hopper"
    dataset_size: int = 20_000  # transitions in each of random, medium and expert
    levels: tuple[str, ...] = D4RL_LEVELS
    seed: int = 0
    neorl: bool = False  # also write NeoRL-format npz files
    # envs recorded side by side, one batched policy call per step; each env's last episode is cut
    # by its share of the budget, so None (auto) keeps every share at least STEPS_PER_ENV steps
    num_envs: int | None = None
    device: str = "cpu"
    sac: SACConfig = field(default_factory=SACConfig)

    def __post_init__(self) -> None:
        get_task(self.env_id)
        unknown = [lvl for lvl in self.levels if lvl not in D4RL_LEVELS]
        if unknown:
            raise ValueError(f"unknown level(s) {unknown}: choose from {list(D4RL_LEVELS)}")
        if self.dataset_size < 1:
            raise ValueError(f"dataset_size must be positive, got {self.dataset_size}")
        if self.num_envs is not None and not 1 <= self.num_envs <= 1_000:  # each level's env seeds lie 1,000 apart
            raise ValueError(f"num_envs must be between 1 and 1000, got {self.num_envs} (--envs)")

    STEPS_PER_ENV = 10_000  # auto: at least this many steps per env (about ten Hopper episodes)
    MAX_AUTO_ENVS = 64  # auto: at most this many (more add little: scripts/bench_collect.py)

    @property
    def recording_envs(self) -> int:
        """The envs each level is recorded with (``num_envs``, or auto)."""
        if self.num_envs is not None:
            return self.num_envs
        return max(1, min(self.MAX_AUTO_ENVS, self.dataset_size // self.STEPS_PER_ENV))
