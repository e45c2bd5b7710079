"""Hyperparameter sweeps with Ray Tune over any `morec train` config keys (``morec sweep``).

Every trial is one `morec train` run (its own run directory, checkpoints, TensorBoard) that
reports the normalised score after each evaluation, so a scheduler (ASHA by default) can stop bad
trials early. At the end: ``sweep.md``/``sweep.csv`` (one row per trial) and ``best_config.yaml``
(the full config of the trial with the best mean of its last 10 evaluations).

Parameter forms: ``grid:a,b,c`` (every value, times ``num_samples``), ``choice:a,b``,
``uniform:lo,hi``, ``loguniform:lo,hi``, ``randint:lo,hi`` (hi excluded). Values are YAML.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import yaml

from morec.errors import UserError
from morec.runs.suite.report import write_rows
from morec.runs.suite.runner import gpu_share
from morec.training.config import ConfigError, TrainConfig, resolve_config
from morec.training.run_directory import CHECKPOINT_FILE, CONFIG_FILE

DOMAINS = ("grid", "choice", "uniform", "loguniform", "randint")


def parse_param(text: str) -> tuple[str, str, list[Any]]:
    """``"mobile.beta=grid:0.5,1"`` -> ``("mobile.beta", "grid", [0.5, 1])``."""
    key, sep, spec = text.partition("=")
    kind, sep2, raw = spec.partition(":")
    if not (sep and sep2 and key.strip()) or kind not in DOMAINS:
        raise ConfigError(
            f"--param {text!r}: expected KEY=KIND:VALUES with KIND one of {DOMAINS}, e.g. mobile.beta=grid:0.5,1.0"
        )
    values = [yaml.safe_load(v) for v in raw.split(",") if v.strip()]
    if kind in ("uniform", "loguniform", "randint") and len(values) != 2:
        raise ConfigError(f"--param {text!r}: {kind} takes two bounds, lo,hi")
    if not values:
        raise ConfigError(f"--param {text!r}: no values")
    return key.strip(), kind, values


def tune_domain(kind: str, values: list[Any]):
    from ray import tune

    return {
        "grid": lambda: tune.grid_search(values),
        "choice": lambda: tune.choice(values),
        "uniform": lambda: tune.uniform(*values),
        "loguniform": lambda: tune.loguniform(*values),
        "randint": lambda: tune.randint(*values),
    }[kind]()


def assignments(params: dict[str, Any]) -> list[str]:
    return [f"{key}={json.dumps(value)}" for key, value in params.items()]  # JSON scalars are YAML


def trial_config(
    base_config: list[str], overrides: list[str], dataset: str | None, params: dict[str, Any] | None = None
) -> TrainConfig:
    """The config of one trial: ``base_config`` (files, later ones laid over the first; none: the
    defaults) with ``overrides`` and the swept ``params`` (YAML text), then ``dataset`` as it is."""
    return resolve_config(base_config or None, overrides + assignments(params or {}), dataset)


def train_trial(
    params: dict[str, Any], base_config: list[str], overrides: list[str], dataset: str | None, runs_root: str
) -> None:
    """One Tune trial: a `morec train` run in ``runs_root/<trial id>`` (resumed after a restore)."""
    from ray import tune

    from morec.training.pipeline import run_training

    cfg = trial_config(base_config, overrides, dataset, params)
    run_dir = Path(runs_root) / tune.get_context().get_trial_id()
    run_training(
        cfg,
        run_dir,
        resume=(run_dir / CHECKPOINT_FILE).exists(),
        show_progress=False,
        on_evaluation=lambda record: tune.report(
            {
                "normalized_score": record["normalized_score"],
                "return_mean": record["return_mean"],
                "gradient_step": record["gradient_step"],
                "epoch": record["epoch"],
            }
        ),
    )


def check_config(
    base_config: list[str], overrides: list[str], params: list[tuple[str, str, list[Any]]], dataset: str | None = None
) -> TrainConfig:
    """Fail before Ray starts on bad keys or values: one config per listed value or bound."""
    cfg = trial_config(base_config, overrides, dataset)
    for key, _, values in params:
        for value in values:
            trial_config(base_config, overrides, dataset, {key: value})
    return cfg


def evaluations_per_trial(cfg: TrainConfig) -> int:
    epochs, every = cfg.train.epochs, cfg.train.eval_every
    return epochs // every + (1 if epochs % every else 0)


def write_results(grid, keys: list[str], expected_evaluations: int, results: Path, runs_root: Path) -> list[dict]:
    """One row per trial that reported (``keys`` are the swept config keys); trials that never
    reported (an interrupted sweep) are counted, not tabulated."""
    rows, silent = [], 0
    for result in grid:
        history = result.metrics_dataframe
        if not result.config or history is None or "normalized_score" not in history:
            silent += 1
            continue
        scores = history["normalized_score"].to_numpy()
        status = "error" if result.error else ("finished" if len(scores) >= expected_evaluations else "stopped early")
        rows.append(
            {
                **{k: result.config.get(k) for k in keys},
                "trial": result.metrics.get("trial_id") or Path(result.path).name,
                "status": status,
                "evaluations": len(scores),
                "last": round(float(scores[-1]), 2),
                "last10": round(float(scores[-10:].mean()), 2),
                "best": round(float(scores.max()), 2),
                "error": str(result.error).splitlines()[0] if result.error else "",
            }
        )
    if silent:
        print(f"{silent} trial(s) reported nothing (not started, or the sweep was interrupted): re-run with --resume")
    rows.sort(key=lambda r: -r["last10"])
    header = [*keys, "trial", "status", "evaluations", "last", "last10", "best", "error"]
    table = write_rows(rows, header, results / "sweep.csv")
    (results / "sweep.md").write_text(table + "\n")
    print(table)
    best = next((r for r in rows if r["status"] != "error"), None)
    if best is not None:
        config = yaml.safe_load((runs_root / best["trial"] / CONFIG_FILE).read_text())
        (results / "best_config.yaml").write_text(
            f"# best trial {best['trial']}: last-10 mean normalised score {best['last10']}\n"
            + yaml.safe_dump(config, sort_keys=False)
        )
        print(f"best trial {best['trial']} (last-10 mean {best['last10']}): {results / 'best_config.yaml'}")
    return rows


def pin_paths(cfg: TrainConfig, overrides: list[str], dataset: str | None) -> tuple[list[str], str | None]:
    """``(overrides, dataset)`` with every path ``cfg`` holds made absolute: trials run in other working
    directories. The cache folder and the models named by ``dynamics_path`` / ``reward_path`` become
    overrides; a dataset that is a local file stays where it was given (``dataset``, else an override)."""

    def pinned(key: str, path: str) -> str:
        return f"{key}={json.dumps(str(Path(path).resolve()))}"  # JSON quoting: a YAML string whatever the path

    overrides = [*overrides, pinned("cache_dir", cfg.cache_dir)]
    overrides += [pinned(key, getattr(cfg, key)) for key in ("dynamics_path", "reward_path") if getattr(cfg, key)]
    if cfg.dataset and Path(cfg.dataset).exists():
        if dataset is not None:
            dataset = str(Path(dataset).resolve())
        else:
            overrides.append(pinned("dataset", cfg.dataset))
    return overrides, dataset


def run_sweep(
    params: list[str],
    *,
    config: list[str] | None = None,
    dataset: str | None = None,
    overrides: list[str] = (),
    results: str | Path = "runs/sweep",
    resume: bool = False,
    num_samples: int = 1,
    scheduler: str = "asha",
    grace_evals: int = 1,
    address: str | None = None,
    max_concurrent: int | None = None,
    cpus_per_trial: float = 1.0,
    gpus_per_trial: float | None = None,
) -> int:
    """Sweep the ``params`` (``KEY=KIND:VALUES``) over ``config`` with fixed ``overrides``
    (``KEY=VALUE``, YAML) and ``dataset`` (as it is); 0 when every trial reported and none failed.
    Bad keys or values, a sweep already in ``results`` without ``resume`` and a missing Ray raise
    :class:`~morec.errors.UserError` before Ray starts."""
    try:
        import ray
        from ray import tune
    except ImportError:
        raise UserError("sweeps need Ray Tune: pip install 'morec[ray]'") from None
    results = Path(results).resolve()
    experiment = results / "tune"
    if experiment.exists() and not resume:
        raise UserError(f"{experiment} already holds a sweep: pass --resume to continue it or choose another --results")
    parsed = [parse_param(text) for text in params]
    overrides = list(overrides)
    cfg = check_config(config, overrides, parsed, dataset)
    if not parsed:
        raise UserError("give at least one --param to sweep")
    overrides, dataset = pin_paths(cfg, overrides, dataset)
    base_config = [str(Path(c).resolve()) for c in config or []]

    ray.init(address=address, include_dashboard=False if address is None else None, logging_level=logging.WARNING)
    gpus, overrides = gpu_share(gpus_per_trial, ray.cluster_resources().get("GPU", 0), overrides)
    runs_root = results / "runs"
    trainable = tune.with_resources(
        tune.with_parameters(
            train_trial, base_config=base_config, overrides=overrides, dataset=dataset, runs_root=str(runs_root)
        ),
        {"cpu": cpus_per_trial, "gpu": gpus},
    )
    if resume and tune.Tuner.can_restore(str(experiment)):
        tuner = tune.Tuner.restore(str(experiment), trainable, resume_errored=True)
    else:
        asha = None
        if scheduler == "asha":
            asha = tune.schedulers.ASHAScheduler(
                time_attr="training_iteration", max_t=evaluations_per_trial(cfg), grace_period=grace_evals
            )
        tuner = tune.Tuner(
            trainable,
            param_space={key: tune_domain(kind, values) for key, kind, values in parsed},
            tune_config=tune.TuneConfig(
                metric="normalized_score",
                mode="max",
                num_samples=num_samples,
                scheduler=asha,
                max_concurrent_trials=max_concurrent,
            ),
            run_config=tune.RunConfig(name="tune", storage_path=str(results), verbose=1),
        )
    grid = tuner.fit()
    rows = write_results(grid, [key for key, _, _ in parsed], evaluations_per_trial(cfg), results, runs_root)
    ray.shutdown()
    return 1 if len(rows) < len(grid) or any(r["error"] for r in rows) else 0
