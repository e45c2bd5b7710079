"""Small real MuJoCo datasets for tests: uniformly random actions, recorded in the D4RL layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from morec.collect.envs import make_env, record_episodes
from morec.collect.recipe import log_to_dataset
from morec.data import OfflineDataset

# tests that must also pass on a GPU take ``device`` from this list; CI has no GPU, so "cuda" is
# skipped there and runs wherever CUDA is available (select them with ``-k cuda``)
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"))]


def assert_records_close(a: dict, b: dict, rel: float, abs: float = 0.0) -> None:
    """Two records (e.g. a run's evaluation or rollout entries) alike: numbers to ``rel``/``abs``,
    every other value (a text, a flag, a list) equal."""
    assert a.keys() == b.keys()
    for key, value in a.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            assert value == pytest.approx(b[key], rel=rel, abs=abs), key
        else:
            assert value == b[key], key


def random_dataset(env_id: str = "Hopper-v4", steps: int = 2000, seed: int = 0) -> OfflineDataset:
    env = make_env(env_id, seed)
    rng = np.random.default_rng(seed)
    act_dim = env.action_space.shape[0]
    log = record_episodes(env, lambda o: rng.uniform(-1, 1, act_dim).astype(np.float32), steps, seed=seed)
    return log_to_dataset(log.arrays(), env_id, "d4rl", {"source": "test"})


def random_dataset_file(path: Path, env_id: str = "Hopper-v4", steps: int = 2000, seed: int = 0) -> Path:
    return random_dataset(env_id, steps, seed).save(path)


def smoke(path, cache, algorithm="mobile", morec=True, epochs=2, **extra) -> list[str]:
    sets = [
        "task=Hopper-v4",
        f"algorithm={algorithm}",
        f"morec={str(morec).lower()}",
        f"dataset={path}",
        f"cache_dir={cache}",
        "dynamics.max_epochs=2",
        "dynamics.hidden_sizes=[32, 32]",
        "dynamics.weight_decays=[2.5e-5, 5e-5, 1e-4]",
        "reward.num_updates=100",
        "reward.snapshot_interval=50",
        "reward.hidden_sizes=[32]",
        "rollout.horizon=5",
        "rollout.batch_size=50",
        "rollout.freq=20",
        "rollout.samples_per_member=2",
        "agent.hidden_sizes=[32, 32]",
        "mobile.num_samples=2",
        f"train.epochs={epochs}",
        "train.steps_per_epoch=20",
        "train.eval_episodes=1",
        "train.log_every=10",
    ]
    if algorithm == "mopo":
        sets.append("rollout.penalty_coef=1.0")
    return sets + [f"{k}={v}" for k, v in extra.items()]
