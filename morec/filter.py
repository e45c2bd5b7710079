"""The MOREC filter: a rollout selector that keeps the candidate the dynamics reward prefers.

Per row, K candidates (elites x samples) are scored by r_D(s, a, s'_k). The pick is the argmax or
a sample of softmax(r_D / temperature); it supplies the next state and the model reward. When the
picked r_D is below ``threshold`` (after ``min_rollout_length`` steps) the transition is kept,
marked terminal, and that rollout stops.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .dynamics_reward import DynamicsReward
from .rollout import Selection


@dataclass
class MorecFilterConfig:
    mode: str = "softmax"  # "softmax" or "argmax"
    temperature: float = 0.1
    threshold: float = 0.6
    min_rollout_length: int = 0

    def __post_init__(self) -> None:
        if self.mode not in ("softmax", "argmax"):
            raise ValueError(f"mode must be 'softmax' or 'argmax', got {self.mode!r}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")


class MorecSelector:
    """``RolloutEngine`` selector backed by a :class:`DynamicsReward`. Statistics per step:
    ``reward_d`` (mean r_D of the kept candidates) and ``truncated`` (fraction stopped)."""

    def __init__(self, reward: DynamicsReward, config: MorecFilterConfig | None = None):
        self.reward = reward
        self.config = config or MorecFilterConfig()

    def __call__(self, obs, act, candidates, step, generator) -> Selection:
        """``obs [B, O]``, ``act [B, A]``, ``candidates [K, B, O + 1]`` -> :class:`Selection`."""
        scores = self.reward(obs, act, candidates[..., :-1])  # [K, B]
        if self.config.mode == "argmax":
            index = scores.argmax(dim=0)
        else:
            probs = torch.softmax(scores / self.config.temperature, dim=0).T  # [B, K]
            index = torch.multinomial(probs, 1, generator=generator)[:, 0]
        kept = scores.gather(0, index[None])[0]
        stop = kept < self.config.threshold
        if step < self.config.min_rollout_length:
            stop = torch.zeros_like(stop)
        return Selection(index=index, stop=stop, stats={"reward_d": kept.mean(), "truncated": stop.float().mean()})
