"""``morec distil-reward``: fit one network to a trained dynamics reward's snapshot ensemble, so
the MOREC filter costs about as much as the rollout it filters, and report how often the two agree."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from morec.dynamics_reward.config import DistillationConfig
from morec.errors import as_user_error

NAME = "distil-reward"
HELP = "distil a dynamics reward's snapshots into one network (a cheaper filter)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    defaults = DistillationConfig()
    p.add_argument("--dataset", required=True, help="the data the reward was trained on")
    p.add_argument("--env", default=None, help="environment id when the dataset does not name one")
    p.add_argument("--dynamics", required=True, help="directory of the trained ensemble (morec train-dynamics)")
    p.add_argument("--reward", required=True, help="directory of the trained reward to distil (morec train-reward)")
    p.add_argument("--out", required=True, help="directory for the distilled reward (use it as any --reward)")
    p.add_argument("--updates", type=int, default=defaults.updates)
    p.add_argument(
        "--hidden-sizes", default=",".join(map(str, defaults.hidden_sizes)), help="the student's, e.g. 256,256"
    )
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true", help="print only the JSON report (as written to report.json)")


def hidden_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise ValueError(f"--hidden-sizes must be comma-separated integers such as 256,256, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise ValueError(f"--hidden-sizes must be positive integers such as 256,256, got {text!r}")
    return sizes


def run(args: argparse.Namespace) -> int:
    import torch

    from morec.data import load_dataset
    from morec.dynamics_reward.model import DynamicsReward
    from morec.runs.jobs import distil_reward_to, load_dynamics

    torch.set_num_threads(1)
    with as_user_error(ValueError, FileNotFoundError):
        cfg = DistillationConfig(hidden_sizes=hidden_sizes(args.hidden_sizes), updates=args.updates, seed=args.seed)
        ds = load_dataset(args.dataset, env_id=args.env)
        dyn = load_dynamics(args.dynamics, ds, args.device)
        teacher = DynamicsReward.load(
            args.reward,
            args.device,
            obs_dim=ds.obs_dim,
            act_dim=ds.act_dim,
            env_id=ds.metadata.get("env_id"),
            layout=ds.metadata.get("layout"),
        )
        if teacher.distilled_from is not None:
            raise ValueError(f"{args.reward} is already a distilled reward; give the reward it was distilled from")
    out = Path(args.out)
    say = (lambda *_: None) if args.json else print
    say(
        f"distil-reward: {teacher.num_snapshots} snapshots of {args.reward} -> one network ({cfg.updates} updates) -> "
        f"{out}"
    )
    say(f"  TensorBoard: tensorboard --logdir {out / 'tb'}")
    with as_user_error(ValueError):
        _, report = distil_reward_to(ds, dyn, teacher, cfg, out, show_progress=not args.no_progress)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    picks = ", ".join(
        f"{k.replace('consensus_weight_', 'consensus weight ')}: {v:.3f}" for k, v in report["pick_agreement"].items()
    )
    print(f"saved to {out} (report: {out / 'report.json'}); {report['seconds']:.0f} s")
    print(
        f"  on {report['holdout_rows']:,} held-out rows: picked candidate agrees ({picks}); truncation decision at "
        f"r_D < {report['threshold']:.3f} agrees {report['truncation_agreement']:.3f}"
    )
    return 0
