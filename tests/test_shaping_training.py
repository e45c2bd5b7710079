"""Reward shaping from the ``shaping:`` config section: config checks and overlays, building the
transforms, training with the shipped clip and potential overlays, and ``morec relabel --shaping``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from morec.cli import build_parser, main
from morec.data import OfflineDataset, load_dataset
from morec.shaping.config import PARAMETERS, TRANSFORMS, ShapingConfig
from morec.shaping.setup import (
    LinearPotential,
    build_shaping,
    discounted_returns_to_go,
    fit_value_potential,
    shape_dataset,
)
from morec.training.config import ConfigError, config_differences, config_from_dict, load_config
from morec.training.loop import TrainingLoop
from morec.training.pipeline import start_run
from tests.helpers import DEVICES, smoke

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
CLIP, POTENTIAL = CONFIGS / "shaping" / "clip.yaml", CONFIGS / "shaping" / "potential.yaml"
f32 = np.float32


# ------------------------------------------------------------------------------------ config
def test_default_is_no_shaping_and_overlays_merge():
    cfg = load_config(None, [])
    assert (
        cfg.shaping == ShapingConfig() and not cfg.shaping.enabled and cfg.to_dict()["shaping"]["transform"] == "none"
    )
    task = CONFIGS / "d4rl" / "hopper-medium-replay-v2" / "mopo.yaml"
    merged = load_config(task, overlays=[CLIP])
    assert (
        merged.rollout.penalty_coef == load_config(task).rollout.penalty_coef == 2.5
    )  # the task config's section survives
    assert (merged.shaping.transform, merged.shaping.low, merged.shaping.high, merged.shaping.apply_to) == (
        "clip",
        -1.0,
        10.0,
        "model",
    )
    assert (
        load_config(task, ["shaping.apply_to=model"], overlays=[POTENTIAL]).shaping.apply_to == "model"
    )  # --set comes last
    assert config_from_dict(merged.to_dict()) == merged
    assert list(config_differences(load_config(task).to_dict(), merged.to_dict())) == [
        "shaping.apply_to",
        "shaping.high",
        "shaping.low",
        "shaping.transform",
    ]
    assert build_parser().parse_args(["train", "--config", str(task), "--config", str(CLIP)]).config == [
        str(task),
        str(CLIP),
    ]


def test_train_lays_later_config_files_over_the_first(monkeypatch, tmp_path, capsys):
    built = []

    def no_run(cfg, run_dir, **_):  # `morec train` up to the training: the config it resolves
        built.append(cfg)
        return {}

    monkeypatch.setattr("morec.training.pipeline.run_training", no_run)
    task = CONFIGS / "d4rl" / "hopper-medium-replay-v2" / "mopo.yaml"
    argv = [
        "train",
        "--config",
        str(task),
        "--config",
        str(CLIP),
        "--set",
        "shaping.high=5",
        "--run-dir",
        str(tmp_path),
        "--json",
    ]
    assert main(argv) == 0
    assert built == [load_config(task, ["shaping.high=5"], overlays=[CLIP])] and built[0].shaping.high == 5.0
    assert main(["train", "--config", str(task), "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "config file" in capsys.readouterr().err


@pytest.mark.parametrize(
    "sets, message",
    [
        (["shaping.transform=clap"], "shaping: transform must be one of none, clip, potential"),
        (["shaping.transform=clip"], "transform clip needs shaping.low or shaping.high"),
        (["shaping.transform=clip", "shaping.low=2", "shaping.high=1"], "low must not exceed high"),
        (["shaping.low=-1"], "low is a parameter of clip, not of none .*set shaping.transform=clip"),
        (
            ["shaping.transform=clip", "shaping.high=1", "shaping.gamma=0.9"],
            "remove shaping.gamma or set shaping.transform=potential",
        ),
        (
            ["shaping.transform=clip", "shaping.high=1", "shaping.apply_to=all"],
            "apply_to must be one of dataset, model, both",
        ),
        (["shaping.transform=delta"], "delta shapes dataset rewards only .*set shaping.apply_to=dataset"),
        (["shaping.transform=flip_noise", "shaping.p=0.1"], "flip_noise shapes dataset rewards only .*--resume"),
        (["shaping.transform=flip_noise", "shaping.p=1.5", "shaping.apply_to=dataset"], "p must be a probability"),
        (["shaping.transform=potential", "shaping.potential=tabular"], "potential must be one of fitted, linear"),
        (["shaping.transform=potential", "shaping.potential=linear"], "potential linear needs shaping.weights"),
        (["shaping.transform=potential", "shaping.weights=[1, 2]"], "fitted learns its own weights"),
        (["shaping.transform=potential", "shaping.gamma=1.5"], "gamma must be in"),
        (
            ["shaping.transform=gated", "shaping.channels=[rewards, aux]", "shaping.apply_to=dataset"],
            "thresholds needs one value",
        ),
        (["shaping.transform=clip_delta", "shaping.apply_to=dataset"], "clip_delta needs shaping.eta"),
        (["shaping.lo=1"], r"unknown config key 'shaping.lo'; did you mean shaping.low\?"),
        (["shaping.low=low"], "shaping.low must be a number or null"),
    ],
)
def test_bad_shaping_configs_name_the_key_and_the_fix(sets, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, sets)


def test_every_transform_has_its_parameters_and_the_table_covers_every_field():
    assert set(PARAMETERS) == set(TRANSFORMS)
    names = {n for params in PARAMETERS.values() for n in params}
    assert names == {f for f in ShapingConfig.__dataclass_fields__} - {"transform", "apply_to"}


# ------------------------------------------------------------------------------------ building
def hand_dataset() -> OfflineDataset:
    """Two episodes (terminal after row 2, then a timeout) with obs [t, 1] and an infos column."""
    obs = np.array([[0, 1], [1, 1], [2, 1], [0, 1], [1, 1], [2, 1]], f32)
    return OfflineDataset(
        observations=obs,
        actions=np.zeros((6, 1), f32),
        rewards=np.array([1, 2, 4, 1, 3, 5], f32),
        next_observations=obs + np.array([1, 0], f32),
        terminals=np.array([0, 0, 1, 0, 0, 0], bool),
        timeouts=np.array([0, 0, 0, 0, 0, 1], bool),
        infos={"outcome": np.array([0, 0, 1, 0, 0, 0], f32)},
    )


@pytest.mark.parametrize(
    "sets, rewards",
    [
        ({"low": 1.5, "high": 3.5}, [1.5, 2, 3.5, 1.5, 3, 3.5]),
        ({"high": 2.0}, [1, 2, 2, 1, 2, 2]),  # one-sided
        (
            {"potential": "linear", "weights": (1.0, 0.0), "gamma": 1.0},
            [2, 3, 4 - 2, 2, 4, 6],
        ),  # F = 1, but -Phi(s) at the terminal
        (
            {"potential": "linear", "weights": (0.0, 2.0), "bias": 1.0, "potential_scale": 0.5, "gamma": 0.5},
            [1 - 0.75, 2 - 0.75, 4 - 1.5, 1 - 0.75, 3 - 0.75, 5 - 0.75],
        ),  # Phi = 1.5: 0.5 * 1.5 - 1.5
        ({"p": 1.0}, [-1, -2, -4, -1, -3, -5]),
        ({"initial": 0.0}, [1, 1, 2, 1, 2, 2]),
        ({"eta": 2.5}, [-1, -0.5, 0, -1.5, 0, 0]),  # clipped scores [-1.5, -0.5, 0] and [-1.5, 0, 0]
        ({"weight": 1.0, "threshold": 5.0, "cap": 10.0, "bonus_key": "outcome"}, [1, 2, 5, 1, 3, 5]),
        ({"channels": ("outcome", "rewards"), "thresholds": (1.0,)}, [1, 2, 5, 0, 0, 0]),
    ],
    ids=[
        "clip",
        "clip_high",
        "potential",
        "potential_scaled",
        "flip_noise",
        "delta",
        "clip_delta",
        "pattern_bonus",
        "gated",
    ],
)
def test_each_transform_shapes_a_dataset(sets, rewards):
    transform = {
        "low": "clip",
        "high": "clip",
        "potential": "potential",
        "p": "flip_noise",
        "initial": "delta",
        "eta": "clip_delta",
        "weight": "pattern_bonus",
        "channels": "gated",
    }[next(iter(sets))]
    cfg = ShapingConfig(transform=transform, apply_to="dataset", **sets)
    shaped, record = shape_dataset(cfg, hand_dataset(), gamma=0.99, seed=0)
    np.testing.assert_allclose(shaped.rewards, rewards, rtol=1e-6)
    assert shaped.metadata["reward_shaping"][0]["name"] and record["transform"] == transform
    json.dumps(record, allow_nan=False)
    json.dumps(shaped.summary(), allow_nan=False)


def test_build_checks_the_dataset():
    with pytest.raises(
        Exception, match="shaping.weights has 3 numbers but the dataset's observations have 2 dimensions"
    ):
        shape_dataset(
            ShapingConfig("potential", potential="linear", weights=(1, 2, 3)), hand_dataset(), gamma=0.9, seed=0
        )
    with pytest.raises(Exception, match="shaping.bonus_key: the dataset has no infos column 'bonus' .*outcome"):
        shape_dataset(ShapingConfig("pattern_bonus", "dataset"), hand_dataset(), gamma=0.9, seed=0)
    with pytest.raises(Exception, match="shaping.transform is none|transform is none"):
        shape_dataset(ShapingConfig(), hand_dataset(), gamma=0.9, seed=0)


def test_no_shaping_builds_nothing():
    ds = hand_dataset()
    shaping = build_shaping(ShapingConfig(), ds, gamma=0.99, termination_fn=None, seed=0)
    assert shaping.real is ds and shaping.model_hook is None and shaping.summary() == {"transform": "none"}
    model_only = build_shaping(ShapingConfig("clip", "model", high=1.0), ds, gamma=0.99, termination_fn=None, seed=0)
    assert model_only.real is ds and model_only.model_hook is not None and "dataset" not in model_only.summary()


def test_fitted_potential_is_the_least_squares_value():
    ds = hand_dataset()
    rtg = discounted_returns_to_go(ds, 0.5)
    np.testing.assert_allclose(rtg, [1 + 0.5 * 2 + 0.25 * 4, 2 + 0.5 * 4, 4, 1 + 0.5 * 3 + 0.25 * 5, 3 + 0.5 * 5, 5])
    # the observations hold the return-to-go itself: the fit is exact, Phi(s) = s[0]
    obs = rtg[:, None].astype(f32)
    exact = OfflineDataset(
        observations=obs,
        actions=ds.actions,
        rewards=ds.rewards,
        next_observations=np.roll(obs, -1, 0),
        terminals=ds.terminals,
        timeouts=ds.timeouts,
    )  # s'_t = s_{t+1}: the same two episodes
    potential, fit = fit_value_potential(exact, 0.5)
    assert fit["r2"] == pytest.approx(1.0) and potential.weights[0] == pytest.approx(1.0, abs=1e-5)
    assert potential.bias == pytest.approx(0.0, abs=1e-4)
    obs = np.random.default_rng(0).normal(size=(5, 2)).astype(f32)
    linear = LinearPotential((0.5, -2.0), 1.0, scale=3.0)
    np.testing.assert_allclose(linear(obs), 3 * (obs @ [0.5, -2.0] + 1), rtol=1e-6)
    np.testing.assert_allclose(linear(torch.as_tensor(obs)).numpy(), linear(obs), rtol=1e-5)


# ------------------------------------------------------------------------------------ training
@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("shaping_cache")  # the dynamics are shared: shaping does not change them


def train(config: Path, sets: list[str], run_dir: Path) -> tuple[TrainingLoop, dict]:
    cfg = load_config(config, sets)
    trainer = start_run(cfg, run_dir, show_progress=False)
    summary = trainer.run()
    assert json.loads((run_dir / "summary.json").read_text())["shaping"] == json.loads(json.dumps(summary["shaping"]))
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["shaping"] == cfg.to_dict()["shaping"]
    return trainer, summary


def test_training_with_the_clip_config(hopper_file, cache, tmp_path):
    # the shipped overlay, clipping tighter than the random hopper data's rewards and applied to both
    sets = smoke(hopper_file, cache, morec=False, epochs=1) + [
        "shaping.low=0",
        "shaping.high=0.9",
        "shaping.apply_to=both",
    ]
    trainer, summary = train(CLIP, sets, tmp_path / "run")
    raw = trainer.dataset.rewards
    assert raw.min() < 0 and raw.max() > 0.9  # the clip bites on real data
    real = trainer.real.rewards.numpy()
    np.testing.assert_array_equal(real, np.clip(raw, 0.0, 0.9))
    model = trainer.model_buffer.all().rewards  # MOBILE: no penalty in the written model rewards
    assert len(model) > 0 and float(model.min()) >= 0.0 and float(model.max()) <= np.float32(0.9)
    shaping = summary["shaping"]
    assert (
        shaping["transform"] == "clip"
        and shaping["apply_to"] == "both"
        and shaping["parameters"] == {"low": 0.0, "high": 0.9}
    )
    assert shaping["dataset"]["changed_fraction"] > 0 and shaping["dataset"]["reward_max_after"] == pytest.approx(0.9)
    assert shaping["model"]["transitions_this_session"] == len(model)
    assert shaping["model"]["reward_mean_after"] != pytest.approx(shaping["model"]["reward_mean_before"])
    # another shaping is another config: resuming this run with it is refused
    other = load_config(CLIP, sets[:-3] + ["shaping.high=2"])
    with pytest.raises(ConfigError, match=r"differs in \['shaping.apply_to', 'shaping.high', 'shaping.low'\]"):
        start_run(other, tmp_path / "run", resume=True, show_progress=False)


@pytest.mark.parametrize("device", DEVICES)
def test_training_with_the_potential_config(hopper_file, cache, tmp_path, device):
    trainer, summary = train(
        POTENTIAL, smoke(hopper_file, cache, morec=False, epochs=1, device=device), tmp_path / "run"
    )
    ds, gamma = trainer.dataset, trainer.cfg.agent.gamma
    potential = trainer.shaping.transform.potential
    assert trainer.shaping.transform.gamma == gamma == 0.99  # gamma: null takes agent.gamma
    expected = ds.rewards + gamma * potential(ds.next_observations) * ~ds.terminals - potential(ds.observations)
    assert trainer.real.rewards.device.type == device
    np.testing.assert_allclose(trainer.real.rewards.cpu().numpy(), expected, rtol=1e-5, atol=1e-4)
    shaping = summary["shaping"]
    assert shaping["built"]["name"] == "PotentialShaping" and shaping["built"]["potential"]["name"] == "LinearPotential"
    assert list(shaping["built"]["potential"]["weights"]) == pytest.approx(list(potential.weights))
    assert 0 < shaping["potential_fit"]["r2"] <= 1
    # model rewards: all written this session (one rollout, MOBILE: no penalty); the shaping term is
    # gamma * Phi(s') [not terminal] - Phi(s) on each, so the means differ by its mean
    model = trainer.model_buffer.all()
    assert model.rewards.device.type == device
    obs, next_obs, terminals = (x.cpu().numpy() for x in (model.observations, model.next_observations, model.terminals))
    term = gamma * potential(next_obs) * ~terminals - potential(obs)
    assert shaping["model"]["transitions_this_session"] == len(model) > 0
    assert shaping["model"]["reward_mean_after"] - shaping["model"]["reward_mean_before"] == pytest.approx(
        term.mean(), rel=1e-4, abs=1e-4
    )


# ------------------------------------------------------------------------------------ relabel
def test_relabel_with_shaping(hopper_file, tmp_path, capsys):
    out = tmp_path / "clipped.hdf5"
    assert (
        main(["relabel", "--dataset", str(hopper_file), "--method", "none", "--shaping", str(CLIP), "--out", str(out)])
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    original, clipped = load_dataset(hopper_file), load_dataset(out)
    np.testing.assert_array_equal(
        clipped.rewards, np.clip(original.rewards, -1.0, 10.0)
    )  # apply_to: model is the training side
    np.testing.assert_array_equal(clipped.observations, original.observations)
    assert clipped.metadata["reward_shaping"] == [{"name": "Clip", "low": -1.0, "high": 10.0}]
    assert report["shaping"]["transform"] == "clip" and "fit" not in report

    out = tmp_path / "potential.hdf5"
    assert (
        main(
            [
                "relabel",
                "--dataset",
                str(hopper_file),
                "--method",
                "ircr",
                "--episodic",
                "--shaping",
                str(POTENTIAL),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["fit"] and report["shaping"]["built"]["gamma"] == 0.99 and "r2" in report["shaping"]["potential_fit"]
    assert load_dataset(out).metadata["reward_relabelling"]["method"] == "ircr"
    assert load_dataset(out).metadata["reward_shaping"][0]["potential"]["name"] == "LinearPotential"

    assert main(["relabel", "--dataset", str(hopper_file), "--method", "none", "--out", str(tmp_path / "x.hdf5")]) == 2
    assert "--method none relabels nothing by itself; pass --shaping" in capsys.readouterr().err
    none = tmp_path / "none.yaml"
    none.write_text("shaping:\n  transform: none\n")
    assert (
        main(
            [
                "relabel",
                "--dataset",
                str(hopper_file),
                "--method",
                "none",
                "--shaping",
                str(none),
                "--out",
                str(tmp_path / "x.hdf5"),
            ]
        )
        == 2
    )
    assert "its shaping.transform is none" in capsys.readouterr().err
