"""``morec train-reward``: learn the MOREC dynamics reward (adversarial discriminator snapshots)
and report how well it tells real transitions from model samples."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from morec.dynamics_reward.config import GENERATORS, MIN_SNAPSHOTS, DynamicsRewardConfig, FewSnapshotsWarning
from morec.errors import as_user_error

NAME = "train-reward"
HELP = "learn the MOREC dynamics reward (adversarial discriminator snapshots)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    defaults = DynamicsRewardConfig()
    p.add_argument("--dataset", required=True)
    p.add_argument("--env", default=None, help="environment id when the dataset does not name one")
    p.add_argument("--dynamics", required=True, help="directory of a trained ensemble (morec train-dynamics)")
    p.add_argument("--out", required=True)
    p.add_argument(
        "--generator",
        choices=GENERATORS,
        default=defaults.generator,
        help="adversarial: a copy of the dynamics trained against the discriminator; fixed: the dynamics "
        "as they are; scratch: a new ensemble trained against it from scratch",
    )
    p.add_argument(
        "--num-updates",
        type=int,
        default=defaults.num_updates,
        help="discriminator updates (reward.num_updates in a training config)",
    )
    p.add_argument(
        "--updates", dest="num_updates", type=int, default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )  # the old spelling
    p.add_argument("--snapshot-interval", type=int, default=defaults.snapshot_interval)
    p.add_argument("--snapshot-stride", type=int, default=defaults.snapshot_stride)
    p.add_argument("--discriminator-lr", type=float, default=defaults.discriminator_lr)
    p.add_argument(
        "--negative-steps",
        type=int,
        default=defaults.negative_steps,
        help="1: negatives one step ahead at dataset (s, a); k > 1: the generator rolled 1..k steps along "
        "dataset trajectories",
    )
    p.add_argument(
        "--contrastive-coef",
        type=float,
        default=defaults.contrastive_coef,
        help="weight of ranking the real s' above the generator's candidates at the same (s, a) "
        "(a deviation from the paper; 0: off)",
    )
    p.add_argument(
        "--entropy-target",
        type=float,
        default=defaults.entropy_target,
        help="tune the discriminator's entropy bonus to keep its mean Bernoulli entropy near this (nats, "
        "e.g. 0.35 as the released code names; default: a fixed bonus)",
    )
    p.add_argument(
        "--logit-clip",
        type=float,
        default=defaults.logit_clip,
        help="clip the discriminator's logits to +-this inside its losses (default: no clip)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true", help="print only the JSON report (as written to report.json)")


def run(args: argparse.Namespace) -> int:
    import torch

    from morec.data import load_dataset
    from morec.dynamics_reward.training import snapshot_warning
    from morec.runs.jobs import TRAIN_REWARD_HOLDOUT, load_dynamics, train_reward

    torch.set_num_threads(1)
    ds = load_dataset(args.dataset, env_id=args.env)
    dyn = load_dynamics(args.dynamics, ds, args.device)
    with as_user_error(ValueError):
        cfg = DynamicsRewardConfig(
            generator=args.generator,
            num_updates=args.num_updates,
            snapshot_interval=args.snapshot_interval,
            snapshot_stride=args.snapshot_stride,
            discriminator_lr=args.discriminator_lr,
            negative_steps=args.negative_steps,
            contrastive_coef=args.contrastive_coef,
            logit_clip=args.logit_clip,
            entropy_target=args.entropy_target,
        )
    out = Path(args.out)
    say = (lambda *_: None) if args.json else print
    say(f"train-reward: {len(ds):,} transitions from {args.dataset}, dynamics from {args.dynamics} -> {out}")
    say(
        f"  {cfg.num_updates} discriminator updates against the {cfg.generator} generator, a snapshot every "
        f"{cfg.snapshot_interval}; {TRAIN_REWARD_HOLDOUT:.0%} of the transitions are held out to score the reward"
    )
    say(f"  TensorBoard: tensorboard --logdir {out / 'tb'}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewSnapshotsWarning)  # said below, as one line
        _, report = train_reward(ds, dyn, cfg, out, seed=args.seed, show_progress=not args.no_progress)
    fit = report["fit"]
    if fit["snapshots_used"] < MIN_SNAPSHOTS:
        print(
            f"morec: warning: {snapshot_warning(fit['snapshots_used'], fit['snapshots_taken'], cfg)}", file=sys.stderr
        )
    if args.json:
        print(
            f"dynamics reward: {fit['snapshots_used']} discriminator snapshots used (of {fit['snapshots_taken']} "
            f"taken)",
            file=sys.stderr,
        )
        print(json.dumps(report, indent=2))
        return 0
    disc = report["discrimination"]
    print(f"saved to {out} (report: {out / 'report.json'})")
    print(
        f"  {fit['updates']} updates in {fit['seconds']:.0f} s; the reward stacks {fit['snapshots_used']} of "
        f"{fit['snapshots_taken']} discriminator snapshots"
    )
    print(
        f"  ROC AUC on {disc['transitions']:,} held-out transitions (0.5 = chance, 1 = perfect): real vs model samples "
        f"{disc['auc_real_vs_model_samples']:.3f}, real vs perturbed {disc['auc_real_vs_perturbed']:.3f}"
    )
    print(f"  TensorBoard: tensorboard --logdir {out / 'tb'}")
    return 0
