"""MOREC's claim, measured with the MuJoCo oracle on datasets made by ``morec collect``.

For each dataset: train the ensemble (or reuse it), train dynamics rewards with the fixed-MLE
and the adversarial generator (or reuse them), then compare the oracle error of what H-step
rollouts write into the model buffer with and without the filter, under policies other than the
behaviour policy. The result (also written to ``out/results.json``) is one JSON-ready dict. The
command:

    morec generalisation --collect-dir data/hopper --levels medium-replay,medium --out runs/generalisation/hopper
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from morec.errors import UserError, as_user_error


def generalisation(
    collect_dir: Path,
    out: Path,
    *,
    levels: Sequence[str] = ("medium-replay", "medium"),
    generators: Sequence[str] = ("fixed", "adversarial"),
    updates: int = 3000,
    horizon: int = 100,
    starts: int = 500,
    seed: int = 0,
) -> dict:
    """Per level of ``collect_dir`` (the output of ``morec collect``): the dynamics' holdout error
    and, per reward generator, its discrimination report and the filtered-vs-unfiltered oracle
    errors under a random, a noisy medium and the expert policy. Trained models under ``out`` are reused."""
    from morec.data import load_dataset
    from morec.dynamics import EnsembleConfig
    from morec.dynamics_reward.config import GENERATORS, DynamicsRewardConfig, FilterCheckConfig
    from morec.runs.jobs import eval_model, load_dynamics, train_dynamics, train_reward

    # every setting is checked here, before hours of dynamics and reward training
    unknown = [g for g in generators if g not in GENERATORS]
    if unknown:
        raise UserError(f"--generators: unknown {unknown}; choose from {','.join(GENERATORS)}")
    if starts < 1:
        raise UserError(f"--starts must be at least 1 (start states per oracle check), got {starts}")
    with as_user_error(ValueError):
        reward_configs = {g: DynamicsRewardConfig(generator=g, num_updates=updates) for g in generators}
        check = FilterCheckConfig(horizon=horizon, seed=seed)  # horizon >= 1
    summary = json.loads((collect_dir / "collect_summary.json").read_text())
    policies = collect_dir / "behaviour_sac"
    medium = policies / summary["medium_policy"]["policy_path"]
    expert = policies / summary["expert_policy"]["policy_path"]
    domain = summary["datasets"]["medium:d4rl"]["path"].split("/")[-1].split("-")[0]
    results = {"collect_dir": str(collect_dir), "env_id": summary["env_id"], "runs": {}}
    missing = [str(collect_dir / f"{domain}-{level}.hdf5") for level in levels]
    missing = [path for path in missing if not Path(path).exists()]
    if missing:
        raise UserError(f"--levels: no dataset {missing[0]}; give levels that morec collect wrote in {collect_dir}")
    for level in levels:
        dataset = str(collect_dir / f"{domain}-{level}.hdf5")
        ds = load_dataset(dataset)
        dyn_dir = out / level / "dynamics"
        if not (dyn_dir / "dynamics.pt").exists():
            train_dynamics(ds, dyn_dir, EnsembleConfig(), source=dataset, seed=seed, show_progress=False)
        entry = {"dynamics": json.loads((dyn_dir / "report.json").read_text())["fit"]["elite_holdout_mse"]}
        for generator in generators:
            reward_dir = out / level / f"reward_{generator}"
            if (reward_dir / "dynamics_reward.pt").exists():
                train = json.loads((reward_dir / "report.json").read_text())
            else:
                dyn = load_dynamics(dyn_dir, ds, "cpu")
                _, train = train_reward(
                    ds,
                    dyn,
                    reward_configs[generator],
                    reward_dir,
                    seed=seed,
                    show_progress=False,
                )
            evals = {}
            for name, policy, paths in (
                ("random", "random", ()),
                ("noisy_behaviour", "noisy-behaviour", (str(medium),)),
                ("expert", "checkpoint", (str(expert),)),
            ):
                rep = eval_model(
                    dataset,
                    str(dyn_dir),
                    reward=str(reward_dir),
                    policy=policy,
                    policy_paths=paths,
                    starts=starts,
                    check=check,
                )
                evals[name] = {
                    "ratio": rep["filtered_over_unfiltered_error"],
                    "spearman": rep["reward_error_spearman"],
                    "unfiltered_error": rep["unfiltered"]["error"],
                    "filtered_error": rep["filtered"]["error"],
                    "unfiltered_length": rep["unfiltered"]["mean_length"],
                    "filtered_length": rep["filtered"]["mean_length"],
                    # step 1 has the same rows in both runs: the selection effect without truncation
                    "first_step_ratio": rep["filtered"]["error_first_step"] / rep["unfiltered"]["error_first_step"],
                }
            entry[generator] = {
                "discrimination": train["discrimination"],
                "reward_fit_seconds": train["fit"]["seconds"],
                "eval": evals,
            }
        results["runs"][level] = entry
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(results, indent=2))
    return results
