"""`morec collect`: a tiny real collection run, its files, determinism and resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from morec.cli import main
from morec.collect.behaviour import BehaviourTrainer, SACConfig
from morec.collect.envs import make_env, record_episodes, record_episodes_batched
from morec.collect.recipe import CollectConfig, collect
from morec.data import load_dataset
from morec.tasks import D4RL_LEVELS

TINY_SAC = SACConfig(train_steps=600, warmup_steps=200, eval_every=200, eval_episodes=2, hidden_size=32, batch_size=64)


def tiny_config(out, **kw) -> CollectConfig:
    return CollectConfig(env_id="Hopper-v4", out_dir=str(out), dataset_size=300, neorl=True, sac=TINY_SAC, **kw)


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    out = tmp_path_factory.mktemp("collect")
    return out, collect(tiny_config(out), show_progress=False)


def test_writes_every_level_in_both_layouts(collected):
    out, summary = collected
    for level in D4RL_LEVELS:
        d4rl = load_dataset(out / f"hopper-{level}.hdf5")
        neorl = load_dataset(out / f"hopper-{level}.npz", env_id="Hopper-v4")
        assert d4rl.metadata["layout"] == "d4rl" and d4rl.obs_dim == 11
        assert neorl.metadata["layout"] == "neorl" and neorl.obs_dim == 12
        # the same transitions; the NeoRL layout only adds the x position in front
        np.testing.assert_array_equal(neorl.observations[:, 1:], d4rl.observations)
        np.testing.assert_array_equal(neorl.next_observations[:, 1:], d4rl.next_observations)
        np.testing.assert_array_equal(neorl.actions, d4rl.actions)
        np.testing.assert_array_equal(neorl.rewards, d4rl.rewards)
        np.testing.assert_array_equal(neorl.terminals, d4rl.terminals)
        np.testing.assert_array_equal(neorl.timeouts, d4rl.timeouts)
        assert summary["datasets"][f"{level}:d4rl"]["transitions"] == len(d4rl)
    sizes = {lvl: len(load_dataset(out / f"hopper-{lvl}.hdf5")) for lvl in D4RL_LEVELS}
    assert sizes["random"] == sizes["medium"] == sizes["expert"] == 300
    assert sizes["medium-expert"] == 600
    assert sizes["medium-replay"] == summary["medium_policy"]["step"]


def test_loaded_transitions_match_the_simulator_state(collected):
    out, _ = collected
    ds = load_dataset(out / "hopper-expert.hdf5")
    qpos, qvel = ds.infos["qpos"], ds.infos["qvel"]
    # Hopper's observation is qpos without x, then qvel clipped to [-10, 10]
    np.testing.assert_allclose(
        ds.observations, np.concatenate([qpos[:, 1:], np.clip(qvel, -10, 10)], 1), rtol=0, atol=1e-6
    )
    neorl = load_dataset(out / "hopper-expert.npz")
    np.testing.assert_allclose(neorl.observations[:, 0], qpos[:, 0], atol=1e-6)
    # within an episode each next observation is the following observation
    inner = np.ones(len(ds), bool)
    inner[ds.episode_ends()] = False
    np.testing.assert_array_equal(ds.next_observations[inner], ds.observations[1:][inner[:-1]])
    assert ds.timeouts[-1] or ds.terminals[-1]


def test_medium_expert_is_medium_then_expert(collected):
    out, _ = collected
    me = load_dataset(out / "hopper-medium-expert.hdf5")
    med, exp = load_dataset(out / "hopper-medium.hdf5"), load_dataset(out / "hopper-expert.hdf5")
    np.testing.assert_array_equal(me.observations, np.concatenate([med.observations, exp.observations]))
    assert me.timeouts[len(med) - 1] or me.terminals[len(med) - 1]


def test_medium_replay_is_the_training_data_up_to_the_medium_policy(collected):
    out, summary = collected
    state = torch.load(out / "behaviour_sac" / "state.pt", weights_only=False)
    step = summary["medium_policy"]["step"]
    replay = load_dataset(out / "hopper-medium-replay.hdf5")
    np.testing.assert_array_equal(replay.observations, state["transitions"]["observations"][:step].astype(np.float32))
    np.testing.assert_array_equal(replay.actions, state["transitions"]["actions"][:step].astype(np.float32))
    assert step >= TINY_SAC.warmup_steps


def test_same_seed_same_datasets_and_finished_run_is_reused(collected, tmp_path):
    out, summary = collected
    again = collect(tiny_config(tmp_path), show_progress=False)
    for level in ("random", "medium", "expert", "medium-replay"):
        a, b = load_dataset(out / f"hopper-{level}.hdf5"), load_dataset(tmp_path / f"hopper-{level}.hdf5")
        for key, arr in a.arrays().items():
            np.testing.assert_array_equal(arr, b.arrays()[key], err_msg=f"{level}/{key}")
    assert again["evaluations"] == [{**e, "policy_path": e["policy_path"]} for e in summary["evaluations"]]
    # a finished run resumes at its end and trains no further
    third = collect(tiny_config(tmp_path), show_progress=False)
    assert third["resumed_at_step"] == TINY_SAC.train_steps
    assert third["evaluations"] == again["evaluations"]


def test_interrupted_training_resumes_from_last_checkpoint(tmp_path, monkeypatch, capsys):
    cfg = SACConfig(train_steps=300, warmup_steps=100, eval_every=100, eval_episodes=1, hidden_size=16, batch_size=32)
    trainer = BehaviourTrainer("Hopper-v4", tmp_path, cfg, seed=3)
    original = BehaviourTrainer._evaluate_and_checkpoint
    calls = {"n": 0}

    def crash_after_second(self):
        original(self)
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(BehaviourTrainer, "_evaluate_and_checkpoint", crash_after_second)
    with pytest.raises(KeyboardInterrupt):
        trainer.train(show_progress=False)
    monkeypatch.setattr(BehaviourTrainer, "_evaluate_and_checkpoint", original)
    resumed = BehaviourTrainer("Hopper-v4", tmp_path, cfg, seed=3)
    assert resumed.try_resume() and resumed.step == 200 and len(resumed.log) == 200
    # the episode running at the checkpoint was cut there
    assert resumed.log.last("timeouts") or resumed.log.last("terminals")
    capsys.readouterr()
    evaluations = resumed.train(show_progress=False)
    assert [e.step for e in evaluations] == [100, 200, 300] and len(resumed.log) == 300
    assert capsys.readouterr().err.startswith("SAC Hopper-v4 step 300/300: eval return ")  # a log line, not a bar


def test_resume_refuses_another_config(tmp_path):
    cfg = SACConfig(train_steps=50, warmup_steps=50, eval_every=50, eval_episodes=1, hidden_size=16, batch_size=32)
    BehaviourTrainer("Hopper-v4", tmp_path, cfg).train(show_progress=False)
    other = BehaviourTrainer("Hopper-v4", tmp_path, SACConfig(**{**cfg.__dict__, "hidden_size": 8}))
    with pytest.raises(ValueError, match="another output directory"):
        other.try_resume()


def test_bad_collect_config_is_rejected():
    with pytest.raises(KeyError, match="unknown task"):
        CollectConfig(env_id="Ant-v4")
    with pytest.raises(ValueError, match="unknown level"):
        CollectConfig(levels=("medium", "superb"))
    with pytest.raises(ValueError, match=r"actor_lr must be positive \(--lr\)"):
        SACConfig(actor_lr=0.0)
    with pytest.raises(ValueError, match=r"alpha must be positive or None"):
        SACConfig(alpha=0.0)


def test_fixed_alpha_trains_and_resumes(tmp_path):
    cfg = SACConfig(
        train_steps=60, warmup_steps=50, eval_every=30, eval_episodes=1, hidden_size=16, batch_size=32, alpha=0.2
    )
    trainer = BehaviourTrainer("Hopper-v4", tmp_path, cfg)
    trainer.train(show_progress=False)
    assert trainer.algo.alpha.value == 0.2
    again = BehaviourTrainer("Hopper-v4", tmp_path, cfg)
    assert again.try_resume() and again.step == 60
    with pytest.raises(ValueError, match=r"alpha 0.2 -> None"):
        BehaviourTrainer("Hopper-v4", tmp_path, SACConfig(**{**cfg.__dict__, "alpha": None})).try_resume()


@pytest.mark.slow
def test_quickstart_trains_the_filter_and_clip_of_the_shipped_recommended_config(tmp_path):
    from dataclasses import asdict

    from morec.bundled_configs import find_config
    from morec.runs.quickstart import RECOMMENDED_CONFIG, training_config
    from morec.training.config import load_config

    shipped = load_config(find_config(RECOMMENDED_CONFIG))
    cfg = training_config(tmp_path / "d.hdf5", tmp_path, 0, "cpu", [])
    assert cfg.morec and cfg.algorithm == "mobile" and asdict(cfg.filter) == asdict(shipped.filter)
    assert cfg.rollout.candidate_clip == shipped.rollout.candidate_clip == 25.0
    assert cfg.rollout.horizon == 50  # the quickstart's own small budget, not the config's
    assert (
        training_config(tmp_path / "d.hdf5", tmp_path, 0, "cpu", ["filter.threshold=auto"]).filter.threshold == "auto"
    )


def test_cli_quickstart_default(tmp_path, capsys):
    assert main(["quickstart", "--out", str(tmp_path / "qs" / "data"), "--no-progress"]) == 0
    assert "quickstart finished" in capsys.readouterr().out


def test_exported_sac_policy_is_the_actors_mode_and_loads_as_torchscript(collected, tmp_path):
    import torch

    from morec.rollout.policies import export_sac_actor, load_sac_actor, load_torchscript_policy

    out, summary = collected
    checkpoint = out / "behaviour_sac" / summary["expert_policy"]["policy_path"]
    path = export_sac_actor(checkpoint, "Hopper-v4", tmp_path / "expert.pt")
    policy = load_torchscript_policy(path, obs_dim=11, act_dim=3)
    obs = torch.randn(5, 11)
    (mu, _), _ = load_sac_actor(checkpoint, "Hopper-v4")(obs)
    torch.testing.assert_close(policy(obs), torch.tanh(mu))


def test_generalisation_measures_the_filter_on_collected_data(collected, tmp_path, capsys):
    """`morec generalisation` end to end on the collected files: it trains what it needs once and
    reuses it on a second call."""
    import json

    out_dir, _ = collected
    argv = [
        "generalisation",
        "--collect-dir",
        str(out_dir),
        "--levels",
        "medium",
        "--generators",
        "fixed",
        "--updates",
        "100",
        "--horizon",
        "3",
        "--starts",
        "10",
        "--out",
        str(tmp_path / "gen"),
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    results = json.loads(printed)
    assert results == json.loads((tmp_path / "gen" / "results.json").read_text())
    run = results["runs"]["medium"]
    dyn_report = json.loads((tmp_path / "gen" / "medium" / "dynamics" / "report.json").read_text())
    assert run["dynamics"] == dyn_report["fit"]["elite_holdout_mse"] and results["env_id"] == "Hopper-v4"
    reward_report = json.loads((tmp_path / "gen" / "medium" / "reward_fixed" / "report.json").read_text())
    assert run["fixed"]["discrimination"] == reward_report["discrimination"]
    assert set(run["fixed"]["eval"]) == {"random", "noisy_behaviour", "expert"}
    for ev in run["fixed"]["eval"].values():
        assert ev["ratio"] == pytest.approx(ev["filtered_error"] / ev["unfiltered_error"])
        assert 1 <= ev["filtered_length"] <= 3 and ev["unfiltered_length"] <= 3
    stamp = (tmp_path / "gen" / "medium" / "reward_fixed" / "report.json").stat().st_mtime_ns
    assert main(argv) == 0  # reuses the trained dynamics and reward
    assert (tmp_path / "gen" / "medium" / "reward_fixed" / "report.json").stat().st_mtime_ns == stamp
    assert (
        json.loads(capsys.readouterr().out)["runs"]["medium"]["fixed"]["discrimination"]
        == run["fixed"]["discrimination"]
    )


def test_envs_side_by_side_record_contiguous_episodes_in_their_budget():
    envs = [make_env("Hopper-v4", i) for i in range(3)]
    rng = np.random.default_rng(0)
    calls = []

    def act(obs):
        calls.append(len(obs))
        return rng.uniform(-1, 1, (len(obs), 3)).astype(np.float32)

    arrays = record_episodes_batched(envs, act, 1_001, seed=7).arrays()
    assert len(arrays["actions"]) == 1_001 and max(calls) == 3 and sum(calls) == 1_001  # one batched call per step
    # env shares 334, 334, 333, one after another; each share ends in a cut (timeout) or a real end
    ends = np.flatnonzero(arrays["terminals"] | arrays["timeouts"])
    assert {333, 667, 1_000} <= set(ends) and not (arrays["terminals"] & arrays["timeouts"]).any()
    inside = np.setdiff1d(np.arange(1_000), ends)  # within an episode the next row continues this one
    np.testing.assert_array_equal(arrays["next_observations"][inside], arrays["observations"][inside + 1])
    # env 1's first episode starts from reset(seed=8), as a one-env recording with seed 8 does
    alone = record_episodes(make_env("Hopper-v4", 1), lambda o: np.zeros(3, np.float32), 1, seed=8).arrays()
    np.testing.assert_array_equal(arrays["observations"][334], alone["observations"][0])


def test_collect_records_with_the_envs_it_is_given(tmp_path):
    assert (
        CollectConfig(dataset_size=20_000).recording_envs == 2 and CollectConfig(dataset_size=5_000).recording_envs == 1
    )
    assert CollectConfig(dataset_size=10**7).recording_envs == CollectConfig.MAX_AUTO_ENVS
    summary = collect(tiny_config(tmp_path, num_envs=4, levels=("medium",)), show_progress=False)
    medium = load_dataset(tmp_path / "hopper-medium.hdf5")
    assert len(medium) == 300 and medium.timeouts.sum() + medium.terminals.sum() >= 4
    assert summary["config"]["num_envs"] == 4 and summary["record_seconds"]["medium"] > 0
    with pytest.raises(ValueError, match="num_envs must be between 1 and 1000"):
        tiny_config(tmp_path, num_envs=0)
