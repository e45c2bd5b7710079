"""The jobs behind ``morec train-dynamics``, ``train-reward``, ``distil-reward`` and ``eval-model`` as functions with
typed parameters: they load, fit, save and return reports; they neither parse arguments nor print
(the command modules in :mod:`morec.commands` do both).

Bad input raises ``ValueError``/``FileNotFoundError`` (or :class:`~morec.errors.UserError`) with a
message that names the fix; the commands turn those into one ``morec: error:`` line.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from morec.denormals import flush_denormals
from morec.dynamics_reward.config import FilterCheckConfig, MorecFilterConfig
from morec.errors import UserError, as_user_error

if TYPE_CHECKING:  # torch and the models load inside the functions, so importing this module stays cheap
    from morec.data import OfflineDataset
    from morec.dynamics import EnsembleConfig, EnsembleDynamics
    from morec.dynamics_reward.check import CheckedPolicy
    from morec.dynamics_reward.config import DistillationConfig, DynamicsRewardConfig
    from morec.dynamics_reward.model import DynamicsReward

POLICY_KINDS = ("random", "noisy-behaviour", "checkpoint", "torchscript")

TRAIN_REWARD_HOLDOUT = 0.1  # morec train-reward: the fraction of transitions held out to score the reward


def load_dynamics(path: str | Path, ds: OfflineDataset, device) -> EnsembleDynamics:
    """The ensemble in ``path``, refused (one line) when it was trained for another task."""
    from morec.dynamics import EnsembleDynamics, TaskInfo

    expect = TaskInfo.of(ds)
    with as_user_error(ValueError, FileNotFoundError):
        return EnsembleDynamics.load(path, device, expect=expect)


# ---------------------------------------------------------------------------------------- the models
def train_dynamics(
    ds: OfflineDataset,
    out: Path,
    config: EnsembleConfig,
    *,
    source: str,
    seed: int = 0,
    device: str = "cpu",
    eval_starts: int = 500,
    eval_horizon: int = 10,
    show_progress: bool = True,
) -> tuple[EnsembleDynamics, dict]:
    """``morec train-dynamics``: the ensemble fitted on ``ds`` and saved to ``out`` with its report
    (the fit, and the error of model rollouts against the simulator from ``eval_starts`` states):
    :func:`morec.training.models.fit_dynamics_model`. Returns ``(model, report)``."""
    flush_denormals()
    from morec.training.models import fit_dynamics_model

    return fit_dynamics_model(
        ds,
        config,
        out,
        seed=seed,
        device=device,
        show_progress=show_progress,
        source=source,
        oracle_starts=eval_starts,
        oracle_horizon=eval_horizon,
    )


def train_reward(
    ds: OfflineDataset,
    dynamics: EnsembleDynamics,
    config: DynamicsRewardConfig,
    out: Path,
    *,
    seed: int = 0,
    show_progress: bool = True,
) -> tuple[DynamicsReward, dict]:
    """``morec train-reward``: the dynamics reward learned on all but :data:`TRAIN_REWARD_HOLDOUT` of
    ``ds`` and saved to ``out``, its report with the ROC AUC on the part held out
    (:func:`morec.training.models.fit_reward_model`)."""
    flush_denormals()
    from morec.training.models import fit_reward_model

    return fit_reward_model(
        ds, dynamics, config, out, seed=seed, holdout=TRAIN_REWARD_HOLDOUT, show_progress=show_progress
    )


def distil_reward_to(
    ds: OfflineDataset,
    dynamics: EnsembleDynamics,
    teacher: DynamicsReward,
    config: DistillationConfig,
    out: Path,
    *,
    filter_config: MorecFilterConfig | None = None,
    show_progress: bool = True,
) -> tuple[DynamicsReward, dict]:
    """``morec distil-reward``: ``teacher`` distilled into one network, its agreement measured at
    the teacher's threshold under ``filter_config`` (``auto`` resolved from the teacher's held-out
    data), with the check's candidates (:func:`morec.training.models.distil_reward_model`)."""
    flush_denormals()
    from morec.dynamics_reward.threshold import resolve_threshold
    from morec.training.models import distil_reward_model

    filter_config = filter_config or MorecFilterConfig()
    rollout = FilterCheckConfig().rollout()
    threshold, _ = resolve_threshold(teacher, dynamics, filter_config, rollout, seed=config.seed)
    return distil_reward_model(
        ds,
        dynamics,
        teacher,
        config,
        out,
        filter_config=filter_config,
        threshold=threshold,
        rollout=rollout,
        show_progress=show_progress,
    )


