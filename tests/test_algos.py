"""MOPO / MOBILE updates, MOBILE's penalty by hand, config errors, and the train pipeline
(TensorBoard tags, resume = uninterrupted run, determinism)."""

from __future__ import annotations

import json
import warnings
from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest
import torch
from tianshou.utils.torch_utils import policy_within_training_step

from morec import ModelBuffer
from morec.dynamics_reward.config import FewSnapshotsWarning
from morec.learners import MOBILE, MOPO, MixedSampler, MobileConfig, TwinCritic
from morec.training.config import ConfigError, config_from_dict, load_config
from morec.training.pipeline import start_run
from tests.helpers import DEVICES, random_dataset_file, smoke
from tests.learner_harness import (
    A,
    O,
    TinyEnsemble,
    assert_resume_reproduces_the_uninterrupted_run,
    make_algo,
    real_batch,
)

O_HOPPER, A_HOPPER = 11, 3


@pytest.mark.parametrize("cls", [MOPO, MOBILE])
def test_one_update_changes_parameters_and_losses_are_finite(cls):
    kw = {"dynamics": TinyEnsemble(), "mobile": MobileConfig(beta=1.0, num_samples=3)} if cls is MOBILE else {}
    algo = make_algo(cls, **kw)
    buf = ModelBuffer(1000, O, A)
    buf.add(real_batch(500, seed=1))
    sampler = MixedSampler(real_batch(), buf, 0.1, torch.Generator().manual_seed(0))
    before = {k: v.clone() for k, v in algo.state_dict().items() if isinstance(v, torch.Tensor)}
    with policy_within_training_step(algo.policy):
        stats = algo.update(sampler, 64)
    for key in ("actor_loss", "critic_loss", "alpha_loss", "q_mean", "target_mean"):
        value = getattr(stats, key)  # a 0-dim tensor on the algorithm's device: no host sync per step
        assert isinstance(value, torch.Tensor) and value.dim() == 0 and np.isfinite(float(value)), key
    after = algo.state_dict()
    for prefix in ("policy.actor.", "critic.layers.", "critic_target.layers.", "log_alpha"):
        changed = [k for k in before if k.startswith(prefix) and not torch.equal(before[k], after[k])]
        assert changed, f"nothing under {prefix} changed"
    assert algo.lr_schedulers[0].get_last_lr()[0] < 1e-4  # cosine annealing stepped
    assert (stats.penalty_mean > 0) == (cls is MOBILE)
    with pytest.raises(RuntimeError, match="training step"):
        algo.update(sampler, 8)


