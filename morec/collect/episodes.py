"""A tianshou SAC policy run for whole episodes in a gymnasium env: the behaviour SAC's evaluation
(``morec collect`` picks its policies by it) and its acting.

Episode ``k`` starts from ``env.reset(seed=seed + k)``, so a return depends only on the policy,
the seed and ``k``; the policy acts on one observation at a time, deterministically (its mode)
for evaluation. The offline learners are evaluated by :mod:`morec.training.evaluation` instead (tianshou's
vectorised Collector), which gives other returns for the same policy and seed.
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch
from tianshou.algorithm.modelfree.sac import SACPolicy
from tianshou.data import Batch
from tianshou.utils.torch_utils import policy_within_training_step, torch_train_mode


def policy_batch_act_fn(policy: SACPolicy, deterministic: bool) -> Callable[[np.ndarray], np.ndarray]:
    """``obs [N, obs_dim] -> env actions [N, act_dim]``: the SAC mode, or a sample from the policy."""
    device = next(policy.parameters()).device

    @torch.no_grad()
    def act(obs: np.ndarray) -> np.ndarray:
        with torch_train_mode(policy, False), policy_within_training_step(policy, enabled=not deterministic):
            obs_t = torch.as_tensor(obs, dtype=torch.float32, device=device)
            raw = policy(Batch(obs=obs_t, info={})).act
        return policy.map_action(raw.cpu().numpy()).astype(np.float32)

    return act


def policy_act_fn(policy: SACPolicy, deterministic: bool) -> Callable[[np.ndarray], np.ndarray]:
    """``obs [obs_dim] -> env action [act_dim]``: :func:`policy_batch_act_fn` for one observation."""
    act_batch = policy_batch_act_fn(policy, deterministic)
    return lambda obs: act_batch(obs[None])[0]


def evaluate(env: gym.Env, act_fn: Callable[[np.ndarray], np.ndarray], episodes: int, seed: int) -> np.ndarray:
    """``[episodes]`` returns, one env, episode k from reset(seed=seed + k): the loop `morec collect` chooses policies
    with."""
    returns = []
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(act_fn(obs))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return np.asarray(returns)
