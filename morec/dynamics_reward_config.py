"""`DynamicsRewardConfig`: how the MOREC dynamics reward is built and trained (torch-free, so the
command line can show its defaults)."""

from __future__ import annotations

from dataclasses import dataclass

MIN_SNAPSHOTS = 5  # fewer is hardly a historical ensemble: warned about


class FewSnapshotsWarning(UserWarning):
    """The reward uses (or a config plans) fewer than ``MIN_SNAPSHOTS`` discriminator snapshots."""


@dataclass
class DynamicsRewardConfig:
    """Discriminator architecture and adversarial training settings (our reconstruction: the
    authors never released the training code; see morec/reward_training.py)."""

    hidden_sizes: tuple[int, ...] = (256, 256)
    discriminator_lr: float = 3e-4
    batch_size: int = 256
    num_updates: int = 10_000  # discriminator updates
    snapshot_interval: int = 100  # discriminator updates between snapshots
    max_snapshots: int = 400  # history kept (the released runs keep the last 400)
    snapshot_stride: int = 10  # every stride-th of the kept history enters the reward (MOPO: 10)
    entropy_coef: float = 1e-3  # Bernoulli-entropy bonus on the discriminator (GAIL default)
    grad_penalty_coef: float = 0.0  # gradient penalty on interpolates between real and generated
    generator: str = "adversarial"  # "adversarial": the generator is trained against D; "fixed": the MLE ensemble
    generator_lr: float = 1e-4
    mle_coef: float = 1.0  # weight of the generator's Gaussian NLL anchor on real data
    generator_entropy_coef: float = 1e-3
    calibration_size: int = 2048  # held-out real transitions that calibrate each snapshot

    def __post_init__(self) -> None:
        self.hidden_sizes = tuple(self.hidden_sizes)
        if self.generator not in ("adversarial", "fixed"):
            raise ValueError(f"generator must be 'adversarial' or 'fixed', got {self.generator!r}")
        if self.snapshot_interval < 1 or self.snapshot_stride < 1 or self.max_snapshots < 1:
            raise ValueError("snapshot_interval, snapshot_stride and max_snapshots must be positive")

    @property
    def planned_snapshots(self) -> int:
        """Snapshots the reward will use if every one separates the data (``e_i > g_i``)."""
        kept = min(self.num_updates // self.snapshot_interval, self.max_snapshots)
        return -(-kept // self.snapshot_stride)