# ---------------------------------------------------------------------------------------- model check
def checked_policies(
    kind: str,
    paths: Sequence[str],
    ds: OfflineDataset,
    device,
    rows: int,
    *,
    seed: int,
    horizon: int,
    noise: float = 0.3,
) -> list[CheckedPolicy]:
    """The policies to check, each with noise fixed per (start row, step) from ``seed``: ``kind``
    is one of :data:`POLICY_KINDS`; ``paths`` the policy files (none for ``random``)."""
    from morec.dynamics_reward.check import CheckedPolicy
    from morec.rollout.policies import (
        actor_row_policy,
        deterministic_row_policy,
        load_sac_actor,
        load_torchscript_policy,
        random_row_policy,
    )

    if kind not in POLICY_KINDS:
        raise ValueError(f"unknown policy kind {kind!r}: choose from {', '.join(POLICY_KINDS)}")
    if kind == "random":
        if paths:
            raise ValueError("--policy random takes no --policy-path; use --policy torchscript for policy files")
        return [
            CheckedPolicy("random", random_row_policy(ds.act_dim, horizon, rows, seed, device), deterministic=False)
        ]
    if not paths:
        what = "a TorchScript file" if kind == "torchscript" else "a policy_<step>.pt written by morec collect"
        raise ValueError(f"--policy {kind} needs --policy-path ({what})")
    policies, names = [], set()
    for path in paths:
        name = Path(path).stem if kind == "torchscript" else f"{kind}:{Path(path).stem}"
        while name in names:
            name += "'"
        names.add(name)
        if kind == "torchscript":
            act = deterministic_row_policy(load_torchscript_policy(path, ds.obs_dim, ds.act_dim, device))
            policies.append(CheckedPolicy(name, act, deterministic=True))
            continue
        if not Path(path).is_file():
            raise FileNotFoundError(f"policy file {path} does not exist")
        actor = load_sac_actor(path, ds.metadata["env_id"], device)
        policy_noise = noise if kind == "noisy-behaviour" else 0.0
        policies.append(
            CheckedPolicy(
                name,
                actor_row_policy(actor, ds.act_dim, horizon, rows, seed, device, policy_noise),
                deterministic=False,
            )
        )
    return policies


def eval_model(
    dataset: str,
    dynamics: str,
    *,
    env: str | None = None,
    reward: str | None = None,
    policy: str = "random",
    policy_paths: Sequence[str] = (),
    policy_noise: float = 0.3,
    starts: int = 500,
    filter_config: MorecFilterConfig | None = None,
    check: FilterCheckConfig | None = None,
    device: str = "cpu",
) -> dict:
    """Oracle error of model rollouts under ``policy`` from ``starts`` dataset states, unfiltered
    and (with a trained ``reward``) filtered: the report of :func:`morec.dynamics_reward.check.check_filter`
    with the first policy's summary at the top level. ``check.seed`` fixes the start states, the
    policy noise and the threshold calibration. Bad input (files, policies, another task's
    models) raises :class:`~morec.errors.UserError`."""
    flush_denormals()
    from morec.dynamics_reward.check import check_filter

    filter_config = filter_config or MorecFilterConfig()
    check = check or FilterCheckConfig()
    if filter_config.distilled:
        raise UserError(
            "filter.distilled is for morec train; to check a distilled reward, make one with "
            "`morec distil-reward` and pass its --out as --reward"
        )
    if starts < 1:
        raise UserError(f"--starts must be at least 1 (dataset states the rollouts start from), got {starts}")
    with as_user_error(ValueError):
        check.rollout()  # --horizon, --samples-per-member, --candidate-clip: checked before anything loads
    with as_user_error(ValueError, FileNotFoundError):  # bad input: a UserError naming the fix
        setup = _eval_setup(
            dataset, dynamics, env, reward, policy, policy_paths, policy_noise, starts, filter_config, check, device
        )
    calibration, real_source = setup.pop("calibration"), setup.pop("real_source")
    report = check_filter(**setup)
    first = next(iter(report["policies"].values()))
    legacy = {
        k: first[k]
        for k in (
            "unfiltered",
            "filtered",
            "filtered_over_unfiltered_error",
            "reward_error_spearman",
            "true_return_mean",
            "return_error_ratio",
        )
        if k in first
    }
    out = {
        "dataset": str(dataset),
        "policy": policy,
        "horizon": check.horizon,
        "starts": len(setup["starts"]),
        **legacy,
        "threshold": setup["threshold"] if reward else None,
    }
    if calibration is not None:
        out["threshold_calibration"] = calibration.to_dict()
    if reward:
        out["false_truncation_data"] = real_source
        out["filter"] = asdict(filter_config)
    return out | report


