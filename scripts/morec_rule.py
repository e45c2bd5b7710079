"""The rule of docs/morec_scale that chooses the recommended MOREC configuration, as code.

The rule's text was committed before any learning run (0b38628); this is that text made mechanical,
written before any learning run finished, so applying it leaves nothing to judgement. It reads the
finished runs of ``scripts/morec_scale.py`` (``<root>/learn/<task>/runs/<task>-medium-v2/<variant>/
seed<N>/summary.json``), prints the choice as JSON and writes it to ``<root>/choice.json``:

    python scripts/morec_rule.py --root runs/morec_scale

1. a run's score is ``last10`` (the mean normalised score of its last 10 evaluations);
2. the choosing data are :data:`morec_scale.CHOOSING_TASKS`' medium-1M; Walker2d only confirms;
3. Δ(c, d): mean over seeds of c's score minus MOPO's, over the seeds both finished; σ(d): the
   larger of the two standard deviations over those seeds (``np.std``, as every table of the page);
4. eligible: every expected seed finished on both choosing tasks, not in
   :data:`MEDIUM_REPLAY_LOSERS`, and (for the candidates the runner's ``replay`` job trains on
   HalfCheetah medium-replay, every seed) not below MOPO there by more than σ;
5. the choice: the largest worst-case gain min_d Δ(c, d); candidates within :data:`TIE_POINTS` of it
   are tied, and a tie goes to the lower wall time per gradient step, then to fewer deviations from
   the paper (:func:`paper_deviations`);
6. MOREC helps if Δ ≥ −σ on both choosing tasks and Δ > σ on at least one;
7. confirmed on Walker2d if Δ ≥ −σ there (reported, changes nothing);
9. with seeds missing, the choice is made on what finished and marked provisional, the shortfall named.

(Rule 8, MOBILE, is the runner's ``--recommended``.)
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from morec_scale import CANDIDATES, CHOOSING_TASKS, REPLAY_TASK, REPLAY_VARIANTS, d4rl_task, replay_dir  # noqa: E402

from morec.io import atomic_write  # noqa: E402
from morec.runs.suite.worker import read_summary  # noqa: E402

HOST = "mopo"
CONFIRMING_TASK = "walker2d"
TIE_POINTS = 1.0  # rule 5: worst-case gains this close (normalised score points) are tied
PAPER_CONFIG = "paper/mopo_morec"
# rule 4: candidates that already lost to MOPO on a medium-replay dataset by more than the larger std,
# over three seeds (docs/morec_learning)
MEDIUM_REPLAY_LOSERS = {
    "mopo_morec_paper": "lost to MOPO on HalfCheetah medium-replay (-0.1 ± 0.7 against 32.3 ± 0.5) and Hopper "
    "medium-replay (11.7 ± 2.3 against 25.5 ± 0.9), three seeds each (docs/morec_learning)",
}


def paper_deviations(candidate: str) -> int:
    """How many settings ``candidate`` changes from the paper's launcher config: MOPO's λ where it
    starts from the matched config, plus each of its overrides."""
    base, overrides = CANDIDATES[candidate]
    return int(base != PAPER_CONFIG) + len(overrides)


def learning_runs(root: Path, task: str) -> Path:
    """The folder of ``task``'s medium-1M runs: ``<variant>/seed<N>`` in it."""
    return root / "learn" / task / "runs" / d4rl_task(task)


def replay_runs(root: Path) -> Path:
    """The folder of the runner's medium-replay runs (rule 4)."""
    return replay_dir(root) / "runs" / d4rl_task(REPLAY_TASK, "medium-replay")


@functools.cache  # within one apply_rule, MOPO's runs are read once, not once per candidate
def finished_runs(runs: Path, variant: str) -> dict[int, dict]:
    """``{seed: summary}`` of ``variant``'s finished runs in ``runs``."""
    found = {}
    for run_dir in sorted((runs / variant).glob("seed*")):
        summary = read_summary(run_dir)
        if summary is not None and run_dir.name.removeprefix("seed").isdigit():
            found[int(run_dir.name.removeprefix("seed"))] = summary
    return found


def ran_as(runs: Path, candidate: str) -> str:
    """The variant whose runs in ``runs`` are ``candidate``'s: ``candidate``, or the earlier variant
    with the same resolved config that ``morec_learning.py`` ran in its place (on HalfCheetah MOREC's
    λ is MOPO's, so ``mopo_morec_stop_paper_lambda`` is ``mopo_morec_stop``), as its ``table.json``
    beside the runs folder records under ``same_config_as``."""
    table = runs.parent.parent / "table.json"
    if not table.exists():
        return candidate
    return json.loads(table.read_text()).get("same_config_as", {}).get(candidate, candidate)


