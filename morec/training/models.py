"""The models a run trains before its policy, one job each: the dynamics ensemble, the dynamics
reward and the reward's one-network student. Each fits, writes ``report.json``, then saves the
model (whose file marks the folder complete) and returns both. The commands
(``train-dynamics``, ``train-reward``, ``distil-reward``) and the training cache
(:mod:`morec.training.model_cache`) call the same jobs, so a model either of them made can be named
by a training config (``dynamics_path``, ``reward_path``)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from morec.io import atomic_write

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

    from morec.data import OfflineDataset
    from morec.dynamics import EnsembleConfig, EnsembleDynamics
    from morec.dynamics_reward import DistillationConfig, DynamicsReward, DynamicsRewardConfig, MorecFilterConfig
    from morec.rollout import RolloutConfig


def _write_report(out: Path, report: dict) -> None:
    atomic_write(out / "report.json", lambda tmp: tmp.write_text(json.dumps(report, indent=2)))


def fit_dynamics_model(
    ds: OfflineDataset,
    config: EnsembleConfig,
    out: Path,
    *,
    seed: int,
    device: str = "cpu",
    writer: SummaryWriter | None = None,
    show_progress: bool = True,
    source: str | None = None,
    oracle_starts: int = 0,
    oracle_horizon: int = 10,
) -> tuple[EnsembleDynamics, dict]:
    """The ensemble fitted on ``ds`` (resuming an interrupted fit from ``out/fit_checkpoint.pt``),
    its scalars in ``writer`` (else ``out/tb``), saved to ``out`` with ``report.json``: the fit and,
    with ``oracle_starts`` and a known environment, the error of model rollouts against the MuJoCo
    simulator. ``source`` is the dataset as the user named it."""
    from morec.dynamics import EnsembleDynamics, TaskInfo, fit_ensemble
    from morec.rollout.model_error import oracle_report

    out = Path(out)
    checkpoint = out / "fit_checkpoint.pt"
    model = EnsembleDynamics(TaskInfo.of(ds), config, seed=seed, device=device)
    fit = fit_ensemble(
        model,
        ds,
        seed=seed,
        writer=writer,
        log_dir=None if writer else str(out / "tb"),
        show_progress=show_progress,
        checkpoint=checkpoint,
    )
    report = {"dataset": source, "transitions": len(ds), "fit": fit.__dict__}
    if oracle_starts and ds.domain is not None and ds.metadata.get("layout") in ("d4rl", "neorl"):
        report["oracle"] = oracle_report(model, ds, oracle_starts, oracle_horizon, seed)
    _write_report(out, report)
    model.save(out)
    checkpoint.unlink(missing_ok=True)  # only now: a kill before the save resumes from it
    return model, report


def fit_reward_model(
    ds: OfflineDataset,
    dynamics: EnsembleDynamics,
    config: DynamicsRewardConfig,
    out: Path,
    *,
    seed: int,
    holdout: float = 0.0,
    show_progress: bool = True,
) -> tuple[DynamicsReward, dict]:
    """The MOREC dynamics reward of ``dynamics`` learned on ``ds`` (with ``holdout`` > 0, on the rest
    of a random split, and ``report.json`` holds r_D's ROC AUC on the held-out part), saved to
    ``out``. Too few snapshots warn (:class:`~morec.dynamics_reward.config.FewSnapshotsWarning`)."""
    from morec.dynamics_reward.check import discrimination_report
    from morec.dynamics_reward.training import fit_dynamics_reward

    out = Path(out)
    train, test = ds.split(holdout, seed=seed) if holdout else (ds, None)  # the AUC scores transitions never trained on
    reward, fit = fit_dynamics_reward(
        train, dynamics, config, seed=seed, log_dir=str(out / "tb"), show_progress=show_progress
    )
    report = {"fit": fit.__dict__, "snapshots_used": fit.snapshots_used, "holdout": holdout}
    if test is not None:
        report["discrimination"] = discrimination_report(reward, dynamics, test, seed)
    _write_report(out, report)
    reward.save(out)
    return reward, report


def distil_reward_model(
    ds: OfflineDataset,
    dynamics: EnsembleDynamics,
    teacher: DynamicsReward,
    config: DistillationConfig,
    out: Path,
    *,
    filter_config: MorecFilterConfig,
    threshold: float,
    rollout: RolloutConfig,
    show_progress: bool = True,
) -> tuple[DynamicsReward, dict]:
    """``teacher`` distilled into one network (:mod:`morec.dynamics_reward.distillation`) on ``ds``'s
    states and ``rollout``'s candidates, saved to ``out`` with ``report.json``: how often the
    student agrees with the teacher on the pick and on truncation at ``threshold``."""
    from morec.dynamics_reward.distillation import distil_reward

    out = Path(out)
    student, fit = distil_reward(
        teacher,
        dynamics,
        ds.observations,
        ds.actions,
        ds.next_observations,
        config,
        rollout=rollout,
        filter_config=filter_config,
        threshold=threshold,
        show_progress=show_progress,
        log_dir=str(out / "tb"),
    )
    report = {"teacher_snapshots": teacher.num_snapshots, "config": asdict(config), **fit.to_dict()}
    _write_report(out, report)
    student.save(out)
    return student, report
