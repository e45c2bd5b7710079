"""``filter.threshold: auto``: a truncation threshold from held-out real transitions.

The paper's fixed 0.6 cuts rollouts whose kept candidate scores r_D < 0.6, however r_D is spread
on this task. ``auto`` bounds the cut on data the reward never trained on (the calibration half of
its held-out rows; the other half measures the false-truncation rate): the threshold is the lower
of two ``target`` quantiles,

- r_D of held-out real ``(s, a, s')`` (so the false-truncation rate is at most ``target``), and
- r_D of the candidate the filter keeps at held-out ``(s, a)`` (so a rollout step taken at a
  dataset state and action is cut with probability at most ``target``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from morec.dynamics_reward.filter import AUTO, MorecFilterConfig, MorecSelector
from morec.dynamics_reward.model import DynamicsReward
from morec.rollout.engine import RolloutConfig, RolloutEngine


@dataclass
class ThresholdCalibration:
    threshold: float
    target: float  # the quantile level, e.g. 0.02
    real_quantile: float  # target-quantile of r_D on held-out real transitions
    selected_quantile: float  # target-quantile of the kept candidate's r_D at held-out (s, a)
    transitions: int  # held-out transitions used

    def to_dict(self) -> dict:
        return asdict(self)


def heldout_transitions(reward: DynamicsReward) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The calibration half of the reward's held-out real ``(s [N, O], a [N, A], s' [N, O])``, or a
    ``ValueError`` naming the fix. The other half measures the false-truncation rate."""
    if reward.heldout is None:
        raise ValueError(
            "threshold 'auto' needs held-out real transitions stored with the dynamics reward, and this "
            "reward has none (trained by an older morec): retrain it with `morec train-reward`, "
            "or give a number (the paper's 0.6)"
        )
    return reward.heldout_part("calibrate")


@torch.no_grad()
def calibrate_threshold(
    reward: DynamicsReward, dynamics, config: MorecFilterConfig, rollout: RolloutConfig, seed: int = 0
) -> ThresholdCalibration:
    """The ``auto`` threshold for ``reward`` with candidates from ``dynamics`` drawn and picked as
    ``rollout`` (samples per member, clip) and ``config`` (mode, temperature) say."""
    obs, act, next_obs = heldout_transitions(reward)
    target = config.false_truncation_target
    real = reward(obs, act, next_obs)  # [N]
    engine = RolloutEngine(
        dynamics, lambda o, a, n: torch.zeros(len(o), dtype=torch.bool, device=o.device), rollout, seed=seed
    )
    candidates, _, consensus = engine.candidates(obs, act)  # [K, N, O + 1], [N, O + 1]
    picker = MorecSelector(reward, config, threshold=float("-inf"))
    reward_d, scores = picker.score(obs, act, candidates, consensus)  # [K, N]
    kept = reward_d.gather(0, picker.pick(scores, engine.generator)[None])[0]  # [N]
    real_q, kept_q = float(torch.quantile(real, target)), float(torch.quantile(kept, target))
    return ThresholdCalibration(min(real_q, kept_q), target, real_q, kept_q, len(obs))


def resolve_threshold(
    reward: DynamicsReward, dynamics, config: MorecFilterConfig, rollout: RolloutConfig, seed: int = 0
) -> tuple[float, ThresholdCalibration | None]:
    """``(threshold in use, calibration or None)``: ``config.threshold`` itself unless it is ``auto``."""
    if config.threshold != AUTO:
        return float(config.threshold), None
    cal = calibrate_threshold(reward, dynamics, config, rollout, seed)
    return cal.threshold, cal
