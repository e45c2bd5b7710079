"""The MOREC filter: a rollout selector that keeps the candidate the dynamics reward prefers.

Per row, K candidates (elites x samples) are scored by r_D(s, a, s'_k). The selection score is

    score_k = r_D(s, a, s'_k) - consensus_weight * d_k / median_k(d_k)

where ``d_k`` is the mean squared distance (in the reward's scaled observation space) from
candidate k's next state to the consensus, the elites' mean prediction. ``consensus_weight = 0`` is
the paper (r_D alone); the default adds the consensus term, a deviation from the paper chosen by
measurement (``docs/morec_check``): the Gaussian draws' own noise is most of a candidate's error,
and r_D alone hardly ranks it. The pick is the argmax or a sample of softmax(score / temperature);
it supplies the next state and the model reward (``mode="random"`` picks uniformly instead, to
measure what the truncation alone does). When the picked candidate's r_D is below the
threshold (after ``min_rollout_length`` steps) the transition is kept and that rollout ends: marked
terminal (``truncate_as="terminal"``, the paper) or not (``truncate_as="stop"``, an ablation).
``threshold="auto"`` is resolved by :func:`morec.dynamics_reward.threshold.calibrate_threshold` from held-out real
transitions.
"""

from __future__ import annotations

import torch

from morec.dynamics_reward.config import AUTO, MorecFilterConfig
from morec.dynamics_reward.model import DynamicsReward
from morec.rollout.engine import Selection


class MorecSelector:
    """``RolloutEngine`` selector backed by a :class:`DynamicsReward`. Statistics per step:
    ``reward_d`` (mean r_D of the kept candidates) and ``truncated`` (fraction stopped).

    ``threshold`` overrides ``config.threshold`` (it must be given when that is ``"auto"``);
    ``-inf`` selects without ever truncating."""

    def __init__(self, reward: DynamicsReward, config: MorecFilterConfig | None = None, threshold: float | None = None):
        self.reward = reward
        self.config = config or MorecFilterConfig()
        if threshold is None and self.config.threshold == AUTO:
            raise ValueError(
                "threshold 'auto' must be resolved first: pass threshold=calibrate_threshold(...).threshold"
            )
        self.threshold = float(self.config.threshold if threshold is None else threshold)

    def score(
        self, obs: torch.Tensor, act: torch.Tensor, candidates: torch.Tensor, consensus: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(r_D [K, B], selection score [K, B])`` of ``candidates [K, B, O + 1]`` at ``obs [B, O]``,
        ``act [B, A]`` given the elites' mean prediction ``consensus [B, O + 1]``."""
        next_obs = candidates[..., :-1]
        reward_d = self.reward(obs, act, next_obs)
        weight = self.config.consensus_weight
        if not weight:
            return reward_d, reward_d
        return reward_d, reward_d - weight * self.consensus_distance(next_obs, consensus)

    def consensus_distance(self, next_obs: torch.Tensor, consensus: torch.Tensor) -> torch.Tensor:
        """``d / median_K(d)`` ``[K, B]`` of candidate next states ``[K, B, O]``: ``d`` is the mean squared
        distance to the consensus ``[B, O + 1]`` in the reward's scaled observation space."""
        span = (self.reward.obs_high - self.reward.obs_low).clamp_min(1e-6)
        distance = (((next_obs - consensus[..., :-1]) / span) ** 2).mean(-1)  # [K, B]
        return distance / distance.median(dim=0, keepdim=True).values.clamp_min(1e-12)

    def pick(self, scores: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Selection ``scores [K, B]`` -> index ``[B]`` of the kept candidate (``mode="random"``:
        uniform, whatever the scores: the ablation that keeps only the filter's truncation)."""
        if self.config.mode == "random":
            return torch.randint(scores.shape[0], (scores.shape[1],), device=scores.device, generator=generator)
        if self.config.mode == "argmax":
            return scores.argmax(dim=0)
        probs = torch.softmax(scores / self.config.temperature, dim=0).T  # [B, K]
        return torch.multinomial(probs, 1, generator=generator)[:, 0]

    def __call__(self, obs, act, candidates, step, generator, consensus) -> Selection:
        """``obs [B, O]``, ``act [B, A]``, ``candidates [K, B, O + 1]``, ``consensus [B, O + 1]``
        -> :class:`Selection`."""
        reward_d, scores = self.score(obs, act, candidates, consensus)  # [K, B]
        # a candidate the model diverged on (a state or score that is not finite) is never picked; a row
        # with no finite candidate picks any of them, and the engine ends it without writing it
        usable = torch.isfinite(candidates).all(-1) & torch.isfinite(scores)
        scores = torch.where(usable, scores, -torch.inf).masked_fill(~usable.any(0), 0.0)
        index = self.pick(scores, generator)
        kept = reward_d.gather(0, index[None])[0]
        end = kept < self.threshold
        if step < self.config.min_rollout_length:
            end = torch.zeros_like(end)
        stats = {"reward_d": torch.nanmean(kept), "truncated": end.float().mean()}
        if self.config.truncate_as == "stop":
            return Selection(index=index, truncate=end, stats=stats)
        return Selection(index=index, stop=end, stats=stats)
