"""Ensemble dynamics: batched layer, numerics, training, elites, save/load."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

from morec.dynamics.ensemble import EnsembleConfig, EnsembleDynamics, TaskInfo
from morec.dynamics.layers import EnsembleLinear, relu_, soft_clamp
from morec.dynamics.training import fit_ensemble
from morec.errors import UserError
from tests.fakes import linear_system
from tests.helpers import DEVICES


def small_config(**kw) -> EnsembleConfig:
    base = dict(num_members=4, num_elites=2, hidden_sizes=(32, 32), weight_decays=(1e-5, 1e-5, 1e-5), max_epochs=40)
    return EnsembleConfig(**{**base, **kw})


def test_ensemble_linear_runs_members_independently():
    layer = EnsembleLinear(3, 5, 2, generator=torch.Generator().manual_seed(0))
    x = torch.randn(7, 5)
    out = layer(x)
    assert out.shape == (3, 7, 2)
    for e in range(3):
        torch.testing.assert_close(out[e], x @ layer.weight[e] + layer.bias[e])
    per_member = torch.randn(3, 7, 5)
    out3 = layer(per_member)
    torch.testing.assert_close(out3[1], per_member[1] @ layer.weight[1] + layer.bias[1])
    assert float(layer.weight.detach().abs().max()) <= 2 / (2 * 5**0.5) + 1e-6  # truncated at 2 std


def test_soft_clamp_stays_inside_bounds_and_is_identity_in_the_middle():
    x = torch.linspace(-50, 50, 101)
    y = soft_clamp(x, torch.tensor(-10.0), torch.tensor(0.5))
    # the lower softplus edge can lift the top by ~softplus(-(high - low)) = 3e-5
    assert float(y.min()) >= -10 and float(y.max()) <= 0.5 + 1e-4
    assert abs(float(soft_clamp(torch.tensor(-4.0), torch.tensor(-10.0), torch.tensor(0.5))) + 4.0) < 0.05


def test_defaults_are_the_published_numerics():
    cfg = EnsembleConfig()
    assert (cfg.num_members, cfg.num_elites, cfg.hidden_sizes, cfg.activation) == (7, 5, (200,) * 4, "swish")
    assert cfg.weight_decays == (2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4)
    assert (cfg.init_max_logvar, cfg.init_min_logvar, cfg.logvar_bound_coef) == (0.5, -10.0, 0.01)
    assert (cfg.holdout_ratio, cfg.max_holdout, cfg.max_epochs_since_update, cfg.improvement_threshold) == (
        0.2,
        1000,
        5,
        0.01,
    )
    model = EnsembleDynamics(TaskInfo(11, 3))
    assert [tuple(layer.weight.shape) for layer in (*model.hidden, model.output)] == [
        (7, 14, 200),
        (7, 200, 200),
        (7, 200, 200),
        (7, 200, 200),
        (7, 200, 24),
    ]
    with pytest.raises(ValueError, match="weight_decays"):
        EnsembleConfig(hidden_sizes=(10, 10), weight_decays=(1e-5,))


def test_predict_and_sample_shapes():
    model = EnsembleDynamics(TaskInfo(4, 2), small_config())
    obs, act = torch.randn(9, 4), torch.randn(9, 2)
    mean, logvar = model.predict(obs, act)
    assert mean.shape == logvar.shape == (4, 9, 5)
    assert model.sample(obs, act, num_samples=3).shape == (3, 2, 9, 5)
    assert model.sample(obs, act, elites_only=False).shape == (1, 4, 9, 5)


def test_predict_runs_only_the_members_asked_for():
    model = EnsembleDynamics(TaskInfo(4, 2), small_config())
    obs, act = torch.randn(9, 4), torch.randn(9, 2)
    members = torch.tensor([3, 0])
    with torch.no_grad():
        everyone, some = model.predict(obs, act), model.predict(obs, act, members)
    for full, part in zip(everyone, some, strict=True):
        assert part.shape == (2, 9, 5)
        torch.testing.assert_close(part, full[members])


@pytest.mark.parametrize("device", DEVICES)
def test_fit_learns_a_linear_system_and_picks_elites(tmp_path, device):
    torch.manual_seed(0)
    ds = linear_system()
    model = EnsembleDynamics(TaskInfo(4, 2), small_config(), seed=1, device=device)
    report = fit_ensemble(model, ds, seed=0, log_dir=str(tmp_path / "tb"), show_progress=False)
    assert report.holdout_size == 600 and report.train_size == 2400
    assert report.elite_holdout_mse < 0.01, report  # targets have variance ~0.1-1
    assert sorted(report.elites) == report.elites and len(report.elites) == 2
    worst_elite = max(report.holdout_mse[e] for e in report.elites)
    assert all(report.holdout_mse[m] >= worst_elite for m in range(4) if m not in report.elites)
    with torch.no_grad():
        mean, _ = model.predict(
            torch.as_tensor(ds.observations[:500], device=device), torch.as_tensor(ds.actions[:500], device=device)
        )
    assert mean.device.type == device
    err = (mean[model.elites, :, :4] - torch.as_tensor(ds.next_observations[:500], device=device)).pow(2).mean()
    assert float(err) < 0.01
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))


def test_holdout_is_capped_at_1000_and_scaler_uses_train_split_only():
    ds = linear_system(n=6000)
    model = EnsembleDynamics(TaskInfo(4, 2), small_config(max_epochs=1))
    report = fit_ensemble(model, ds, show_progress=False)
    assert report.holdout_size == 1000
    x = np.concatenate([ds.observations, ds.actions], 1)
    assert not np.allclose(model.input_mean.numpy(), x.mean(0), atol=1e-7)  # train split only
    np.testing.assert_allclose(model.input_mean.numpy(), x.mean(0), atol=0.05)


def test_early_stopping_after_patience():
    ds = linear_system(n=800)
    model = EnsembleDynamics(
        TaskInfo(4, 2), small_config(max_epochs=None, max_epochs_since_update=2, improvement_threshold=0.5)
    )
    report = fit_ensemble(model, ds, show_progress=False)
    assert report.epochs < 40 and report.stopped_by == "patience"  # a 50% improvement per epoch cannot last


def test_epoch_and_wall_clock_budgets_stop_training_and_say_so():
    ds = linear_system(n=800)
    capped = fit_ensemble(EnsembleDynamics(TaskInfo(4, 2), small_config(max_epochs=2)), ds, show_progress=False)
    assert (capped.epochs, capped.stopped_by) == (2, "max_epochs")
    timed = fit_ensemble(
        EnsembleDynamics(TaskInfo(4, 2), small_config(max_epochs=None, max_seconds=1e-6)), ds, show_progress=False
    )
    assert (timed.epochs, timed.stopped_by) == (1, "max_seconds")  # checked after each epoch
    with pytest.raises(ValueError, match="max_seconds"):
        small_config(max_seconds=0)


@pytest.mark.parametrize("device", DEVICES)
def test_same_seed_same_model(device):
    ds = linear_system(n=1000)
    a = EnsembleDynamics(TaskInfo(4, 2), small_config(max_epochs=3), seed=5, device=device)
    b = EnsembleDynamics(TaskInfo(4, 2), small_config(max_epochs=3), seed=5, device=device)
    fit_ensemble(a, ds, seed=2, show_progress=False)
    fit_ensemble(b, ds, seed=2, show_progress=False)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(va, vb, rtol=0, atol=0, msg=k)


@contextlib.contextmanager
def killed_at_epoch(monkeypatch, killed: int):
    """Inside the block, a dynamics fit is interrupted (``KeyboardInterrupt``) as epoch ``killed`` ends."""
    import morec.dynamics.training as training

    original = training.stop_reason

    def stop_reason(cfg, epoch, since, seconds):
        if epoch == killed:
            raise KeyboardInterrupt
        return original(cfg, epoch, since, seconds)

    with monkeypatch.context() as patch:
        patch.setattr(training, "stop_reason", stop_reason)
        yield


@pytest.mark.parametrize("device", DEVICES)
def test_a_killed_training_resumes_from_its_checkpoint_to_the_same_model(tmp_path, monkeypatch, device):
    ds, ckpt = linear_system(n=1000), tmp_path / "fit.pt"
    whole = EnsembleDynamics(TaskInfo(4, 2), small_config(max_epochs=5), seed=5, device=device)
    report = fit_ensemble(whole, ds, seed=2, show_progress=False)
    with killed_at_epoch(monkeypatch, 3), pytest.raises(KeyboardInterrupt):
        fit_ensemble(
            EnsembleDynamics(TaskInfo(4, 2), small_config(max_epochs=5), seed=5, device=device),
            ds,
            seed=2,
            show_progress=False,
            checkpoint=ckpt,
        )
    assert torch.load(ckpt, weights_only=False)["epoch"] == 2  # written after every finished epoch
    resumed = EnsembleDynamics(
        TaskInfo(4, 2), small_config(max_epochs=5), seed=5, device=device
    )  # a new process: fresh weights
    again = fit_ensemble(resumed, ds, seed=2, show_progress=False, checkpoint=ckpt)
    assert (again.epochs, again.holdout_mse, again.elites) == (report.epochs, report.holdout_mse, report.elites)
    for (k, va), vb in zip(whole.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(va, vb, rtol=0, atol=0, msg=k)
    assert ckpt.exists()  # kept until the caller has saved the model (fit_dynamics_model deletes it)
    torch.save({"signature": {"rows": 1}}, ckpt)
    with pytest.raises(UserError, match="other data or settings; delete it"):
        fit_ensemble(resumed, ds, seed=2, show_progress=False, checkpoint=ckpt)


def test_a_checkpoint_resumes_under_a_new_budget_but_not_on_other_data(tmp_path, monkeypatch):
    ds, ckpt = linear_system(n=1000), tmp_path / "fit.pt"
    with killed_at_epoch(monkeypatch, 2), pytest.raises(KeyboardInterrupt):
        fit_ensemble(
            EnsembleDynamics(TaskInfo(4, 2), small_config(max_epochs=3), seed=5),
            ds,
            seed=2,
            show_progress=False,
            checkpoint=ckpt,
        )
    other = linear_system(n=1000, seed=1)  # the same size, other values
    with pytest.raises(UserError, match="other data or settings"):
        fit_ensemble(
            EnsembleDynamics(TaskInfo(4, 2), small_config(max_epochs=3), seed=5),
            other,
            seed=2,
            show_progress=False,
            checkpoint=ckpt,
        )
    longer = fit_ensemble(  # a larger cap continues the same fit
        EnsembleDynamics(TaskInfo(4, 2), small_config(max_epochs=4), seed=5),
        ds,
        seed=2,
        show_progress=False,
        checkpoint=ckpt,
    )
    assert longer.epochs == 4


def test_fit_dynamics_model_deletes_the_checkpoint_only_after_saving(tmp_path):
    from morec.training.models import fit_dynamics_model

    ds = linear_system(n=600)
    fit_dynamics_model(ds, small_config(max_epochs=2), tmp_path / "dyn", seed=0, device="cpu", show_progress=False)
    assert (tmp_path / "dyn" / "dynamics.pt").exists() and not (tmp_path / "dyn" / "fit_checkpoint.pt").exists()


def test_save_load_roundtrip_and_mismatch(tmp_path):
    ds = linear_system(n=800)
    model = EnsembleDynamics(TaskInfo(4, 2, env_id="Custom-v0", layout=None), small_config(max_epochs=2))
    fit_ensemble(model, ds, show_progress=False)
    model.save(tmp_path)
    loaded = EnsembleDynamics.load(tmp_path, expect=TaskInfo(4, 2, env_id="Custom-v0"))
    obs, act = torch.randn(5, 4), torch.randn(5, 2)
    for x, y in zip(model.predict(obs, act), loaded.predict(obs, act)):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    assert loaded.elites.tolist() == model.elites.tolist()
    with pytest.raises(ValueError, match="obs_dim=4"):
        EnsembleDynamics.load(tmp_path, expect=TaskInfo(11, 3))
    with pytest.raises(ValueError, match="env_id"):
        EnsembleDynamics.load(tmp_path, expect=TaskInfo(4, 2, env_id="Hopper-v4"))
    with pytest.raises(FileNotFoundError, match="no trained dynamics"):
        EnsembleDynamics.load(tmp_path / "nowhere")


def test_the_torch_free_config_names_every_activation_the_layers_build():
    from morec.dynamics.config import ACTIVATION_NAMES
    from morec.dynamics.layers import ACTIVATIONS

    assert set(ACTIVATION_NAMES) == set(ACTIVATIONS)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_relu_through_the_bits_is_relu(dtype):
    x = torch.cat([torch.randn(1000), torch.tensor([0.0, -0.0, float("inf"), -float("inf"), 1e-40, -1e-40])])
    x = x.to(dtype)
    assert torch.equal(relu_(x.clone()), torch.relu(x))  # -0.0 == 0.0: the sign of a zero is not compared
    assert relu_(x.clone()).dtype == dtype


def test_relu_under_autograd_is_torchs_and_keeps_the_gradient():
    x, w = torch.randn(32, 8, dtype=torch.bfloat16), torch.randn(8, 16, dtype=torch.bfloat16, requires_grad=True)
    got = torch.autograd.grad(relu_(x @ w).sum(), w)[0]  # an int16 view would cut the graph: no gradient
    want = torch.autograd.grad(torch.relu(x @ w).sum(), w)[0]
    assert torch.equal(got, want) and want.abs().sum() > 0