def _eval_setup(
    dataset: str,
    dynamics: str,
    env: str | None,
    reward: str | None,
    policy: str,
    policy_paths: Sequence[str],
    policy_noise: float,
    starts: int,
    filt: MorecFilterConfig,
    check: FilterCheckConfig,
    device: str,
) -> dict:
    """Load and check everything eval-model needs; bad input raises ``ValueError``/``FileNotFoundError``."""
    import torch

    from morec.data import UnknownEnvironmentWarning, load_dataset
    from morec.dynamics import MujocoOracle, get_termination_fn
    from morec.dynamics_reward.model import DynamicsReward
    from morec.dynamics_reward.threshold import resolve_threshold
    from morec.rollout.model_error import observation_std

    seed = check.seed
    with warnings.catch_warnings():  # an unknown environment stops this command below, in one line
        warnings.simplefilter("ignore", UnknownEnvironmentWarning)
        ds = load_dataset(dataset, env_id=env)
    if ds.metadata.get("layout") is None or ds.domain is None:
        raise UserError(
            f"{dataset} does not say which environment it comes from, and eval-model needs the "
            "MuJoCo simulator: pass --env, e.g. --env Hopper-v4 or --env hopper-medium-replay-v2"
        )
    device = torch.device(device)
    env_id, layout = ds.metadata.get("env_id"), ds.metadata.get("layout")
    dyn = load_dynamics(dynamics, ds, device)
    oracle = MujocoOracle(env_id, layout)
    rows = np.random.default_rng(seed).choice(len(ds), size=min(starts, len(ds)), replace=False)
    start_states = torch.as_tensor(ds.observations[rows], device=device)
    policies = checked_policies(
        policy, policy_paths, ds, device, len(rows), seed=seed + 1, horizon=check.horizon, noise=policy_noise
    )
    trained, threshold, calibration, real, real_source = None, None, None, None, None
    if reward:
        trained = DynamicsReward.load(
            reward, device, obs_dim=ds.obs_dim, act_dim=ds.act_dim, env_id=env_id, layout=layout
        ).set_score_dtype(filt.score_dtype)
        threshold, calibration = resolve_threshold(trained, dyn, filt, check.rollout(), seed=seed)
        if trained.heldout is not None:
            real = trained.heldout_part("measure")
            real_source = (
                "half of the reward's held-out transitions (never trained on; the other half sets threshold auto)"
            )
        else:
            sample = np.random.default_rng(seed + 2).choice(len(ds), size=min(5000, len(ds)), replace=False)
            real = tuple(
                torch.as_tensor(a[sample], device=device) for a in (ds.observations, ds.actions, ds.next_observations)
            )
            real_source = "a sample of --dataset (this reward stores no held-out data; it may have trained on these)"
    return {
        "dynamics": dyn,
        "reward": trained,
        "filter_config": filt,
        "threshold": threshold,
        "policies": policies,
        "starts": start_states,
        "oracle": oracle,
        "termination_fn": get_termination_fn(oracle.env_id, oracle.layout),
        "obs_std": observation_std(ds),
        "config": check,
        "real_transitions": real,
        "calibration": calibration,
        "real_source": real_source,
    }
