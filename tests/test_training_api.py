"""`morec.train` from Python: arrays in, a trained policy and its summary out, with morec train's
caching and errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import morec
from morec.errors import UserError
from tests.helpers import random_dataset

SMOKE = {
    "task": "Hopper-v4",
    "algorithm": "mopo",
    "model_seed": 0,
    "rollout.penalty_coef": 1.0,
    "dynamics.max_epochs": 2,
    "dynamics.hidden_sizes": [32, 32],
    "dynamics.weight_decays": [2.5e-5, 5e-5, 1e-4],
    "agent.hidden_sizes": [32, 32],
    "rollout.horizon": 5,
    "rollout.batch_size": 50,
    "rollout.freq": 20,
    "train.epochs": 2,
    "train.steps_per_epoch": 20,
    "train.eval_episodes": 1,
    "train.log_every": 10,
}


def test_arrays_in_a_trained_policy_out(tmp_path):
    data = random_dataset(steps=1_500, seed=3)
    arrays = {
        key: getattr(data, key)
        for key in ("observations", "actions", "rewards", "terminals", "timeouts", "next_observations")
    }
    overrides = {**SMOKE, "cache_dir": str(tmp_path / "cache")}
    result = morec.train(
        None, dataset=arrays, run_dir=tmp_path / "run", seed=1, overrides=overrides, show_progress=False
    )
    assert (
        result.summary["gradient_steps"] == 40
        and result.summary["seed"] == 1
        and len(result.summary["evaluations"]) == 2
    )
    actions = result.policy(torch.as_tensor(data.observations[:5]))
    assert actions.shape == (5, 3) and bool((actions.abs() <= 1).all())
    stored = list((tmp_path / "cache" / "datasets").glob("*.hdf5"))
    assert len(stored) == 1 and (tmp_path / "run" / "config.yaml").read_text().count(str(stored[0])) == 1
    # the same data as an OfflineDataset: the same stored file and the cached dynamics are reused
    again = morec.train(
        None, dataset=data, run_dir=tmp_path / "again", seed=2, overrides=overrides, show_progress=False
    )
    assert list((tmp_path / "cache" / "datasets").glob("*.hdf5")) == stored
    assert again.summary["models"]["dynamics"] == result.summary["models"]["dynamics"]
    assert not np.array_equal(again.policy(torch.as_tensor(data.observations[:5])), actions)  # another seed's learner


def test_mistakes_raise_the_command_lines_message(tmp_path):
    with pytest.raises(UserError, match="train.epoch"):
        morec.train(None, dataset={"observations": np.zeros((3, 11))}, overrides={"train.epoch": 3}, run_dir=tmp_path)
    with pytest.raises(UserError, match="rewards"):  # arrays are validated before anything trains
        morec.train(
            None,
            dataset={"observations": np.zeros((3, 11)), "actions": np.zeros((3, 3))},
            overrides={"task": "Hopper-v4", "cache_dir": str(tmp_path)},
            run_dir=tmp_path / "run",
        )


def test_morec_train_says_what_it_starts_and_how_it_ended(tmp_path, capsys):
    from morec.cli import main

    data = random_dataset(steps=1_500, seed=3).save(tmp_path / "hopper.hdf5")
    sets = [
        arg
        for key, value in {**SMOKE, "cache_dir": str(tmp_path / "cache")}.items()
        for arg in ("--set", f"{key}={value}")
    ]
    assert main(["train", *sets, "--dataset", str(data), "--run-dir", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        f"train: MOPO on Hopper-v4 ({data}), seed 0, 2 epochs x 20 gradient steps = 40 on cpu, into {tmp_path / 'run'}"
    )
    assert out[1].startswith("seed 0: normalised score ") and "40 gradient steps" in out[1]
    assert (
        out[2].startswith("  model rollouts: 2, mean length ")
        and out[-1] == f"TensorBoard: tensorboard --logdir {tmp_path / 'run' / 'tb'}"
    )


def test_the_readmes_python_example_runs(tmp_path, monkeypatch):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("### From Python: your own arrays") :]
    code = section[section.index("```python\n") + len("```python\n") : section.index("\n```\n")]
    budget = '{"train.epochs": 20}'
    assert code.count(budget) == 1  # the test swaps in the smoke budget and its own cache
    code = code.replace(
        budget,
        repr(
            {
                **SMOKE,
                "task": "hopper-medium-v2",
                "cache_dir": str(tmp_path / "cache"),
                "reward.num_updates": 100,
                "reward.snapshot_interval": 10,
                "reward.snapshot_stride": 2,
                "reward.hidden_sizes": [32],
                "rollout.horizon": 5,
                "rollout.batch_size": 50,
            }
        ),
    )
    code = code.replace("starts=100", "starts=10")
    data = random_dataset(steps=1_500, seed=4)
    np.savez(
        tmp_path / "hopper_arrays.npz",
        **{k: getattr(data, k) for k in ("observations", "actions", "rewards", "terminals")},
    )
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["actions"].shape == (5, 3) and scope["result"].summary["gradient_steps"] == 40
    assert scope["report"]["true_return_mean"] is not None and (tmp_path / "runs" / "my-hopper" / "policy.pt").exists()
