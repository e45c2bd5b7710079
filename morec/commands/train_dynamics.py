"""``morec train-dynamics``: fit the ensemble on a dataset, save it, report holdout and oracle error."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from morec.errors import as_user_error

NAME = "train-dynamics"
HELP = "fit the ensemble dynamics on a dataset and report holdout and oracle error"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, help="a dataset source: file path, d4rl:NAME, neorl:NAME or minari:ID")
    p.add_argument("--env", default=None, help="environment id when the dataset does not name one")
    p.add_argument("--out", required=True, help="directory for dynamics.pt, config.json, report.json and TensorBoard")
    p.add_argument("--max-epochs", type=int, default=None, help="cap on training epochs (default: early stopping only)")
    p.add_argument(
        "--max-seconds",
        type=float,
        default=None,
        help="wall-clock cap on training, checked after each epoch (the model then depends on machine speed)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--eval-starts", type=int, default=500, help="start states for the oracle model-error check")
    p.add_argument("--eval-horizon", type=int, default=10)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true", help="print only the JSON report (as written to report.json)")


def run(args: argparse.Namespace) -> int:
    import torch

    from morec.data import load_dataset
    from morec.dynamics import EnsembleConfig
    from morec.runs.jobs import train_dynamics

    torch.set_num_threads(1)
    ds = load_dataset(args.dataset, env_id=args.env)
    out = Path(args.out)
    with as_user_error(ValueError):
        cfg = EnsembleConfig(max_epochs=args.max_epochs, max_seconds=args.max_seconds)
    say = (lambda *_: None) if args.json else print
    env = (
        f"{ds.metadata['env_id']}, {ds.metadata['layout']} layout"
        if ds.metadata.get("layout")
        else "environment unknown"
    )
    say(f"train-dynamics: {len(ds):,} transitions from {args.dataset} ({env}) -> {out}")
    caps = ([f"at most {cfg.max_epochs} epochs"] if cfg.max_epochs else []) + (
        [f"at most {cfg.max_seconds:g} s"] if cfg.max_seconds else []
    )
    stop = " or ".join(caps) or "no epoch or time cap"
    say(
        f"  {cfg.num_members} members, {cfg.num_elites} elites; stops after {cfg.max_epochs_since_update} epochs "
        f"without a holdout improvement ({stop})"
    )
    say(f"  TensorBoard: tensorboard --logdir {out / 'tb'}")
    _, report = train_dynamics(
        ds,
        out,
        cfg,
        source=str(args.dataset),
        seed=args.seed,
        device=args.device,
        eval_starts=args.eval_starts,
        eval_horizon=args.eval_horizon,
        show_progress=not args.no_progress,
    )
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"saved to {out / 'dynamics.pt'} (report: {out / 'report.json'})")
    fit = report["fit"]
    print(
        f"  {fit['epochs']} epochs in {fit['seconds']:.0f} s (stopped by {fit['stopped_by']}) on "
        f"{fit['train_size']:,} transitions; "
        f"holdout MSE of the {len(fit['elites'])} elites {fit['elite_holdout_mse']:.4g} on {fit['holdout_size']:,} "
        f"held-out transitions"
    )
    if "oracle" in report:
        closed, steps = report["oracle"]["random_policy_model_error"], report["oracle"]["open_loop_error_per_step"]
        print(
            f"  error against the MuJoCo simulator (RMS over dimensions, in data standard deviations): random-policy "
            f"rollouts of {args.eval_horizon} steps {closed['overall']:.3g}; open loop along dataset actions "
            f"step 1 {steps[0]:.3g}, step {len(steps)} {steps[-1]:.3g}"
        )
    else:
        print("  no simulator check: the dataset's environment is unknown (pass --env, e.g. --env Hopper-v4)")
    print(f"  TensorBoard: tensorboard --logdir {out / 'tb'}")
    return 0
