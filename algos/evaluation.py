"""Evaluating a learner's policy on the task's gymnasium environment, with the one episode loop of
the project (:func:`morec.episodes.evaluate`: episode ``k`` from ``reset(seed=seed + k)``, the
policy's deterministic action)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from tianshou.algorithm.modelfree.sac import SACPolicy

from morec.data import normalized_score
from morec.episodes import evaluate, policy_act_fn
from morec.tasks import make_gym_env


def make_eval_env(env_id: str, layout: str) -> gym.Env:
    """The evaluation env: ``env_id`` with the observation of the dataset's ``layout``."""
    return make_gym_env(env_id, layout)


def evaluate_policy(policy: SACPolicy, env_id: str, layout: str, episodes: int, seed: int,
                    env: gym.Env | None = None) -> np.ndarray:
    """``[episodes]`` returns of ``policy``'s deterministic action on ``env_id`` (or on ``env``, an
    env made by :func:`make_eval_env`)."""
    return evaluate(env or make_eval_env(env_id, layout), policy_act_fn(policy, deterministic=True), episodes, seed)


class Evaluator:
    """Scores a policy on a task: returns and normalised scores of ``episodes`` episodes. Holds one
    env (every episode starts from a seeded reset, so it carries nothing between evaluations)."""

    def __init__(self, task: str, env_id: str, layout: str):
        self.task, self.env_id, self.layout = task, env_id, layout
        self.env = make_eval_env(env_id, layout)

    @property
    def action_space(self) -> gym.spaces.Box:
        return self.env.action_space

    def __call__(self, policy: SACPolicy, episodes: int, seed: int) -> dict[str, float]:
        returns = evaluate_policy(policy, self.env_id, self.layout, episodes, seed, env=self.env)
        scores = normalized_score(self.task, returns)
        return {"return_mean": float(returns.mean()), "return_std": float(returns.std()),
                "normalized_score": float(scores.mean()), "normalized_score_std": float(scores.std())}