def gain(runs: Path, candidate: str) -> dict | None:
    """Rule 3 on the runs in ``runs``: Δ, σ and the seeds both ``candidate`` (or the variant that ran
    in its place: :func:`ran_as`) and MOPO finished (``None``: no such seed)."""
    ours, host = finished_runs(runs, ran_as(runs, candidate)), finished_runs(runs, HOST)
    seeds = sorted(set(ours) & set(host))
    if not seeds:
        return None
    scores = np.array([ours[s]["last10_mean_score"] for s in seeds])
    host_scores = np.array([host[s]["last10_mean_score"] for s in seeds])
    return {
        "seeds": seeds,
        "delta": float(scores.mean() - host_scores.mean()),
        "sigma": float(max(scores.std(), host_scores.std())),
        "score": float(scores.mean()),
        "host_score": float(host_scores.mean()),
        "wall_s_per_1k_steps": float(
            np.mean([1000 * ours[s]["wall_seconds"] / ours[s]["gradient_steps"] for s in seeds])
        ),
    }


def apply_rule(root: Path, seeds: list[int]) -> dict:
    """The rule on the runs under ``root`` with ``seeds`` expected per candidate: every candidate's
    gains and eligibility, the choice, whether MOREC helps and the confirmation."""
    finished_runs.cache_clear()  # runs may have finished since the last call
    rows, shortfall = {}, []
    for candidate in (c for c in CANDIDATES if c != HOST):
        gains = {task: gain(learning_runs(root, task), candidate) for task in CHOOSING_TASKS}
        lacking = {task: sorted(set(seeds) - set((g or {}).get("seeds", []))) for task, g in gains.items()}
        missing = [f"{candidate} on {task}: seeds {lack}" for task, lack in lacking.items() if lack]
        excluded_by = MEDIUM_REPLAY_LOSERS.get(candidate)
        if candidate in REPLAY_VARIANTS:  # rule 4 on the runner's own medium-replay runs, once every seed finished
            replay = gain(replay_runs(root), candidate)
            lack = sorted(set(seeds) - set((replay or {}).get("seeds", [])))
            if lack:
                missing.append(f"{candidate} on {REPLAY_TASK} medium-replay (rule 4): seeds {lack}")
            elif replay["delta"] < -replay["sigma"]:
                excluded_by = (
                    f"lost to MOPO on {REPLAY_TASK} medium-replay ({replay['score']:.1f} against "
                    f"{replay['host_score']:.1f}, Δ {replay['delta']:.1f}, σ {replay['sigma']:.1f}, seeds {seeds})"
                )
        shortfall += missing
        rows[candidate] = {
            "gains": gains,
            "excluded_by": excluded_by,
            "complete": not missing,
            "worst_gain": None if None in gains.values() else min(g["delta"] for g in gains.values()),
            "wall_s_per_1k_steps": None
            if None in gains.values()
            else float(np.mean([g["wall_s_per_1k_steps"] for g in gains.values()])),
            "paper_deviations": paper_deviations(candidate),
        }
    complete = [c for c, r in rows.items() if r["complete"] and not r["excluded_by"]]
    # rule 9: with seeds missing, choose among the candidates with at least one seed on both tasks
    pool = complete or [c for c, r in rows.items() if r["worst_gain"] is not None and not r["excluded_by"]]
    chosen, tied = None, []
    if pool:
        best = max(rows[c]["worst_gain"] for c in pool)
        tied = [c for c in pool if rows[c]["worst_gain"] >= best - TIE_POINTS]
        chosen = min(tied, key=lambda c: (rows[c]["wall_s_per_1k_steps"], rows[c]["paper_deviations"]))
    helps, confirmation = None, None
    if chosen is not None:
        gains = rows[chosen]["gains"].values()
        helps = all(g["delta"] >= -g["sigma"] for g in gains) and any(g["delta"] > g["sigma"] for g in gains)
        walker = gain(learning_runs(root, CONFIRMING_TASK), chosen)
        confirmation = None if walker is None else {**walker, "confirmed": walker["delta"] >= -walker["sigma"]}
    return {
        "seeds_expected": seeds,
        "provisional": not complete,
        "shortfall": shortfall,
        "candidates": rows,
        "tied": tied,
        "chosen": chosen,
        "helps": helps,
        "confirmation": confirmation,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", default="runs/morec_scale", help="the root of scripts/morec_scale.py")
    p.add_argument("--seeds", default="0,1,2", help="the seeds every candidate should have")
    args = p.parse_args(argv)
    root = Path(args.root)
    if not (root / "learn").is_dir():
        raise SystemExit(
            f"morec_rule: error: no learning runs under {root / 'learn'}; run scripts/morec_scale.py first"
        )
    choice = apply_rule(root, [int(s) for s in args.seeds.split(",")])
    text = json.dumps(choice, indent=2)
    atomic_write(root / "choice.json", lambda tmp: tmp.write_text(text + "\n"))
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
