"""`CollectConfig`: what ``morec collect`` records, free of torch so the command line can show defaults."""

from __future__ import annotations

from dataclasses import dataclass, field

from morec.sac_config import SACConfig
from morec.tasks import D4RL_LEVELS, get_task


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
    MAX_AUTO_ENVS = 64  # auto: at most this many (64 record about 5x as fast as one; more add little)

    @property
    def recording_envs(self) -> int:
        """The envs each level is recorded with (``num_envs``, or auto)."""
        if self.num_envs is not None:
            return self.num_envs
        return max(1, min(self.MAX_AUTO_ENVS, self.dataset_size // self.STEPS_PER_ENV))
