"""The MOREC filter's settings (:class:`MorecFilterConfig`) and those of checking it
(:class:`FilterCheckConfig`), torch-free so that the command line shows their defaults quickly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from morec.rollout import RolloutConfig

AUTO = "auto"


@dataclass
class MorecFilterConfig:
    mode: str = "softmax"  # "softmax" or "argmax" of the score; "random": a uniform pick (an ablation: truncation alone)
    temperature: float = 0.1
    consensus_weight: float = 1.0  # 0 = the paper (select by r_D alone); see morec.filter
    threshold: float | str = AUTO  # "auto" (see false_truncation_target) or a number (the paper: 0.6)
    false_truncation_target: float = 0.02  # "auto": at most this fraction of held-out real data is cut
    truncate_as: str = "terminal"  # "terminal" (the paper) or "stop": end the rollout without a terminal flag
    distilled: bool = False  # morec train: score with one network distilled from the snapshots (morec distil-reward)
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


@dataclass
class FilterCheckConfig:
    horizon: int = 100
    samples_per_member: int = 2  # candidates K = elites x samples (MOREC: 2)
    candidate_clip: float | None = None
    matched_steps: int = 10  # steps 1..matched_steps enter step_matched_error_ratio
    seed: int = 0

    def rollout(self) -> RolloutConfig:
        from morec.rollout import RolloutConfig

        return RolloutConfig(horizon=self.horizon, samples_per_member=self.samples_per_member, candidate_clip=self.candidate_clip)
