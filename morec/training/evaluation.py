"""Evaluating a learner's policy on the task's gymnasium environment: the policy's deterministic
action (the mode of its tanh-Gaussian) on up to 10 envs stepped together, seeded once per
evaluation, with the episode bookkeeping of tianshou's vectorised ``Collector``. The returns equal
the ``Collector``'s bit for bit (``tests/test_evaluation.py`` compares them), without its replay
buffer and per-step ``Batch`` work (docs/speed.md has what that saves).

This is not :func:`morec.collect.episodes.evaluate` (one env, episode ``k`` from ``reset(seed=seed + k)``)
on purpose: the two give different returns for the same policy and seed, the published training
results were measured with this one, and ``morec collect`` chooses its policies with that one.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from tianshou.algorithm.modelfree.sac import SACPolicy
from tianshou.utils.torch_utils import torch_train_mode

from morec.data import normalized_score
from morec.tasks import make_gym_env

MAX_ENVS = 10  # envs stepped together, as the Collector's DummyVectorEnv had


def make_eval_env(env_id: str, layout: str) -> gym.Env:
    """The evaluation env: ``env_id`` with the observation of the dataset's ``layout``."""
    return make_gym_env(env_id, layout)


def policy_mode(policy: SACPolicy, obs: np.ndarray) -> np.ndarray:
    """``obs [R, O] -> env actions [R, A]``: ``tanh`` of the actor's mean, mapped to the action
    space, which is what :class:`SACPolicy` acts outside a training step (``deterministic_eval``)."""
    device = next(policy.parameters()).device
    with torch.inference_mode(), torch_train_mode(policy, False):
        (mu, _sigma), _ = policy.actor(torch.as_tensor(obs, dtype=torch.float32, device=device))
        return policy.map_action(torch.tanh(mu).cpu().numpy())


def evaluate_policy(policy: SACPolicy, env_id: str, layout: str, episodes: int, seed: int) -> np.ndarray:
    """``[episodes]`` returns, in the order the episodes end, as tianshou's ``Collector`` gives them.

    ``min(episodes, 10)`` envs; env ``i`` is reset with ``seed + i`` and then once more (how
    ``DummyVectorEnv.seed`` and the Collector's reset leave it); all live envs act on one batched
    forward pass; an env whose episode ends starts the next one, unless the envs still running
    already cover the episodes left (the Collector's rule, so each env contributes an episode).
    """
    envs = [make_eval_env(env_id, layout) for _ in range(min(episodes, MAX_ENVS))]
    for i, env in enumerate(envs):
        env.reset(seed=seed + i)
    obs = np.stack([env.reset()[0] for env in envs])  # [R, O], R = the envs still running
    running = np.arange(len(envs))  # [R] their indices
    episode_return = np.zeros(len(envs))
    returns: list[float] = []
    while len(returns) < episodes:
        actions = policy_mode(policy, obs)
        ended = []  # positions in `running`
        for row, i in enumerate(running):
            obs[row], reward, terminated, truncated, _ = envs[i].step(actions[row])
            episode_return[i] += reward
            if terminated or truncated:
                ended.append(row)
        for row in ended:
            i = running[row]
            returns.append(float(episode_return[i]))
            episode_return[i] = 0.0
            obs[row] = envs[i].reset()[0]
        surplus = len(running) - (episodes - len(returns))
        if ended and surplus > 0 and len(returns) < episodes:
            keep = np.ones(len(running), dtype=bool)
            keep[ended[:surplus]] = False
            running, obs = running[keep], obs[keep]
    for env in envs:
        env.close()
    return np.asarray(returns, dtype=np.float64)


class Evaluator:
    """Scores a policy on a task: returns and normalised scores of ``episodes`` episodes
    (:func:`evaluate_policy`, on envs made afresh for each evaluation). :meth:`submit` and
    :meth:`wait` are the training loop's interface, which
    :class:`~morec.training.background_evaluation.BackgroundEvaluator` shares: here ``submit`` evaluates at once."""

    in_background = False

    def __init__(self, task: str, env_id: str, layout: str):
        self.task, self.env_id, self.layout = task, env_id, layout
        self.action_space: gym.spaces.Box = make_eval_env(env_id, layout).action_space
        self.pending: dict | None = None  # the tag of the evaluation submitted and not yet collected
        self._scores: dict[str, float] = {}

    def __call__(self, policy: SACPolicy, episodes: int, seed: int) -> dict[str, float]:
        returns = evaluate_policy(policy, self.env_id, self.layout, episodes, seed)
        scores = normalized_score(self.task, returns)
        return {
            "return_mean": float(returns.mean()),
            "return_std": float(returns.std()),
            "normalized_score": float(scores.mean()),
            "normalized_score_std": float(scores.std()),
        }

    def submit(self, policy: SACPolicy, episodes: int, seed: int, tag: dict) -> None:
        self._scores, self.pending = self(policy, episodes, seed), tag

    def wait(self) -> tuple[dict, dict[str, float]]:
        """``(tag, scores)`` of the last :meth:`submit`."""
        tag, self.pending = self.pending, None
        return tag, self._scores

    def close(self) -> None:
        """Nothing to release (the envs are closed after each evaluation)."""
