"""MOREC's settings, free of torch so that a training config validates without it and the command
line shows defaults quickly: :class:`DynamicsRewardConfig` (the reward and its training),
:class:`DistillationConfig` (its one-network student), :class:`MorecFilterConfig` (the rollout
filter) and :class:`FilterCheckConfig` (checking the filter against the simulator)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from morec.rollout.config import RolloutConfig

MIN_SNAPSHOTS = 5  # fewer is hardly a historical ensemble: warned about
GENERATORS = ("adversarial", "fixed", "scratch")


class FewSnapshotsWarning(UserWarning):
    """The reward uses (or a config plans) fewer than ``MIN_SNAPSHOTS`` discriminator snapshots."""


@dataclass
class DynamicsRewardConfig:
    """Discriminator architecture and adversarial training settings (our reconstruction: the
    authors never released the training code; see morec/dynamics_reward/training.py)."""

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


AUTO = "auto"


SCORE_DTYPES = ("float32", "bfloat16")  # filter.score_dtype: the precision r_D's hidden layers score in


def check_score_dtype(name: str) -> str:
    """``name`` if it is one of :data:`SCORE_DTYPES`, else a ``ValueError`` naming them."""
    if name not in SCORE_DTYPES:
        raise ValueError(f"score_dtype must be one of {', '.join(SCORE_DTYPES)}, got {name!r}")
    return name


@dataclass
class MorecFilterConfig:
    mode: str = (
        "softmax"  # "softmax" or "argmax" of the score; "random": a uniform pick (an ablation: truncation alone)
    )
    temperature: float = 0.1
    consensus_weight: float = 1.0  # 0 = the paper (select by r_D alone); see morec.dynamics_reward.filter
    threshold: float | str = AUTO  # "auto" (see false_truncation_target) or a number (the paper: 0.6)
    false_truncation_target: float = 0.02  # "auto": at most this fraction of held-out real data is cut
    truncate_as: str = "terminal"  # "terminal" (the paper) or "stop": end the rollout without a terminal flag
    distilled: bool = False  # morec train: score with one network distilled from the snapshots (morec distil-reward)
    score_dtype: str = "float32"  # "bfloat16": r_D's hidden layers in bfloat16 (fast where the CPU has AMX/AVX512-BF16)
    min_rollout_length: int = 0

    def __post_init__(self) -> None:
        if self.mode not in ("softmax", "argmax", "random"):
            raise ValueError(f"mode must be 'softmax', 'argmax' or 'random', got {self.mode!r}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")
        if self.consensus_weight < 0:
            raise ValueError(f"consensus_weight must be >= 0 (0 = the paper), got {self.consensus_weight}")
        if isinstance(self.threshold, str) and self.threshold != AUTO:
            raise ValueError(f"threshold must be a number or 'auto', got {self.threshold!r}")
        if not 0 < self.false_truncation_target < 1:
            raise ValueError(f"false_truncation_target must be in (0, 1), got {self.false_truncation_target}")
        if self.truncate_as not in ("terminal", "stop"):
            raise ValueError(f"truncate_as must be 'terminal' or 'stop', got {self.truncate_as!r}")
        check_score_dtype(self.score_dtype)


@dataclass
class FilterCheckConfig:
    horizon: int = 100
    samples_per_member: int = 2  # candidates K = elites x samples (MOREC: 2)
    candidate_clip: float | None = None
    matched_steps: int = 10  # steps 1..matched_steps enter step_matched_error_ratio
    seed: int = 0

    def __post_init__(self) -> None:
        self.rollout()  # horizon and samples_per_member >= 1, candidate_clip positive or None: RolloutConfig's checks
        if self.matched_steps < 1:
            raise ValueError(f"matched_steps must be at least 1, got {self.matched_steps}")

    def rollout(self) -> RolloutConfig:
        return RolloutConfig(
            horizon=self.horizon, samples_per_member=self.samples_per_member, candidate_clip=self.candidate_clip
        )