def test_mobile_penalty_matches_a_hand_computation():
    algo = make_algo(MOBILE, dynamics=TinyEnsemble(), mobile=MobileConfig(beta=2.0, num_samples=5))
    obs, act = torch.randn(6, O), torch.rand(6, A)
    torch.manual_seed(123)
    u = algo.bellman_uncertainty(obs, act)
    # by hand: the same action noise stream, elites predict obs and obs + 1
    torch.manual_seed(123)
    per_elite = []
    next_obs = torch.stack([obs, obs + 1.0]).expand(5, 2, 6, O)
    (mu, sigma), _ = algo.actor(next_obs.reshape(-1, O))
    a = torch.tanh(mu + sigma * torch.randn_like(mu)).reshape(5, 2, 6, A)
    with torch.no_grad():
        for e in range(2):
            q = torch.stack([algo.critic_target(next_obs[n, e], a[n, e]).min(0).values for n in range(5)])  # [N, B]
            per_elite.append(q.mean(0))
    expected = torch.stack(per_elite).std(0)
    torch.testing.assert_close(u, expected, rtol=1e-5, atol=1e-6)
    batch = real_batch(6)
    batch.observations, batch.actions = obs, act
    torch.manual_seed(123)
    torch.testing.assert_close(
        algo.model_penalty(batch, algo.networks(), algo.next_state_sampler()), 2.0 * expected, rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_mobile_penalty_in_row_blocks_is_the_whole_pass(dtype, monkeypatch):
    import morec.learners.mobile as mobile

    algo = make_algo(MOBILE, dynamics=TinyEnsemble(), mobile=MobileConfig(num_samples=5, penalty_dtype=dtype))
    obs, act = torch.randn(30, O), torch.rand(30, A)
    penalties = []
    for block_rows in (10**6, 64):  # 5 samples x 2 elites x 30 rows = 300 rows: one block, then 5
        monkeypatch.setattr(mobile, "PENALTY_BLOCK_ROWS", block_rows)
        torch.manual_seed(123)  # the same action noise: drawn block by block, the same stream
        penalties.append(algo.bellman_uncertainty(obs, act))
    # bit for bit at the benchmark's sizes (docs/speed.md); at these tiny ones MKL rounds a block's
    # products differently in the last bit
    torch.testing.assert_close(penalties[1], penalties[0], rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("hidden", [(32, 32), (16,), (8, 8, 8)])
def test_twin_critic_equals_its_layers_run_one_by_one(hidden):
    torch.manual_seed(0)
    critic = TwinCritic(O, A, hidden, num_critics=3)
    obs, act = torch.randn(4, 5, O, requires_grad=True), torch.rand(4, 5, A)

    def layer_by_layer():  # every layer an EnsembleLinear on the shared input, ReLU between
        x = torch.cat([obs, act], -1).reshape(-1, O + A)
        for layer in critic.layers[:-1]:
            x = torch.relu(layer(x))
        return critic.layers[-1](x)[..., 0].reshape(3, 4, 5)

    expected = layer_by_layer()
    x = torch.cat([obs, act], -1).reshape(-1, O + A)
    inputs = [obs, *critic.parameters()]
    want = torch.autograd.grad(expected.sum(), inputs)
    # forward() picks the split form on the CPU; the batched form runs on a GPU and when compiled
    for q in (critic(obs, act), critic._split(x).reshape(3, 4, 5), critic._batched(x).reshape(3, 4, 5)):
        torch.testing.assert_close(q, expected)
        for g, w in zip(torch.autograd.grad(q.sum(), inputs), want, strict=True):
            torch.testing.assert_close(g, w)


@pytest.mark.parametrize("device", DEVICES)
def test_mobile_penalty_in_bfloat16_stays_close_to_float32(device):
    if device == "cpu" and not torch.backends.mkldnn.is_available():
        pytest.skip("bfloat16 matrix products need oneDNN on the CPU")
    algos = {
        dtype: make_algo(MOBILE, dynamics=TinyEnsemble(), mobile=MobileConfig(num_samples=50, penalty_dtype=dtype))
        for dtype in ("float32", "bfloat16")
    }
    algos["bfloat16"].load_state_dict(algos["float32"].state_dict())
    obs, act = torch.randn(64, O), torch.rand(64, A)
    penalties = {}
    for dtype, algo in algos.items():
        algo.to(device)
        torch.manual_seed(5)
        penalties[dtype] = algo.bellman_uncertainty(obs.to(device), act.to(device))
    assert penalties["bfloat16"].dtype == torch.float32
    critic, x = algos["bfloat16"].critic, torch.cat([obs, act], -1).to(device)
    with torch.autocast(device, dtype=torch.bfloat16):  # the critics' output layer stays float32 under autocast
        assert (
            critic(obs.to(device), act.to(device)).dtype
            == critic._batched(x).dtype
            == critic._split(x).dtype
            == torch.float32
        )
    relative = (penalties["bfloat16"] - penalties["float32"]).abs() / penalties["float32"].abs().mean()
    assert relative.mean() < 0.05, relative.mean()
    with pytest.raises(ConfigError, match="penalty_dtype must be 'float32' or 'bfloat16', got 'float16'"):
        load_config(None, ["mobile.penalty_dtype=float16"])


def test_mobile_penalises_only_the_model_rows(monkeypatch):
    algo = make_algo(MOBILE, dynamics=TinyEnsemble(), mobile=MobileConfig(beta=1.0, num_samples=3))
    buf = ModelBuffer(100, O, A)
    model_rows = real_batch(50, seed=3)
    buf.add(model_rows)
    sampler = MixedSampler(real_batch(), buf, 0.25, torch.Generator().manual_seed(0))
    seen = []
    real_penalty = algo.model_penalty

    def spy(batch, nets, sample_next):
        seen.append(batch.observations)
        return real_penalty(batch, nets, sample_next)

    monkeypatch.setattr(algo, "model_penalty", spy)
    with policy_within_training_step(algo.policy):
        stats = algo.update(sampler, 16)
    assert [len(o) for o in seen] == [12]  # 4 real rows, 12 model rows: only those are penalised
    assert all(any(torch.equal(row, m) for m in model_rows.observations) for row in seen[0])
    assert stats.penalty_mean > 0


def test_mobile_switches():
    algo = make_algo(
        MOBILE,
        dynamics=TinyEnsemble(),
        mobile=MobileConfig(deterministic_backup=True, target_lower_bound=None, actor_on_target_critics=True),
    )
    assert not algo.backup_entropy() and algo.target_lower_bound() is None and algo.actor_critic() is algo.critic_target
    plain = make_algo(MOBILE, dynamics=TinyEnsemble(), mobile=MobileConfig())
    assert plain.backup_entropy() and plain.target_lower_bound() == 0.0 and plain.actor_critic() is plain.critic


def test_sampler_mixes_real_and_model_rows():
    buf = ModelBuffer(100, O, A)
    sampler = MixedSampler(real_batch(), buf, 0.25, torch.Generator().manual_seed(0))
    assert sampler.sample(16).n_model == 0  # empty model buffer: all real
    buf.add(real_batch(50, seed=3))
    batch = sampler.sample(16)
    assert batch.n_model == 12


# ------------------------------------------------------------------------------------ config
def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"unknown config key 'rollout.horizn'; did you mean rollout.horizon\?"):
        load_config(None, ["rollout.horizn=3"])
    with pytest.raises(ConfigError, match="train.epochs must be an integer, got 'five'"):
        load_config(None, ["train.epochs=five"])
    with pytest.raises(ConfigError, match="dataset must be a string or null"):
        load_config(None, ["dataset=3"])
    with pytest.raises(ConfigError, match="task: unknown task 'hoper-medium-v2'"):
        load_config(None, ["task=hoper-medium-v2"])
    with pytest.raises(ConfigError, match="agent.auto_alpha must be"):
        load_config(None, ["agent.auto_alpha=maybe"])
    with pytest.raises(ConfigError, match="MOBILE uses mobile.beta"):
        load_config(None, ["rollout.penalty_coef=1.0"])
    cfg = load_config(None, ["agent.auto_alpha=false", "dynamics.weight_decays=[1e-5, 1e-5, 1e-5, 1e-5, 1e-4]"])
    assert cfg.agent.auto_alpha is False and cfg.dynamics.weight_decays == (1e-5,) * 4 + (1e-4,)
    assert config_from_dict(cfg.to_dict()) == cfg


def test_every_shipped_config_loads():
    from pathlib import Path

    files = sorted(Path(__file__).resolve().parents[1].glob("configs/**/*.yaml"))
    assert len(files) >= 8 * 21  # 21 tasks x {mopo, mobile} x {no MOREC, MOREC recommended, matched, the paper's}
    for path in files:
        if path.name == "smoke.yaml" or path.parent.name == "shaping":
            load_config(path)
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("error", FewSnapshotsWarning)  # the full configs' rewards use >= 5 snapshots
            cfg = load_config(path)
        assert not cfg.morec or cfg.reward.planned_snapshots == 10, path


@pytest.mark.parametrize("algorithm", ["mopo", "mobile"])
def test_matched_morec_configs_change_only_the_rollout_and_the_recommended_one_only_the_cuts(algorithm):
    """``<algo>_morec_matched``: the paper's MOREC rollout, filter and reward (``paper/<algo>_morec``),
    every other key the host's; ``<algo>_morec`` (recommended): the matched config with the
    ``auto`` threshold and cuts that end a rollout without a terminal flag."""
    from pathlib import Path

    from morec.training.config import config_differences

    root = Path(__file__).resolve().parents[1] / "configs"
    for folder in sorted(p for p in root.glob("*/*") if (p / f"{algorithm}.yaml").exists()):
        host, paper, matched, recommended = (
            load_config(folder / f"{name}.yaml").to_dict()
            for name in (algorithm, f"paper/{algorithm}_morec", f"{algorithm}_morec_matched", f"{algorithm}_morec")
        )
        changed = config_differences(host, matched)
        assert {k.split(".")[0] for k in changed} <= {"rollout", "filter", "reward", "morec"}, folder
        assert "rollout.penalty_coef" not in changed and changed["morec"] == (False, True)
        assert not {
            k for k in config_differences(paper, matched) if k.split(".")[0] in ("rollout", "filter", "reward")
        } - {"rollout.penalty_coef"}
        assert dict(config_differences(matched, recommended)) == {
            "filter.threshold": (0.6, "auto"),
            "filter.truncate_as": ("terminal", "stop"),
        }, folder


def test_the_smoke_overlay_lays_the_smoke_budget_over_any_config(tmp_path):
    from pathlib import Path

    from morec.training.config import SMOKE_OVERLAY, resolve_config

    for path in sorted(Path(__file__).resolve().parents[1].glob("configs/*/*/*.yaml"))[::17]:
        smoke = resolve_config([str(path), "smoke.yaml"])  # what `--config X --config smoke.yaml` trains
        assert smoke == load_config(path, overlays=[SMOKE_OVERLAY])
        assert smoke.train.epochs == 2 and smoke.rollout.batch_size == 100 and smoke.task == load_config(path).task
    (tmp_path / "a.yaml").write_text("overlay: b.yaml\ntrain:\n  epochs: 7\n  batch_size: 32\n")
    (tmp_path / "b.yaml").write_text("train:\n  epochs: 3\n")
    cfg = load_config(tmp_path / "a.yaml", ["train.log_every=5"])
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.train.log_every) == (
        3,
        32,
        5,
    )  # the overlay wins per key, --set last
    (tmp_path / "b.yaml").write_text("overlay: a.yaml\n")
    with pytest.raises(ConfigError, match="names itself"):
        load_config(tmp_path / "a.yaml")
    (tmp_path / "a.yaml").write_text("overlay: [missing.yaml]\n")
    with pytest.raises(ConfigError, match=r"missing.yaml \(named by .*a.yaml\) does not exist"):
        load_config(tmp_path / "a.yaml")


