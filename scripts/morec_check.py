"""Does the dynamics reward keep long rollouts honest? The evidence run behind docs/morec_check.

For one ``morec collect`` dataset it runs, through the ``morec`` command line and its defaults
unless a variant says otherwise:

1. ``morec train-dynamics`` (once; ``--max-epochs`` caps it);
2. per reward variant, ``morec train-reward`` and ``morec eval-model --horizon H --json`` with
   four policy sets: ``random``; ``behaviour`` (the behaviour checkpoint itself);
   ``noisy-behaviour`` (the same plus 0.3 action noise); and two off-behaviour deterministic
   TorchScript policies in one call (an earlier SAC checkpoint and the final one, exported with
   :func:`morec.rollout.policies.export_sac_actor`). A variant named ``<variant>-distilled`` is
   ``<variant>`` with its reward distilled into one network (``morec distil-reward``) and checked
   in its place: does the cheap filter check like r_D?
3. writes ``table.md`` and ``table.json`` under ``--out`` after every finished step, rows not yet
   complete marked ``partial``.

Every step's output is kept; a rerun skips what is finished, so the run resumes after a kill.

    python scripts/morec_check.py --collect data/hopper --level medium-replay --out runs/morec_check/hopper-mr
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from morec.io import atomic_write

# name -> (train-reward flags, eval-model flags). "default" uses every command's defaults.
PAPER_REWARD = ["--generator", "adversarial", "--negative-steps", "1", "--contrastive-coef", "0"]
R_D_PICK = ["--consensus-weight", "0"]  # the paper's pick: r_D alone
VARIANTS: dict[str, tuple[list[str], list[str]]] = {
    "default": ([], []),
    "paper": (PAPER_REWARD, ["--threshold", "0.6", *R_D_PICK]),
    "paper-auto": (PAPER_REWARD, ["--threshold", "auto", *R_D_PICK]),
    **{
        f"paper-auto-consensus-{w}": (PAPER_REWARD, ["--threshold", "auto", "--consensus-weight", w])
        for w in ("0.3", "0.5", "1", "3")
    },
    "fixed": (
        ["--generator", "fixed", "--negative-steps", "1", "--contrastive-coef", "0"],
        ["--threshold", "auto", *R_D_PICK],
    ),
    "fixed-multistep": (
        ["--generator", "fixed", "--negative-steps", "5", "--contrastive-coef", "0"],
        ["--threshold", "auto", *R_D_PICK],
    ),
    "fixed-contrastive": (
        ["--generator", "fixed", "--negative-steps", "1", "--contrastive-coef", "1"],
        ["--threshold", "auto", *R_D_PICK],
    ),
    "fixed-multistep-contrastive": (
        ["--generator", "fixed", "--negative-steps", "5", "--contrastive-coef", "1"],
        ["--threshold", "auto", *R_D_PICK],
    ),
    "paper-entropy-auto": ([*PAPER_REWARD, "--entropy-target", "0.35"], ["--threshold", "auto", *R_D_PICK]),
    "paper-entropy-auto-consensus-1": (
        [*PAPER_REWARD, "--entropy-target", "0.35"],
        ["--threshold", "auto", "--consensus-weight", "1"],
    ),
    "fixed-contrastive-consensus-0.3": (
        ["--generator", "fixed", "--negative-steps", "1", "--contrastive-coef", "1"],
        ["--threshold", "auto", "--consensus-weight", "0.3"],
    ),
    "scratch-auto": (
        ["--generator", "scratch", "--negative-steps", "1", "--contrastive-coef", "0"],
        ["--threshold", "auto", *R_D_PICK],
    ),
    "scratch-auto-consensus-1": (
        ["--generator", "scratch", "--negative-steps", "1", "--contrastive-coef", "0"],
        ["--threshold", "auto", "--consensus-weight", "1"],
    ),
    # the paper's reward scored in bfloat16 (filter.score_dtype): does the cheap precision filter like float32?
    "paper-bfloat16": (PAPER_REWARD, ["--threshold", "0.6", *R_D_PICK, "--score-dtype", "bfloat16"]),
    "paper-auto-bfloat16": (PAPER_REWARD, ["--threshold", "auto", *R_D_PICK, "--score-dtype", "bfloat16"]),
    # the reference without a discriminator: the candidate nearest the elites' mean (a weight that
    # swamps r_D's range of 1), never truncated (a threshold below r_D's floor of 0.313)
    "consensus-only": (PAPER_REWARD, ["--threshold", "0", "--consensus-weight", "1000000"]),
}
# eval-model flags share one trained reward: variants naming the same train-reward flags reuse it
DISTILLED = "-distilled"  # a variant's name with this suffix: its reward distilled into one network
POLICY_SETS = ("random", "behaviour", "noisy-behaviour", "off-behaviour")


def reward_dir_name(train_flags: list[str]) -> str:
    """The folder under ``<out>/rewards/`` of the reward ``train-reward`` makes with these flags
    (variants with the same flags share it)."""
    return "-".join(f.lstrip("-") for f in train_flags) or "default"


def variant_names(text: str) -> list[str]:
    """The comma-separated ``--variants``, each a name of :data:`VARIANTS` optionally followed by
    :data:`DISTILLED`; an unknown one stops the script with one line naming the known ones."""
    names = [n for n in text.split(",") if n]
    unknown = [n for n in names if n.removesuffix(DISTILLED) not in VARIANTS]
    if unknown or not names:
        raise SystemExit(
            f"morec_check: error: --variants: unknown {', '.join(unknown) or '(none given)'}; known: "
            f"{', '.join(VARIANTS)} (each may end in {DISTILLED})"
        )
    return names


def run(cmd: list[str], out: Path) -> dict:
    """Run a ``morec`` command that prints JSON; keep its output in ``out`` (skip if already there)."""
    if out.exists():
        return json.loads(out.read_text())
    print("$", " ".join(cmd), flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"failed: {' '.join(cmd)}")
    text = proc.stdout[proc.stdout.index("{") :]
    report = json.loads(text)
    atomic_write(out, lambda tmp: tmp.write_text(json.dumps(report, indent=2)))
    return report


def checkpoints(collect_dir: Path) -> tuple[str, Path, Path, Path]:
    """``(env_id, behaviour checkpoint, earlier checkpoint, final checkpoint)`` from collect_summary.json."""
    summary = json.loads((collect_dir / "collect_summary.json").read_text())
    sac = collect_dir / "behaviour_sac"
    medium, final = summary["medium_policy"], summary["expert_policy"]
    earlier = min(summary["evaluations"], key=lambda e: abs(e["step"] - medium["step"] / 2))
    return summary["env_id"], sac / medium["policy_path"], sac / earlier["policy_path"], sac / final["policy_path"]


def episode_subset_file(dataset: Path, transitions: int, seed: int, out: Path) -> Path:
    """``dataset``'s nested subset of whole episodes (:meth:`OfflineDataset.episode_subset`),
    written once to ``out``; a size larger than the data stops the script with one line."""
    from morec.data import DatasetError, load_dataset

    path = out / f"{dataset.stem}-{transitions}-seed{seed}.hdf5"
    if not path.exists():
        try:
            subset = load_dataset(dataset).episode_subset(transitions, seed)
        except DatasetError as err:
            raise SystemExit(f"morec_check: error: --transitions: {err}") from None
        subset.save(path)  # atomic
    return path


def table_row(name: str, reward: dict | None, evals: dict[str, dict]) -> dict:
    def pol(policy_set: str, key: str, side: str | None = None):
        rep = evals.get(policy_set)
        if rep is None:
            return None
        values = [(p[side] if side else p).get(key) for p in rep["policies"].values()]
        values = [v for v in values if v is not None]
        return sum(values) / len(values) if values else None

    distilled = (reward or {}).get("distillation")
    disc = {} if distilled else (reward or {}).get("discrimination", {})  # the teacher's AUC is not the student's
    first = next(iter(evals.values()), {})
    return {
        "variant": name,
        "partial": reward is None or len(evals) < len(POLICY_SETS),
        "snapshots_used": None if distilled else (reward or {}).get("snapshots_used"),
        "auc_model": disc.get("auc_real_vs_model_samples"),
        "auc_perturbed": disc.get("auc_real_vs_perturbed"),
        # a distilled row: how often the student's argmax pick (r_D alone) and its cut match the teacher's
        "distilled_pick_agreement": distilled["pick_agreement"]["consensus_weight_0"] if distilled else None,
        "distilled_truncation_agreement": distilled["truncation_agreement"] if distilled else None,
        "threshold": first.get("threshold"),
        "false_truncation_rate": first.get("false_truncation_rate"),
        "length_behaviour_filtered": pol("behaviour", "mean_rollout_length", "filtered"),
        "length_noisy_filtered": pol("noisy-behaviour", "mean_rollout_length", "filtered"),
        "length_noisy_unfiltered": pol("noisy-behaviour", "mean_rollout_length", "unfiltered"),
        "fake_terminal_noisy": pol("noisy-behaviour", "fake_terminal_fraction", "filtered"),
        "step_matched_random": pol("random", "step_matched_error_ratio"),
        "step_matched_behaviour": pol("behaviour", "step_matched_error_ratio"),
        "step_matched_noisy": pol("noisy-behaviour", "step_matched_error_ratio"),
        "step_matched_off": pol("off-behaviour", "step_matched_error_ratio"),
        "return_error_ratio_off": pol("off-behaviour", "return_error_ratio"),
        "selection_gain_random": pol("random", "selection_gain_captured"),
        "selection_gain_behaviour": pol("behaviour", "selection_gain_captured"),
        "selection_gain_noisy": pol("noisy-behaviour", "selection_gain_captured"),
        "ranking_spearman": (evals.get("off-behaviour") or {}).get("policy_ranking_spearman"),
    }


def write_table(out: Path, meta: dict, rows: list[dict]) -> None:
    (out / "table.json").write_text(json.dumps({**meta, "rows": rows}, indent=2))
    cols = [k for k in rows[0] if k not in ("variant", "partial", "ranking_spearman")] if rows else []

    def fmt(v):
        return "–" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = [f"# {meta['dataset']}", "", "| variant | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for r in rows:
        label = r["variant"] + (" (partial)" if r["partial"] else "")
        lines.append(f"| {label} | " + " | ".join(fmt(r[c]) for c in cols) + " |")
    (out / "table.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--collect", required=True, help="a morec collect output directory")
    p.add_argument("--level", default="medium-replay")
    p.add_argument(
        "--transitions",
        type=int,
        default=None,
        help="check a subset of the level's data: whole episodes holding at most this many transitions "
        "(nested: for one --subset-seed a smaller subset lies inside a larger one)",
    )
    p.add_argument("--subset-seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"comma-separated subset of {list(VARIANTS)}, each optionally ending in {DISTILLED}",
    )
    p.add_argument("--horizon", type=int, default=100)
    p.add_argument("--starts", type=int, default=500)
    p.add_argument("--max-epochs", type=int, default=None, help="cap on dynamics training epochs")
    p.add_argument("--num-updates", type=int, default=None, help="train-reward --num-updates (default: its own)")
    p.add_argument("--distil-updates", type=int, default=None, help="distil-reward --updates (default: its own)")
    args = p.parse_args(argv)
    variants = variant_names(args.variants)

    from morec.collect.recipe import dataset_file_name
    from morec.rollout.policies import export_sac_actor

    collect_dir, out = Path(args.collect), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env_id, behaviour, earlier, final = checkpoints(collect_dir)
    dataset = collect_dir / dataset_file_name(env_id, args.level, "d4rl")
    if args.transitions is not None:
        dataset = episode_subset_file(dataset, args.transitions, args.subset_seed, out)
    base = ["--dataset", str(dataset)]
    dyn_cmd = ["morec", "train-dynamics", *base, "--out", str(out / "dynamics"), "--json", "--no-progress"]
    dyn = run(dyn_cmd + (["--max-epochs", str(args.max_epochs)] if args.max_epochs else []), out / "dynamics.json")
    policies = [export_sac_actor(ck, env_id, out / "policies" / f"{ck.stem}.pt") for ck in (earlier, final)]
    meta = {
        "dataset": str(dataset),
        "env_id": env_id,
        "horizon": args.horizon,
        "starts": args.starts,
        "dynamics": {k: dyn["fit"].get(k) for k in ("epochs", "elite_holdout_mse", "seconds")},
        "behaviour_policy": behaviour.name,
        "off_behaviour_policies": [ck.name for ck in (earlier, final)],
    }
    rows = []
    for name in variants:
        train_flags, eval_flags = VARIANTS[name.removesuffix(DISTILLED)]
        key = reward_dir_name(train_flags)
        reward_dir = out / "rewards" / key
        updates = ["--num-updates", str(args.num_updates)] if args.num_updates else []
        reward = run(
            [
                "morec",
                "train-reward",
                *base,
                "--dynamics",
                str(out / "dynamics"),
                "--out",
                str(reward_dir),
                "--json",
                "--no-progress",
                *updates,
                *train_flags,
            ],
            out / "rewards" / f"{key}.json",
        )
        if name.endswith(DISTILLED):  # the student in the teacher's place; its report in the reward's
            distilled = run(
                [
                    "morec",
                    "distil-reward",
                    *base,
                    "--dynamics",
                    str(out / "dynamics"),
                    "--reward",
                    str(reward_dir),
                    "--out",
                    str(out / "rewards" / f"{key}{DISTILLED}"),
                    "--json",
                    "--no-progress",
                    *(["--updates", str(args.distil_updates)] if args.distil_updates else []),
                ],
                out / "rewards" / f"{key}{DISTILLED}.json",
            )
            reward = {**reward, "distillation": distilled}
            reward_dir = out / "rewards" / f"{key}{DISTILLED}"
        evals = {}
        for policy_set in POLICY_SETS:
            pol = {
                "random": ["--policy", "random"],
                "behaviour": ["--policy", "checkpoint", "--policy-path", str(behaviour)],
                "noisy-behaviour": ["--policy", "noisy-behaviour", "--policy-path", str(behaviour)],
                "off-behaviour": ["--policy", "torchscript", "--policy-path", *map(str, policies)],
            }[policy_set]
            evals[policy_set] = run(
                [
                    "morec",
                    "eval-model",
                    *base,
                    "--dynamics",
                    str(out / "dynamics"),
                    "--reward",
                    str(reward_dir),
                    "--horizon",
                    str(args.horizon),
                    "--starts",
                    str(args.starts),
                    "--json",
                    *pol,
                    *eval_flags,
                ],
                out / "evals" / f"{name}-{policy_set}.json",
            )
            write_table(out, meta, rows + [table_row(name, reward, evals)])
        rows.append(table_row(name, reward, evals))
    write_table(out, meta, rows)
    print((out / "table.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
