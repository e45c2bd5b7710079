"""Evaluating a learner's policy on the task's gymnasium environment: the policy's deterministic
action on up to 10 vectorised envs, through tianshou's :class:`~tianshou.data.Collector`, seeded
once per evaluation.

This is not :func:`morec.episodes.evaluate` (one env, episode ``k`` from ``reset(seed=seed + k)``)
on purpose: the two give different returns for the same policy and seed, the published training
results were measured with this one, and ``morec collect`` chooses its policies with that one.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from tianshou.algorithm.modelfree.sac import SACPolicy
from tianshou.data import Collector, CollectStats
from tianshou.env import DummyVectorEnv

from morec.data import normalized_score
from morec.tasks import make_gym_env


def make_eval_env(env_id: str, layout: str) -> gym.Env:
    """The evaluation env: ``env_id`` with the observation of the dataset's ``layout``."""
    return make_gym_env(env_id, layout)


def evaluate_policy(policy: SACPolicy, env_id: str, layout: str, episodes: int, seed: int) -> np.ndarray:
    """``[episodes]`` returns via tianshou's vectorised Collector, whose numbers the published training results use."""
    envs = DummyVectorEnv([lambda: make_eval_env(env_id, layout) for _ in range(min(episodes, 10))])
    envs.seed(seed)
    collector = Collector[CollectStats](policy, envs)
    stats = collector.collect(n_episode=episodes, reset_before_collect=True)
    envs.close()
    return np.asarray(stats.returns, dtype=np.float64)


class Evaluator:
    """Scores a policy on a task: returns and normalised scores of ``episodes`` episodes
    (:func:`evaluate_policy`, on envs made afresh for each evaluation)."""

    def __init__(self, task: str, env_id: str, layout: str):
        self.task, self.env_id, self.layout = task, env_id, layout
        self.action_space: gym.spaces.Box = make_eval_env(env_id, layout).action_space

    def __call__(self, policy: SACPolicy, episodes: int, seed: int) -> dict[str, float]:
        returns = evaluate_policy(policy, self.env_id, self.layout, episodes, seed)
        scores = normalized_score(self.task, returns)
        return {"return_mean": float(returns.mean()), "return_std": float(returns.std()),
                "normalized_score": float(scores.mean()), "normalized_score_std": float(scores.std())}