def test_filter_options_and_a_warning_for_too_few_snapshots():
    from morec.dynamics_reward.config import FewSnapshotsWarning

    cfg = load_config(None, ["filter.threshold=auto", "filter.truncate_as=stop", "rollout.candidate_clip=25"])
    assert cfg.filter.threshold == "auto" and cfg.filter.truncate_as == "stop" and cfg.rollout.candidate_clip == 25.0
    assert load_config(None, []).filter.threshold == "auto" and load_config(None, []).rollout.candidate_clip is None
    with pytest.raises(ConfigError, match="threshold must be a number or 'auto'"):
        load_config(None, ["filter.threshold=high"])
    # the learning checks' setting: 1000 updates, a snapshot per 100, stride 10 -> one snapshot
    with pytest.warns(FewSnapshotsWarning, match="leaves 1 discriminator snapshot"):
        load_config(None, ["morec=true", "reward.num_updates=1000"])
    assert load_config(None, []).reward.planned_snapshots == 10  # the defaults (and train-reward's) use 10


@pytest.mark.parametrize("device", DEVICES)
def test_smoke_run_writes_tensorboard_tags_and_summary(hopper_file, tmp_path, device, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = load_config(None, smoke(hopper_file, tmp_path / "cache", device=device))
    trainer = start_run(cfg, tmp_path / "run", show_progress=False)
    summary = trainer.run()
    printed = [line for line in capsys.readouterr().err.splitlines() if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in printed] == ["epoch 1/2 (step 20)", "epoch 2/2 (step 40)"]
    assert trainer.dynamics.device.type == device and trainer.model_buffer.storage.observations.device.type == device
    assert all(p.device.type == device for p in trainer.algo.parameters())
    assert summary["gradient_steps"] == 40 and len(summary["evaluations"]) == 2
    assert summary["last10_mean_score"] == pytest.approx(
        np.mean([e["normalized_score"] for e in summary["evaluations"]])
    )
    events = EventAccumulator(str(tmp_path / "run" / "tb")).Reload()
    tags = set(events.Tags()["scalars"])
    for tag in (
        "train/actor_loss",
        "train/critic_loss",
        "train/alpha",
        "train/q_mean",
        "train/penalty_mean",
        "rollout/mean_length",
        "rollout/truncation_rate",
        "rollout/reward_d",
        "eval/return_mean",
        "eval/normalized_score",
        "perf/gradient_steps_per_s",
        "dynamics/train_nll",
    ):
        assert tag in tags, tag
    assert [e.step for e in events.Scalars("eval/normalized_score")] == [20, 40]
    assert (tmp_path / "run" / "summary.json").exists() and (tmp_path / "run" / "config.yaml").exists()
    from pathlib import Path

    assert (Path(summary["models"]["dynamics"]) / "dynamics.pt").exists()
    assert (Path(summary["models"]["reward"]) / "dynamics_reward.pt").exists()  # what `morec eval-model` takes
    rollouts = summary["rollouts"]  # rollouts at steps 0 and 20 of 40
    assert rollouts["count"] == 2 and rollouts["model_buffer_size"] == len(trainer.model_buffer) > 0
    assert 0 < rollouts["mean_length"] <= 5 and 0 <= rollouts["truncation_rate"] <= 1
    from morec.rollout.policies import load_torchscript_policy

    policy = load_torchscript_policy(tmp_path / "run" / summary["policy"], O_HOPPER, A_HOPPER)
    obs = trainer.real.observations[:7].cpu()
    with torch.no_grad():
        (mu, _), _ = trainer.algo.actor(obs.to(device))
    torch.testing.assert_close(policy(obs), torch.tanh(mu).cpu().clamp(-1, 1))  # the final policy's mode
    with pytest.raises(ConfigError, match="already holds a run"):
        start_run(cfg, tmp_path / "run", show_progress=False)


def test_auto_threshold_truncate_as_stop_and_candidate_clip_train(hopper_file, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = load_config(
        None,
        smoke(
            hopper_file,
            tmp_path / "cache",
            epochs=1,
            **{"filter.threshold": "auto", "filter.truncate_as": "stop", "rollout.candidate_clip": 25},
        ),
    )
    trainer = start_run(cfg, tmp_path / "run", show_progress=False)
    assert trainer.engine.selector.threshold < 1.4 and trainer.engine.config.candidate_clip == 25
    trainer.run()
    model = trainer.model_buffer.all()
    assert float(model.next_observations.abs().max()) <= 25 and float(model.rewards.abs().max()) <= 25
    events = EventAccumulator(str(tmp_path / "run" / "tb")).Reload()
    assert events.Scalars("rollout/threshold")[0].value == pytest.approx(trainer.engine.selector.threshold)


def test_a_bfloat16_filter_calibrates_its_threshold_as_it_scores_and_trains(hopper_file, tmp_path):
    from morec.dynamics_reward.threshold import resolve_threshold

    overrides = {"filter.threshold": "auto", "filter.truncate_as": "stop"}
    cfg = load_config(None, smoke(hopper_file, tmp_path / "cache", epochs=1, **overrides))
    low = load_config(
        None, smoke(hopper_file, tmp_path / "cache", epochs=1, **overrides, **{"filter.score_dtype": "bfloat16"})
    )
    full = start_run(cfg, tmp_path / "full", show_progress=False).engine.selector
    trainer = start_run(low, tmp_path / "low", show_progress=False)
    selector = trainer.engine.selector
    assert selector.reward.score_dtype == torch.bfloat16 and full.reward.score_dtype == torch.float32
    threshold, _ = resolve_threshold(
        selector.reward, trainer.dynamics, low.filter, low.rollout, seed=low.resolved_model_seed
    )
    assert selector.threshold == threshold  # calibrated on the bfloat16 scores it truncates by
    assert selector.threshold == pytest.approx(full.threshold, abs=0.02)
    trainer.run()


def test_distilled_filter_trains_and_scores_with_one_network(hopper_file, tmp_path, monkeypatch):
    import functools

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    import morec.training.model_cache
    from morec.dynamics_reward.config import DistillationConfig

    monkeypatch.setattr(
        morec.training.model_cache,
        "DistillationConfig",
        functools.partial(DistillationConfig, updates=40, batch_size=32, hidden_sizes=(32,), model_steps=1),
    )
    cfg = load_config(
        None, smoke(hopper_file, tmp_path / "cache", epochs=1, **{"filter.distilled": True, "filter.threshold": "auto"})
    )
    trainer = start_run(cfg, tmp_path / "run", show_progress=False)
    reward = trainer.engine.selector.reward
    assert reward.num_snapshots == 1 and reward.distilled_from is not None and reward.distilled_from >= 1
    trainer.run()
    events = EventAccumulator(str(tmp_path / "run" / "tb")).Reload()
    assert 0 <= events.Scalars("reward/distil_truncation_agreement")[0].value <= 1
    reports = [json.loads(p.read_text()) for p in (tmp_path / "cache").rglob("report.json")]
    (measured_at,) = [r["threshold"] for r in reports if "truncation_agreement" in r]  # the student's
    assert events.Scalars("reward/distil_agreement_threshold")[0].value == pytest.approx(measured_at)
    again = start_run(cfg, tmp_path / "run2", show_progress=False)  # loaded from the cache, the same network
    x = [torch.zeros(3, n) for n in (reward.obs_dim, reward.act_dim, reward.obs_dim)]
    torch.testing.assert_close(again.engine.selector.reward(*x), reward(*x), rtol=0, atol=0)


def test_a_diverged_learner_stops_with_one_line_and_keeps_the_last_finite_checkpoint(hopper_file, tmp_path):
    from morec.training.loop import TrainingDiverged

    sets = smoke(hopper_file, tmp_path / "cache", algorithm="mopo", morec=False, epochs=3)
    cfg = load_config(None, [*sets, "train.log_every=15"])  # logged at 15, 30, 45; epochs end at 20, 40, 60
    trainer = start_run(cfg, tmp_path / "run", show_progress=False)
    update = trainer.algo.update

    def not_finite_from_step_32(sampler, batch_size):  # what a model rollout gone to 1e33 does to SAC
        stats = update(sampler, batch_size)
        if trainer.gradient_step >= 32:
            stats.critic_loss = torch.tensor(float("nan"))
        return stats

    trainer.algo.update = not_finite_from_step_32
    with pytest.raises(
        TrainingDiverged,
        match=r"^training diverged by gradient step 40: train/critic_loss not finite; "
        r"the last model rollout's mean reward was .* rollout\.candidate_clip .* epoch 1 is kept",
    ):
        trainer.run()  # stopped at the epoch's end, before the next log point (45)
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["epoch"] == 1


def test_a_filter_that_cuts_almost_every_rollout_is_said_once(tmp_path):
    cheetah_file = random_dataset_file(
        tmp_path / "halfcheetah.hdf5", "HalfCheetah-v4"
    )  # never terminates: only the filter ends rollouts
    sets = smoke(cheetah_file, tmp_path / "cache", algorithm="mopo", **{"filter.threshold": 1e6})
    cfg = load_config(None, [s.replace("task=Hopper-v4", "task=HalfCheetah-v4") for s in sets])
    with pytest.warns(
        UserWarning, match=r"cut 100% of the first rollout's start states short .* marked each cut a terminal"
    ) as caught:
        start_run(cfg, tmp_path / "run", show_progress=False).run()
    assert sum("MOREC filter" in str(w.message) for w in caught) == 1  # two rollouts, one warning
    with warnings.catch_warnings(
        record=True
    ) as quiet:  # cuts that write no terminal are what the recommended configs do
        warnings.simplefilter("always")
        start_run(
            replace(cfg, filter=replace(cfg.filter, truncate_as="stop")), tmp_path / "stop", show_progress=False
        ).run()
    assert not any("MOREC filter" in str(w.message) for w in quiet)


@pytest.mark.parametrize("device", DEVICES)
def test_resume_reproduces_the_uninterrupted_run(hopper_file, tmp_path, monkeypatch, device):
    cfg = load_config(
        None, smoke(hopper_file, tmp_path / "cache", algorithm="mopo", morec=True, epochs=3, device=device)
    )
    assert_resume_reproduces_the_uninterrupted_run(cfg, tmp_path, monkeypatch)
    other = load_config(
        None, smoke(hopper_file, tmp_path / "cache", algorithm="mopo", morec=True, epochs=4, device=device)
    )
    with pytest.raises(ConfigError, match=r"another config \(differs in \['train.epochs'\]\)"):
        start_run(other, tmp_path / "killed", resume=True, show_progress=False)


def test_bfloat16_penalty_trains_and_resumes_like_the_uninterrupted_run(hopper_file, tmp_path, monkeypatch):
    cfg = load_config(
        None,
        smoke(hopper_file, tmp_path / "cache", algorithm="mobile", morec=False, epochs=2)
        + ["mobile.penalty_dtype=bfloat16"],
    )
    assert_resume_reproduces_the_uninterrupted_run(cfg, tmp_path, monkeypatch)


def test_penalty_precision_script_compares_bfloat16_with_the_penalty_noise(hopper_file, tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    cfg = load_config(None, smoke(hopper_file, tmp_path / "cache", algorithm="mopo", morec=False, epochs=1))
    start_run(cfg, tmp_path / "run", show_progress=False).run()
    script = Path(__file__).resolve().parents[1] / "scripts" / "penalty_precision.py"
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "run"), "--rows", "64"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["rows"] == 64 and report["penalty_u_mean_float32"] > 0
    for key in ("bfloat16", "float32_redrawn_samples"):
        assert (
            report[key]["mean_abs_change_over_mean_u"] >= 0 and -1 <= report[key]["rank_correlation_with_float32"] <= 1
        )
    missing = subprocess.run([sys.executable, str(script), str(tmp_path / "nothing")], capture_output=True, text=True)
    assert missing.returncode != 0 and "has no summary.json" in missing.stderr and "Traceback" not in missing.stderr


def test_compiled_networks_train_and_resume_like_the_uninterrupted_compiled_run(hopper_file, tmp_path, monkeypatch):
    cfg = load_config(
        None, smoke(hopper_file, tmp_path / "cache", algorithm="mobile", morec=False, epochs=2) + ["train.compile=on"]
    )
    probe = start_run(cfg, tmp_path / "probe", show_progress=False)
    assert probe.algo.critic._compiled_call_impl is not None and probe.algo.actor._compiled_call_impl is not None
    probe.run_directory.close()
    assert_resume_reproduces_the_uninterrupted_run(cfg, tmp_path, monkeypatch)
    assert not load_config(None, []).train.compiles("cpu") and load_config(None, []).train.compiles("cuda")
    with pytest.raises(ConfigError, match="train.compile must be 'auto', 'on' or 'off'"):
        load_config(None, ["train.compile=maybe"])


def test_model_seed_shares_the_dynamics_and_reward_across_seeds(hopper_file, tmp_path):
    """Seeds 0 and 1 with ``model_seed=0`` train one dynamics model and one dynamics reward, and
    differ in the learner; without it each seed trains its own."""
    cache = tmp_path / "cache"
    runs = [
        start_run(
            load_config(None, smoke(hopper_file, cache, morec=True, epochs=1) + [f"seed={seed}", "model_seed=0"]),
            tmp_path / f"run{seed}",
            show_progress=False,
        )
        for seed in (0, 1)
    ]
    assert len(list((cache / "dynamics").glob("*/dynamics.pt"))) == 1
    assert len(list((cache / "reward").glob("*/dynamics_reward.pt"))) == 1
    assert runs[0].engine.selector.threshold == runs[1].engine.selector.threshold
    assert not torch.equal(next(runs[0].algo.actor.parameters()), next(runs[1].algo.actor.parameters()))
    for run in runs:
        run.run_directory.close()
    own = start_run(
        load_config(None, smoke(hopper_file, cache, morec=True, epochs=1) + ["seed=1"]),
        tmp_path / "own",
        show_progress=False,
    )
    own.run_directory.close()
    assert len(list((cache / "dynamics").glob("*/dynamics.pt"))) == 2


def test_a_config_can_name_trained_models_instead_of_training_them(hopper_file, tmp_path):
    """``dynamics_path`` and ``reward_path`` take the folders ``train-dynamics``/``train-reward``
    (or another run's cache) wrote: nothing is trained, and the summary names those folders."""
    first = start_run(
        load_config(None, smoke(hopper_file, tmp_path / "cache", morec=True, epochs=1)),
        tmp_path / "first",
        show_progress=False,
    ).run()
    named = [f"dynamics_path={first['models']['dynamics']}", f"reward_path={first['models']['reward']}"]
    cfg = load_config(None, smoke(hopper_file, tmp_path / "empty", morec=True, epochs=1) + named)
    second = start_run(cfg, tmp_path / "second", show_progress=False)
    assert not (tmp_path / "empty").exists()  # no model trained or cached
    second.run_directory.close()
    assert second.components.model_dirs == first["models"]
    walker = random_dataset_file(tmp_path / "walker.hdf5", env_id="Walker2d-v4", steps=300)
    for key in ("dynamics_path", "reward_path"):
        cfg = load_config(
            None,
            smoke(walker, tmp_path / "w", morec=True, epochs=1, task="Walker2d-v4")
            + [n for n in named if n.startswith(key)],
        )
        with pytest.raises(ConfigError, match=f"^{key}: .*(trained|expected|built) .*"):
            start_run(cfg, tmp_path / f"w-{key}", show_progress=False)


def test_a_model_trained_again_into_a_named_folder_gets_its_own_derived_reward(hopper_file, tmp_path):
    """The reward trained for named dynamics is cached by the dynamics' content, not only its folder:
    dynamics trained again into the same folder do not reuse the reward of the old ones."""
    import shutil

    from morec.dynamics import EnsembleDynamics

    first = start_run(
        load_config(None, smoke(hopper_file, tmp_path / "cache", morec=True, epochs=1)),
        tmp_path / "first",
        show_progress=False,
    ).run()
    shutil.copytree(first["models"]["dynamics"], tmp_path / "dyn")
    cfg = load_config(
        None, smoke(hopper_file, tmp_path / "cache2", morec=True, epochs=1) + [f"dynamics_path={tmp_path / 'dyn'}"]
    )
    before = start_run(cfg, tmp_path / "before", show_progress=False)
    before.run_directory.close()
    again = start_run(cfg, tmp_path / "again", show_progress=False)  # the same dynamics: the cached reward
    again.run_directory.close()
    assert again.components.model_dirs["reward"] == before.components.model_dirs["reward"]
    retrained = EnsembleDynamics.load(tmp_path / "dyn")  # "trained again": other weights, same folder
    with torch.no_grad():
        retrained.output.weight.add_(0.01)
    retrained.save(tmp_path / "dyn")
    after = start_run(cfg, tmp_path / "after", show_progress=False)
    after.run_directory.close()
    assert after.components.model_dirs["reward"] != before.components.model_dirs["reward"]


def test_mobile_refuses_named_dynamics_with_one_elite(hopper_file, tmp_path):
    from morec.dynamics import EnsembleConfig, EnsembleDynamics, TaskInfo

    one_elite = EnsembleConfig(num_members=2, num_elites=1, hidden_sizes=(8,), weight_decays=(1e-5, 1e-5))
    EnsembleDynamics(TaskInfo(O_HOPPER, A_HOPPER), one_elite, seed=0).save(tmp_path / "dyn")
    cfg = load_config(None, smoke(hopper_file, tmp_path / "cache", epochs=1) + [f"dynamics_path={tmp_path / 'dyn'}"])
    with pytest.raises(ConfigError, match=r"^dynamics_path: .* has 1 elite; MOBILE's penalty .* needs at least 2"):
        start_run(cfg, tmp_path / "run", show_progress=False)


def test_wrong_dataset_for_the_task_fails_before_training(hopper_file, tmp_path):
    from morec.data import DatasetError

    cfg = load_config(None, smoke(hopper_file, tmp_path / "cache", task="Walker2d-v4"))
    with pytest.raises(DatasetError, match="has 11 columns but Walker2d-v4"):
        start_run(cfg, tmp_path / "run", show_progress=False)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_behaviour_cloning_fits_the_dataset_actions(hopper_file):
    from morec.data import load_dataset
    from morec.learners.bc import BCConfig, log_likelihood, train_bc

    ds = load_dataset(hopper_file)
    policy, losses = train_bc(
        ds, gym.spaces.Box(-1, 1, (3,)), BCConfig(hidden_sizes=(32, 32), lr=1e-3, steps=300), seed=0
    )
    assert losses[-1] < losses[0] and np.isfinite(losses).all()
    obs, act = torch.as_tensor(ds.observations[:64]), torch.as_tensor(ds.actions[:64])
    with torch.no_grad():
        assert torch.isfinite(log_likelihood(policy.actor, obs, act)).all()
    again, _ = train_bc(ds, gym.spaces.Box(-1, 1, (3,)), BCConfig(hidden_sizes=(32, 32), lr=1e-3, steps=300), seed=0)
    for a, b in zip(policy.state_dict().values(), again.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_a_run_written_before_the_config_named_models_resumes(hopper_file, tmp_path):
    """Older morec wrote config.yaml without ``dynamics_path``/``reward_path``; such a run resumes."""
    import yaml

    cfg = load_config(None, smoke(hopper_file, tmp_path / "cache", algorithm="mopo", morec=False, epochs=2))
    first = start_run(cfg, tmp_path / "run", show_progress=False)
    with pytest.raises(KeyboardInterrupt):
        original = first._end_epoch

        def stop_after_the_first_epoch(on_evaluation):
            original(on_evaluation)
            raise KeyboardInterrupt

        first._end_epoch = stop_after_the_first_epoch
        first.run()
    written = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    del written["dynamics_path"], written["reward_path"]
    (tmp_path / "run" / "config.yaml").write_text(yaml.safe_dump(written, sort_keys=False))
    resumed = start_run(cfg, tmp_path / "run", resume=True, show_progress=False)
    assert resumed.epoch == 1 and resumed.run()["epochs"] == 2


def test_a_run_names_the_code_and_processor_each_stretch_of_its_epochs_ran_on(hopper_file, tmp_path, monkeypatch):
    """A run resumed on other code, or on another kind of processor, says so in summary.json; one
    resumed from a checkpoint that did not record them says its first epochs ran on unrecorded code."""
    import morec.training.loop as loop
    from morec.provenance import machine

    cfg = load_config(None, smoke(hopper_file, tmp_path / "cache", algorithm="mopo", morec=False, epochs=3))

    def interrupted_after_epoch_1(run_dir):
        first = start_run(cfg, run_dir, show_progress=False)
        original = first._end_epoch

        def stop(on_evaluation):
            original(on_evaluation)
            raise KeyboardInterrupt

        first._end_epoch = stop
        with pytest.raises(KeyboardInterrupt):
            first.run()

    here = machine()
    monkeypatch.setattr(loop, "code_version", lambda: "aaa1111")
    interrupted_after_epoch_1(tmp_path / "run")
    monkeypatch.setattr(loop, "code_version", lambda: "bbb2222")
    summary = start_run(cfg, tmp_path / "run", resume=True, show_progress=False).run()
    assert summary["code_versions"] == [
        {"code": "aaa1111", "machine": here, "from_epoch": 1},
        {"code": "bbb2222", "machine": here, "from_epoch": 2},
    ]

    interrupted_after_epoch_1(tmp_path / "moved")  # the same code resumed on another kind of processor
    monkeypatch.setattr(loop, "machine", lambda device: "Other CPU (AVX512)")
    summary = start_run(cfg, tmp_path / "moved", resume=True, show_progress=False).run()
    assert summary["code_versions"] == [
        {"code": "bbb2222", "machine": here, "from_epoch": 1},
        {"code": "bbb2222", "machine": "Other CPU (AVX512)", "from_epoch": 2},
    ]

    interrupted_after_epoch_1(tmp_path / "old")
    state = torch.load(tmp_path / "old" / "checkpoint.pt", weights_only=False)
    del state["code_versions"]  # as a checkpoint of older morec
    torch.save(state, tmp_path / "old" / "checkpoint.pt")
    summary = start_run(cfg, tmp_path / "old", resume=True, show_progress=False).run()
    assert summary["code_versions"] == [
        {"code": "unrecorded", "from_epoch": 1},
        {"code": "bbb2222", "machine": "Other CPU (AVX512)", "from_epoch": 2},
    ]


def test_every_algorithm_a_config_may_name_has_a_learner():
    from morec.learners.config import ALGORITHMS
    from morec.training.factory import LEARNERS

    assert set(LEARNERS) == set(ALGORITHMS)
