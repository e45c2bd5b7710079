"""The learners' evaluation loop (morec/training/evaluation.py) against tianshou's vectorised Collector,
whose returns the published training results used: the same returns, bit for bit, in the same
order, whether there are fewer, as many or more episodes than envs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tianshou.algorithm.modelfree.sac import SACPolicy
from tianshou.data import Batch, Collector, CollectStats
from tianshou.env import DummyVectorEnv

from morec.actor import build_actor
from morec.training.evaluation import MAX_ENVS, Evaluator, evaluate_policy, make_eval_env, policy_mode

ENV, LAYOUT = "Hopper-v4", "d4rl"


def make_policy(seed: int, device: str = "cpu") -> SACPolicy:
    """An untrained actor: Hopper falls after 10-60 steps, so episodes end at different steps."""
    env = make_eval_env(ENV, LAYOUT)
    torch.manual_seed(seed)
    actor = build_actor(env.observation_space.shape[0], env.action_space.shape[0], (32, 32))
    return SACPolicy(actor=actor, action_space=env.action_space).to(device)


def collector_returns(policy: SACPolicy, episodes: int, seed: int) -> np.ndarray:
    """What `evaluate_policy` replaced: the Collector on a DummyVectorEnv seeded once."""
    envs = DummyVectorEnv([lambda: make_eval_env(ENV, LAYOUT) for _ in range(min(episodes, MAX_ENVS))])
    envs.seed(seed)
    stats = Collector[CollectStats](policy, envs).collect(n_episode=episodes, reset_before_collect=True)
    envs.close()
    return np.asarray(stats.returns, dtype=np.float64)


@pytest.mark.parametrize(("episodes", "seed"), [(3, 0), (10, 7), (23, 1)])
def test_returns_equal_the_collectors(episodes, seed):
    policy = make_policy(seed)
    returns = evaluate_policy(policy, ENV, LAYOUT, episodes, seed)
    assert returns.shape == (episodes,)
    assert np.array_equal(returns, collector_returns(policy, episodes, seed))
    assert len(set(returns.tolist())) > 1  # the episodes differ: the seeding reaches every env


def test_the_seed_decides_the_returns():
    policy = make_policy(0)
    first = evaluate_policy(policy, ENV, LAYOUT, 4, seed=3)
    assert np.array_equal(first, evaluate_policy(policy, ENV, LAYOUT, 4, seed=3))
    assert not np.array_equal(first, evaluate_policy(policy, ENV, LAYOUT, 4, seed=4))


def test_policy_mode_is_what_sac_policy_acts_outside_training():
    policy = make_policy(0)
    obs = np.random.default_rng(0).normal(size=(5, make_eval_env(ENV, LAYOUT).observation_space.shape[0]))
    with torch.no_grad():
        expected = policy.map_action(policy(Batch(obs=obs, info={})).act.numpy())
    assert np.array_equal(policy_mode(policy, obs), expected)


def test_evaluator_reports_scores():
    scores = Evaluator("hopper-medium-v2", ENV, LAYOUT)(make_policy(0), episodes=3, seed=0)
    assert set(scores) == {"return_mean", "return_std", "normalized_score", "normalized_score_std"}
    assert np.isfinite(list(scores.values())).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_policy_is_evaluated_on_its_device():
    cpu = evaluate_policy(make_policy(0), ENV, LAYOUT, 3, seed=0)
    cuda = evaluate_policy(make_policy(0, "cuda"), ENV, LAYOUT, 3, seed=0)
    assert cuda.shape == (3,) and np.isfinite(cuda).all()
    np.testing.assert_allclose(cuda, cpu, rtol=0.05)  # the actor's float32 arithmetic differs by device
