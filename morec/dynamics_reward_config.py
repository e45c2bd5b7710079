"""`DynamicsRewardConfig`: how the MOREC dynamics reward is built and trained (torch-free, so the
command line can show its defaults)."""

from __future__ import annotations

import math
from dataclasses import dataclass

MIN_SNAPSHOTS = 5  # fewer is hardly a historical ensemble: warned about
GENERATORS = ("adversarial", "fixed", "scratch")


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
    entropy_target: float | None = None  # set: tune the bonus's weight (from entropy_coef) so the discriminator's
    # mean Bernoulli entropy stays near this, as the released loader's auto_ent_coeff_optim names (0.35); None: fixed
    grad_penalty_coef: float = 0.0  # gradient penalty on interpolates between real and generated
    generator: str = "adversarial"  # "adversarial": a copy of the MLE ensemble trained against D; "fixed": the MLE
    # ensemble itself; "scratch": a newly initialised ensemble trained against D (and by MLE) from the start
    generator_lr: float = 1e-4
    mle_coef: float = 1.0  # weight of the generator's Gaussian NLL anchor on real data
    generator_entropy_coef: float = 1e-3
    calibration_size: int = 2048  # held-out real transitions that calibrate each snapshot
    negative_steps: int = 1  # 1: negatives one step ahead at dataset (s, a) (the paper's reading); k > 1: the
    # generator rolled 1..k steps (uniform) along dataset trajectories with the dataset's actions
    contrastive_coef: float = 0.0  # > 0 adds a deviation from the paper: rank the real s' above K generator
    # candidates at the same (s, a) (softmax cross-entropy), what the filter's pick relies on
    contrastive_samples_per_member: int = 2  # candidates K = elites x this (the filter's default: 2)
    logit_clip: float | None = None  # clip the discriminator's logits to +-this inside its losses

    def __post_init__(self) -> None:
        self.hidden_sizes = tuple(self.hidden_sizes)
        if self.generator not in GENERATORS:
            raise ValueError(f"generator must be one of {', '.join(GENERATORS)}, got {self.generator!r}")
        if self.snapshot_interval < 1 or self.snapshot_stride < 1 or self.max_snapshots < 1:
            raise ValueError("snapshot_interval, snapshot_stride and max_snapshots must be positive")
        if self.negative_steps < 1:
            raise ValueError(f"negative_steps must be at least 1 (1: one-step negatives), got {self.negative_steps}")
        if self.contrastive_coef < 0 or self.contrastive_samples_per_member < 1:
            raise ValueError("contrastive_coef must be >= 0 and contrastive_samples_per_member >= 1")
        if self.entropy_target is not None and not 0 < self.entropy_target < math.log(2):
            raise ValueError(f"entropy_target must be in (0, log 2 = 0.693) nats or None, got {self.entropy_target}")
        if self.logit_clip is not None and self.logit_clip <= 0:
            raise ValueError(f"logit_clip must be positive or None, got {self.logit_clip}")

    @property
    def planned_snapshots(self) -> int:
        """Snapshots the reward will use if every one separates the data (``e_i > g_i``)."""
        kept = min(self.num_updates // self.snapshot_interval, self.max_snapshots)
        return -(-kept // self.snapshot_stride)
