"""``morec eval-model``: oracle error of model rollouts with and without the MOREC filter."""

from __future__ import annotations

import argparse
import json

from morec.dynamics_reward.config import AUTO, SCORE_DTYPES, FilterCheckConfig, MorecFilterConfig
from morec.errors import as_user_error
from morec.runs.jobs import POLICY_KINDS

NAME = "eval-model"
HELP = "oracle error of model rollouts, with and without the MOREC filter"


def threshold_value(text: str) -> float | str:
    """``--threshold``: a number or ``auto``."""
    if text == AUTO:
        return AUTO
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number (the paper: 0.6) or 'auto', got {text!r}") from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    filt, check = MorecFilterConfig(), FilterCheckConfig()
    p.add_argument("--dataset", required=True)
    p.add_argument("--env", default=None)
    p.add_argument("--dynamics", required=True)
    p.add_argument(
        "--reward", default=None, help="a trained dynamics reward: compare filtered with unfiltered rollouts"
    )
    p.add_argument(
        "--policy",
        choices=POLICY_KINDS,
        default="random",
        help="random; noisy-behaviour or checkpoint: a policy_<step>.pt of morec collect; torchscript: any "
        "TorchScript module mapping observations [B, O] float32 to actions [B, A] in [-1, 1] (deterministic)",
    )
    p.add_argument(
        "--policy-path",
        action="extend",
        nargs="+",
        default=[],
        metavar="FILE",
        help="the policy file(s); repeat it or give several to check several policies in one call",
    )
    p.add_argument("--policy-noise", type=float, default=0.3, help="extra action noise for noisy-behaviour")
    p.add_argument("--horizon", type=int, default=check.horizon)
    p.add_argument("--starts", type=int, default=500)
    p.add_argument(
        "--mode",
        choices=("softmax", "argmax", "random"),
        default=filt.mode,
        help="the pick among the candidates: by score (softmax or argmax) or uniform (random: truncation alone)",
    )
    p.add_argument(
        "--consensus-weight",
        type=float,
        default=filt.consensus_weight,
        help="weight of the distance to the elites' mean prediction in the pick (0: the paper, r_D alone)",
    )
    p.add_argument(
        "--threshold",
        type=threshold_value,
        default=filt.threshold,
        help="truncate below this r_D: a number (the paper: 0.6) or 'auto' (from the reward's held-out data)",
    )
    p.add_argument(
        "--false-truncation-target",
        type=float,
        default=filt.false_truncation_target,
        help="with --threshold auto: the largest fraction of held-out real transitions to cut",
    )
    p.add_argument(
        "--truncate-as",
        choices=("terminal", "stop"),
        default=filt.truncate_as,
        help="a cut rollout's last transition: marked terminal (the paper) or not",
    )
    p.add_argument(
        "--score-dtype",
        choices=SCORE_DTYPES,
        default=filt.score_dtype,
        help="the precision r_D's hidden layers score in (bfloat16: fast where the CPU has AMX or AVX512-BF16)",
    )
    p.add_argument(
        "--candidate-clip",
        type=float,
        default=check.candidate_clip,
        help="clip candidate next states and rewards to +-this (the released MOREC code: 25 on D4RL)",
    )
    p.add_argument("--samples-per-member", type=int, default=check.samples_per_member)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true", help="print the whole JSON report instead of the summary")


def run(args: argparse.Namespace) -> int:
    import torch

    from morec.runs.jobs import eval_model

    torch.set_num_threads(1)
    with as_user_error(ValueError):  # bad settings: one line naming the fix, exit 2
        filt = MorecFilterConfig(
            mode=args.mode,
            consensus_weight=args.consensus_weight,
            threshold=args.threshold,
            false_truncation_target=args.false_truncation_target,
            truncate_as=args.truncate_as,
            score_dtype=args.score_dtype,
        )
        check = FilterCheckConfig(
            horizon=args.horizon,
            samples_per_member=args.samples_per_member,
            candidate_clip=args.candidate_clip,
            seed=args.seed,
        )  # --horizon, --samples-per-member >= 1, --candidate-clip > 0
    report = eval_model(  # checks --starts first
        args.dataset,
        args.dynamics,
        env=args.env,
        reward=args.reward,
        policy=args.policy,
        policy_paths=args.policy_path,
        policy_noise=args.policy_noise,
        starts=args.starts,
        filter_config=filt,
        check=check,
        device=args.device,
    )
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_eval_summary(report)
    return 0


def print_eval_summary(report: dict) -> None:
    """The report's main numbers, a few lines per policy (``--json`` prints all of it)."""
    threshold = report["threshold"]
    filt = report.get("filter")
    where = (
        f", filter threshold {threshold:.3f} ({filt['threshold']}), cuts written as {filt['truncate_as']}"
        if filt
        else ", no dynamics reward (unfiltered rollouts only)"
    )
    print(f"eval-model: {report['starts']} start states of {report['dataset']}, horizon {report['horizon']}{where}")
    for name, result in report["policies"].items():
        unf = result["unfiltered"]
        line = (
            f"  policy {name}: unfiltered error {unf['error']:.3g} (first step {unf['error_first_step']:.3g}), "
            f"length {unf['mean_length']:.1f}"
        )
        if "true_return_mean" in result:
            line += f", return error {unf['return_abs_error']:.3g} (true return {result['true_return_mean']:.1f})"
        print(line)
        if "filtered" in result:
            f = result["filtered"]
            print(
                f"    filtered: error {f['error']:.3g}, length {f['mean_length']:.1f}, "
                f"{f['truncated'] / report['starts']:.0%} "
                f"cut, fake terminals {f['fake_terminal_fraction']:.1%} of transitions"
                + (f", return error {f['return_abs_error']:.3g}" if "return_abs_error" in f else "")
            )
            print(
                f"    step-matched error ratio {_num(result.get('step_matched_error_ratio'))} (filtered / unfiltered "
                f"at the same "
                f"step), selection gain captured {_num(result.get('selection_gain_captured'))}"
            )
    if report.get("false_truncation_rate") is not None:
        print(
            f"  false truncation: {report['false_truncation_rate']:.1%} of held-out real transitions fall below the "
            f"threshold"
        )
    print("  --json prints the whole report")


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"
