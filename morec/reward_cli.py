"""``morec train-reward`` and ``morec eval-model``: learn the MOREC dynamics reward and measure
model error with and without the filter against the MuJoCo oracle."""

from __future__ import annotations

import argparse
import functools
import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .dynamics_reward_config import DynamicsRewardConfig
from .errors import UserError, as_user_error

if TYPE_CHECKING:  # torch and the models load inside the commands, so `morec --help` stays fast
    from dynamics import EnsembleDynamics

    from .dynamics_reward import DynamicsReward
    from .policies import TensorPolicy


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
    from .reward_training import fit_dynamics_reward

    torch.set_num_threads(1)
    ds = load_dataset(args.dataset, env_id=args.env)
    dyn = _load_dynamics(args.dynamics, ds, args.device)
    with as_user_error(ValueError):
        cfg = DynamicsRewardConfig(generator=args.generator, num_updates=args.updates, snapshot_interval=args.snapshot_interval,
                                   snapshot_stride=args.snapshot_stride, discriminator_lr=args.discriminator_lr)
    out = Path(args.out)
    say = (lambda *_: None) if args.json else print
    say(f"train-reward: {len(ds):,} transitions from {args.dataset}, dynamics from {args.dynamics} -> {out}")
    say(f"  {cfg.num_updates} discriminator updates against the {cfg.generator} generator, a snapshot every "
        f"{cfg.snapshot_interval}; 10% of the transitions are held out to score the reward")
    say(f"  TensorBoard: tensorboard --logdir {out / 'tb'}")
    train, test = ds.split(0.1, seed=args.seed)  # the discrimination report scores transitions never trained on
    reward, fit = fit_dynamics_reward(train, dyn, cfg, seed=args.seed, log_dir=str(out / "tb"), show_progress=not args.no_progress)
    reward.save(out)
    report = {"fit": fit.__dict__, "discrimination": discrimination_report(reward, dyn, test, args.seed)}
    (out / "report.json").write_text(json.dumps(report, indent=2))
    if args.json:
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


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True)
    p.add_argument("--env", default=None)
    p.add_argument("--dynamics", required=True)
    p.add_argument("--reward", default=None, help="a trained dynamics reward: compare filtered with unfiltered rollouts")
    p.add_argument("--policy", choices=("random", "noisy-behaviour", "checkpoint"), default="random")
    p.add_argument("--policy-path", default=None, help="policy_<step>.pt from morec collect (noisy-behaviour, checkpoint)")
    p.add_argument("--policy-noise", type=float, default=0.3, help="extra action noise for noisy-behaviour")
    p.add_argument("--horizon", type=int, default=100)
    p.add_argument("--starts", type=int, default=500)
    p.add_argument("--mode", choices=("softmax", "argmax"), default="softmax")
    p.add_argument("--threshold", type=float, default=0.6)
    p.add_argument("--samples-per-member", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true", help="print only the JSON report")


def make_policy(args: argparse.Namespace, ds, device) -> TensorPolicy:
    import torch

    from .policies import actor_policy, load_sac_actor, random_policy

    gen = torch.Generator(device=device).manual_seed(args.seed + 1)
    if args.policy == "random":
        return random_policy(ds.act_dim, gen)
    if not args.policy_path:
        raise SystemExit(f"--policy {args.policy} needs --policy-path (a policy_<step>.pt written by morec collect)")
    actor = load_sac_actor(args.policy_path, ds.metadata["env_id"], device)
    return actor_policy(actor, gen, noise_std=args.policy_noise if args.policy == "noisy-behaviour" else 0.0)


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
    return float(np.corrcoef(rx, ry)[0, 1])


def eval_model(args: argparse.Namespace) -> int:
    import torch

    from dynamics import MujocoOracle

    from .data import UnknownEnvironmentWarning, load_dataset
    from .dynamics_reward import DynamicsReward
    from .evaluation import model_error, observation_std
    from .filter import MorecFilterConfig, MorecSelector

    torch.set_num_threads(1)
    with warnings.catch_warnings():  # an unknown environment stops this command below, in one line
        warnings.simplefilter("ignore", UnknownEnvironmentWarning)
        ds = load_dataset(args.dataset, env_id=args.env)
    if ds.metadata.get("layout") is None or ds.domain is None:
        raise UserError(f"{args.dataset} does not say which environment it comes from, and eval-model needs the "
                        "MuJoCo simulator: pass --env, e.g. --env Hopper-v4 or --env hopper-medium-replay-v2")
    device = torch.device(args.device)
    dyn = _load_dynamics(args.dynamics, ds, device)
    oracle = MujocoOracle(ds.metadata["env_id"], ds.metadata["layout"])
    std = observation_std(ds)
    rows = np.random.default_rng(args.seed).choice(len(ds), size=min(args.starts, len(ds)), replace=False)
    starts = torch.as_tensor(ds.observations[rows], device=device)

    def run(selector):
        policy = make_policy(args, ds, device)  # same policy noise stream for both runs
        return model_error(dyn, selector, policy, starts, args.horizon, oracle, obs_std=std,
                           samples_per_member=args.samples_per_member, seed=args.seed)

    report = {"dataset": str(args.dataset), "policy": args.policy, "horizon": args.horizon, "starts": len(rows),
              "unfiltered": _summary(run(None))}
    if args.reward:
        with as_user_error(ValueError, FileNotFoundError):
            reward = DynamicsReward.load(args.reward, device, obs_dim=ds.obs_dim, act_dim=ds.act_dim)
        selector = MorecSelector(reward, MorecFilterConfig(mode=args.mode, threshold=args.threshold))
        filtered = run(selector)
        report["filtered"] = _summary(filtered)
        report["filtered_over_unfiltered_error"] = filtered.overall / report["unfiltered"]["error"]
        report["reward_error_spearman"] = filtered_spearman(reward, dyn, oracle, starts, args, ds, std)
    print(json.dumps(report, indent=2))
    return 0


def _summary(rep) -> dict:
    last = max(i for i, c in enumerate(rep.per_step_count) if c)
    return {"error": rep.overall, "median_error": rep.median, "error_first_step": rep.per_step[0],
            f"error_step_{last + 1}": rep.per_step[last],
            "reward_abs_error": rep.reward_abs_error, "transitions": rep.transitions,
            "mean_length": rep.rollout["mean_length"], "truncated": rep.rollout["stopped"], "terminated": rep.rollout["terminated"],
            "reward_d": rep.rollout["selector"].get("reward_d")}


@_no_grad
def filtered_spearman(reward, dyn, oracle, starts, args, ds, std) -> float:
    """Rank correlation between r_D and oracle error over candidates of one step from the start
    states (negative means higher reward, lower error)."""
    from dynamics import get_termination_fn

    from .rollout import RolloutConfig, RolloutEngine

    engine = RolloutEngine(dyn, get_termination_fn(oracle.env_id, oracle.layout), RolloutConfig(samples_per_member=args.samples_per_member), seed=args.seed)
    act = make_policy(args, ds, starts.device)(starts)
    cands, _ = engine.candidates(starts, act)  # [K, B, O + 1]
    scores = reward(starts, act, cands[..., :-1]).cpu().numpy().ravel()
    true_next, _, _ = oracle.step(starts.cpu().numpy(), act.cpu().numpy())
    pred = cands[..., :-1].cpu().numpy().astype(np.float64)
    err = np.sqrt((((pred - true_next[None]) / std) ** 2).mean(-1)).ravel()
    return spearman(scores, err)
