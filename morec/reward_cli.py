"""``morec train-reward`` and ``morec eval-model``: learn the MOREC dynamics reward and measure
model error with and without the filter against the MuJoCo oracle."""

from __future__ import annotations

import argparse
import functools
import json
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .dynamics_reward_config import MIN_SNAPSHOTS, DynamicsRewardConfig, FewSnapshotsWarning
from .errors import UserError, as_user_error
from .filter_config import AUTO, FilterCheckConfig, MorecFilterConfig

if TYPE_CHECKING:  # torch and the models load inside the commands, so `morec --help` stays fast
    from dynamics import EnsembleDynamics

    from .dynamics_reward import DynamicsReward
    from .filter_check import CheckedPolicy


def _no_grad(fn):
    """``torch.no_grad()`` as a decorator that imports torch only when ``fn`` runs."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        import torch

        with torch.no_grad():
            return fn(*args, **kwargs)
    return wrapper


def _load_dynamics(path: str, ds, device):
    """The ensemble in ``path``, refused (one line) when it was trained for another task."""
    from dynamics import EnsembleDynamics, TaskInfo

    expect = TaskInfo(ds.obs_dim, ds.act_dim, ds.metadata.get("env_id"), ds.metadata.get("layout"))
    with as_user_error(ValueError, FileNotFoundError):
        return EnsembleDynamics.load(path, device, expect=expect)


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    defaults = DynamicsRewardConfig()
    p.add_argument("--dataset", required=True)
    p.add_argument("--env", default=None, help="environment id when the dataset does not name one")
    p.add_argument("--dynamics", required=True, help="directory of a trained ensemble (morec train-dynamics)")
    p.add_argument("--out", required=True)
    p.add_argument("--generator", choices=("adversarial", "fixed"), default=defaults.generator)
    p.add_argument("--updates", type=int, default=defaults.num_updates)
    p.add_argument("--snapshot-interval", type=int, default=defaults.snapshot_interval)
    p.add_argument("--snapshot-stride", type=int, default=defaults.snapshot_stride)
    p.add_argument("--discriminator-lr", type=float, default=defaults.discriminator_lr)
    p.add_argument("--negative-steps", type=int, default=defaults.negative_steps,
                   help="1: negatives one step ahead at dataset (s, a); k > 1: the generator rolled 1..k steps along "
                        "dataset trajectories")
    p.add_argument("--contrastive-coef", type=float, default=defaults.contrastive_coef,
                   help="weight of ranking the real s' above the generator's candidates at the same (s, a) "
                        "(a deviation from the paper; 0: off)")
    p.add_argument("--logit-clip", type=float, default=defaults.logit_clip,
                   help="clip the discriminator's logits to +-this inside its losses (default: no clip)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true", help="print only the JSON report (as written to report.json)")


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """ROC AUC: probability that a positive scores above a negative (ties count half)."""
    scores = np.concatenate([positive, negative])
    ranks = np.empty(len(scores))
    order = np.argsort(scores, kind="mergesort")
    ranks[order] = np.arange(1, len(scores) + 1)
    for value in np.unique(scores[order][np.diff(scores[order], prepend=np.nan) == 0]):  # average tied ranks
        tied = scores == value
        ranks[tied] = ranks[tied].mean()
    n_pos, n_neg = len(positive), len(negative)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@_no_grad
def discrimination_report(reward: DynamicsReward, dynamics: EnsembleDynamics, ds, seed: int, n: int = 5000,
                          noise_scale: float = 0.1) -> dict:
    """AUC of r_D: held-out-like real transitions against (a) MLE-ensemble samples and (b) real
    transitions whose s' is perturbed by ``noise_scale`` x the per-dimension std of s' - s."""
    import torch

    from .reward_training import sample_elite_next_obs

    rng = np.random.default_rng(seed)
    rows = rng.choice(len(ds), size=min(n, len(ds)), replace=False)
    device = dynamics.device
    obs, act, nxt = (torch.as_tensor(a[rows], device=device) for a in (ds.observations, ds.actions, ds.next_observations))
    gen = torch.Generator(device=device).manual_seed(seed)
    real = reward(obs, act, nxt).cpu().numpy()
    model_next, _, _ = sample_elite_next_obs(dynamics, obs, act, gen)
    delta_std = (nxt - obs).std(0)
    perturbed = nxt + noise_scale * delta_std * torch.randn(nxt.shape, device=device, generator=gen)
    return {
        "auc_real_vs_model_samples": auc(real, reward(obs, act, model_next).cpu().numpy()),
        "auc_real_vs_perturbed": auc(real, reward(obs, act, perturbed).cpu().numpy()),
        "perturbation": f"{noise_scale} x std of (s' - s) per dimension",
        "real_reward_mean": float(real.mean()),
        "transitions": int(len(rows)),
        "note": "scored on a 10% split of the dataset held out from reward training",
    }


def train_reward(args: argparse.Namespace) -> int:
    import torch

    from .data import load_dataset
    from .reward_training import fit_dynamics_reward, snapshot_warning

    torch.set_num_threads(1)
    ds = load_dataset(args.dataset, env_id=args.env)
    dyn = _load_dynamics(args.dynamics, ds, args.device)
    with as_user_error(ValueError):
        cfg = DynamicsRewardConfig(generator=args.generator, num_updates=args.updates, snapshot_interval=args.snapshot_interval,
                                   snapshot_stride=args.snapshot_stride, discriminator_lr=args.discriminator_lr,
                                   negative_steps=args.negative_steps, contrastive_coef=args.contrastive_coef,
                                   logit_clip=args.logit_clip)
    out = Path(args.out)
    say = (lambda *_: None) if args.json else print
    say(f"train-reward: {len(ds):,} transitions from {args.dataset}, dynamics from {args.dynamics} -> {out}")
    say(f"  {cfg.num_updates} discriminator updates against the {cfg.generator} generator, a snapshot every "
        f"{cfg.snapshot_interval}; 10% of the transitions are held out to score the reward")
    say(f"  TensorBoard: tensorboard --logdir {out / 'tb'}")
    train, test = ds.split(0.1, seed=args.seed)  # the discrimination report scores transitions never trained on
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewSnapshotsWarning)  # said below, as one line
        reward, fit = fit_dynamics_reward(train, dyn, cfg, seed=args.seed, log_dir=str(out / "tb"), show_progress=not args.no_progress)
    reward.save(out)
    report = {"fit": fit.__dict__, "snapshots_used": fit.snapshots_used,
              "discrimination": discrimination_report(reward, dyn, test, args.seed)}
    (out / "report.json").write_text(json.dumps(report, indent=2))
    if fit.snapshots_used < MIN_SNAPSHOTS:
        print(f"warning: {snapshot_warning(fit.snapshots_used, fit.snapshots_taken, cfg)}", file=sys.stderr)
    if args.json:
        print(f"dynamics reward: {fit.snapshots_used} discriminator snapshots used (of {fit.snapshots_taken} taken)", file=sys.stderr)
        print(json.dumps(report, indent=2))
        return 0
    disc = report["discrimination"]
    print(f"saved to {out} (report: {out / 'report.json'})")
    print(f"  {fit.updates} updates in {fit.seconds:.0f} s; the reward stacks {fit.snapshots_used} of "
          f"{fit.snapshots_taken} discriminator snapshots")
    print(f"  ROC AUC on {disc['transitions']:,} held-out transitions (0.5 = chance, 1 = perfect): real vs model samples "
          f"{disc['auc_real_vs_model_samples']:.3f}, real vs perturbed {disc['auc_real_vs_perturbed']:.3f}")
    print(f"  TensorBoard: tensorboard --logdir {out / 'tb'}")
    return 0


def threshold_value(text: str) -> float | str:
    """``--threshold``: a number or ``auto``."""
    if text == AUTO:
        return AUTO
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number (the paper: 0.6) or 'auto', got {text!r}") from None


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    filt, check = MorecFilterConfig(), FilterCheckConfig()
    p.add_argument("--dataset", required=True)
    p.add_argument("--env", default=None)
    p.add_argument("--dynamics", required=True)
    p.add_argument("--reward", default=None, help="a trained dynamics reward: compare filtered with unfiltered rollouts")
    p.add_argument("--policy", choices=POLICY_KINDS, default="random",
                   help="random; noisy-behaviour or checkpoint: a policy_<step>.pt of morec collect; torchscript: any "
                        "TorchScript module mapping observations [B, O] float32 to actions [B, A] in [-1, 1] (deterministic)")
    p.add_argument("--policy-path", action="extend", nargs="+", default=[], metavar="FILE",
                   help="the policy file(s); repeat it or give several to check several policies in one call")
    p.add_argument("--policy-noise", type=float, default=0.3, help="extra action noise for noisy-behaviour")
    p.add_argument("--horizon", type=int, default=check.horizon)
    p.add_argument("--starts", type=int, default=500)
    p.add_argument("--mode", choices=("softmax", "argmax"), default=filt.mode)
    p.add_argument("--threshold", type=threshold_value, default=filt.threshold,
                   help="truncate below this r_D: a number (the paper: 0.6) or 'auto' (from the reward's held-out data)")
    p.add_argument("--false-truncation-target", type=float, default=filt.false_truncation_target,
                   help="with --threshold auto: the largest fraction of held-out real transitions to cut")
    p.add_argument("--truncate-as", choices=("terminal", "stop"), default=filt.truncate_as,
                   help="a cut rollout's last transition: marked terminal (the paper) or not")
    p.add_argument("--candidate-clip", type=float, default=check.candidate_clip,
                   help="clip candidate next states and rewards to +-this (the released MOREC code: 25 on D4RL)")
    p.add_argument("--samples-per-member", type=int, default=check.samples_per_member)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true", help="print only the JSON report")


POLICY_KINDS = ("random", "noisy-behaviour", "checkpoint", "torchscript")


def make_policies(args: argparse.Namespace, ds, device, rows: int) -> list[CheckedPolicy]:
    """The policies to check, each with noise fixed per (start row, step) from ``args.seed``."""
    from .filter_check import CheckedPolicy
    from .policies import actor_row_policy, deterministic_row_policy, load_sac_actor, load_torchscript_policy, random_row_policy

    seed, horizon = args.seed + 1, args.horizon
    if args.policy == "random":
        if args.policy_path:
            raise ValueError("--policy random takes no --policy-path; use --policy torchscript for policy files")
        return [CheckedPolicy("random", random_row_policy(ds.act_dim, horizon, rows, seed, device), deterministic=False)]
    if not args.policy_path:
        what = "a TorchScript file" if args.policy == "torchscript" else "a policy_<step>.pt written by morec collect"
        raise ValueError(f"--policy {args.policy} needs --policy-path ({what})")
    policies, names = [], set()
    for path in args.policy_path:
        name = Path(path).stem if args.policy == "torchscript" else f"{args.policy}:{Path(path).stem}"
        while name in names:
            name += "'"
        names.add(name)
        if args.policy == "torchscript":
            act = deterministic_row_policy(load_torchscript_policy(path, ds.obs_dim, ds.act_dim, device))
            policies.append(CheckedPolicy(name, act, deterministic=True))
            continue
        if not Path(path).is_file():
            raise FileNotFoundError(f"policy file {path} does not exist")
        actor = load_sac_actor(path, ds.metadata["env_id"], device)
        noise = args.policy_noise if args.policy == "noisy-behaviour" else 0.0
        policies.append(CheckedPolicy(name, actor_row_policy(actor, ds.act_dim, horizon, rows, seed, device, noise), deterministic=False))
    return policies


def eval_model(args: argparse.Namespace) -> int:
    import torch

    from .filter_check import check_filter

    torch.set_num_threads(1)
    with as_user_error(ValueError, FileNotFoundError):  # bad input: one line naming the fix, exit 2
        setup = _eval_setup(args)
    calibration, real_source = setup.pop("calibration"), setup.pop("real_source")
    report = check_filter(**setup)
    first = next(iter(report["policies"].values()))
    legacy = {k: first[k] for k in ("unfiltered", "filtered", "filtered_over_unfiltered_error", "reward_error_spearman") if k in first}
    out = {"dataset": str(args.dataset), "policy": args.policy, "horizon": args.horizon, "starts": len(setup["starts"]),
           **legacy, "threshold": setup["threshold"] if args.reward else None}
    if calibration is not None:
        out["threshold_calibration"] = calibration.to_dict()
    if args.reward:
        out["false_truncation_data"] = real_source
    print(json.dumps(out | report, indent=2))
    return 0


def _eval_setup(args: argparse.Namespace) -> dict:
    """Load and check everything eval-model needs; bad input raises ``ValueError``/``FileNotFoundError``."""
    import torch

    from dynamics import MujocoOracle, get_termination_fn

    from .data import UnknownEnvironmentWarning, load_dataset
    from .dynamics_reward import DynamicsReward
    from .evaluation import observation_std
    from .threshold import resolve_threshold

    with warnings.catch_warnings():  # an unknown environment stops this command below, in one line
        warnings.simplefilter("ignore", UnknownEnvironmentWarning)
        ds = load_dataset(args.dataset, env_id=args.env)
    if ds.metadata.get("layout") is None or ds.domain is None:
        raise UserError(f"{args.dataset} does not say which environment it comes from, and eval-model needs the "
                        "MuJoCo simulator: pass --env, e.g. --env Hopper-v4 or --env hopper-medium-replay-v2")
    device = torch.device(args.device)
    env_id, layout = ds.metadata.get("env_id"), ds.metadata.get("layout")
    dyn = _load_dynamics(args.dynamics, ds, device)
    oracle = MujocoOracle(env_id, layout)
    rows = np.random.default_rng(args.seed).choice(len(ds), size=min(args.starts, len(ds)), replace=False)
    starts = torch.as_tensor(ds.observations[rows], device=device)
    policies = make_policies(args, ds, device, len(rows))
    filt = MorecFilterConfig(mode=args.mode, threshold=args.threshold, false_truncation_target=args.false_truncation_target,
                             truncate_as=args.truncate_as)
    check = FilterCheckConfig(horizon=args.horizon, samples_per_member=args.samples_per_member,
                              candidate_clip=args.candidate_clip, seed=args.seed)
    reward, threshold, calibration, real, real_source = None, None, None, None, None
    if args.reward:
        reward = DynamicsReward.load(args.reward, device, obs_dim=ds.obs_dim, act_dim=ds.act_dim, env_id=env_id, layout=layout)
        threshold, calibration = resolve_threshold(reward, dyn, filt, check.rollout(), seed=args.seed)
        if reward.heldout is not None:
            real = reward.heldout_part("measure")
            real_source = ("half of the reward's held-out transitions (never trained on; the other half sets "
                           "threshold auto)")
        else:
            sample = np.random.default_rng(args.seed + 2).choice(len(ds), size=min(5000, len(ds)), replace=False)
            real = tuple(torch.as_tensor(a[sample], device=device) for a in (ds.observations, ds.actions, ds.next_observations))
            real_source = "a sample of --dataset (this reward stores no held-out data; it may have trained on these)"
    return {"dynamics": dyn, "reward": reward, "filter_config": filt, "threshold": threshold, "policies": policies,
            "starts": starts, "oracle": oracle, "termination_fn": get_termination_fn(oracle.env_id, oracle.layout),
            "obs_std": observation_std(ds), "config": check, "real_transitions": real,
            "calibration": calibration, "real_source": real_source}
