"""A suite's results: one table (mean ± std over seeds of the last, last-10 mean and best
normalised scores, markdown and CSV) with every failed run listed under it and every unfinished
one with how far it has got (its TensorBoard scores), written again as each run finishes, and
learning-curve PNGs (mean ± std over seeds) read from the runs' TensorBoard files."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np

from morec.io import atomic_write
from morec.runs.suite.plan import RunSpec
from morec.runs.suite.worker import RunOutcome, read_summary
from morec.training.run_directory import SUMMARY_FILE


def _mean_std(values: list[float]) -> str:
    return f"{np.mean(values):.1f} ± {np.std(values):.1f}"


def _rollout_mean(summaries: list[dict], key: str, fmt: str) -> str:
    """``fmt`` of the mean over runs of ``summary["rollouts"][key]``; "-" where no run recorded it."""
    values = [s["rollouts"][key] for s in summaries if (s.get("rollouts") or {}).get(key) is not None]
    return fmt.format(np.mean(values)) if values else "-"


def _wall_per_1k_steps(summaries: list[dict]) -> str:
    """Mean over runs of wall seconds per 1,000 gradient steps; "-" where no run recorded both."""
    values = [
        1000 * s["wall_seconds"] / s["gradient_steps"]
        for s in summaries
        if s.get("wall_seconds") is not None and s.get("gradient_steps")
    ]
    return f"{np.mean(values):.1f}" if values else "-"


def code_of(summaries: list[dict]) -> str:
    """The code versions the runs' epochs ran on, in order of first use ("unrecorded" for runs or
    stretches of older morec)."""
    codes = [v["code"] for s in summaries for v in s.get("code_versions") or [{"code": "unrecorded"}]]
    return " ".join(dict.fromkeys(codes))


def progress_of(run_dir: Path, tag: str = "eval/normalized_score") -> str:
    """How far an unfinished run has got, from its TensorBoard file: ``" (partial: 153 evaluations,
    step 153,000; last 6.0, last10 5.1, best 29.0)"``; empty before its first evaluation."""
    curve = read_curve(run_dir / "tb", tag) if (run_dir / "tb").is_dir() else None
    if curve is None or not len(curve[0]):
        return ""
    steps, scores = curve
    return (
        f" (partial: {len(scores)} evaluations, step {int(steps[-1]):,}; last {scores[-1]:.1f}, "
        f"last10 {np.mean(scores[-10:]):.1f}, best {np.max(scores):.1f})"
    )


def write_rows(rows: list[dict], header: list[str], csv_path: Path) -> str:
    """Write ``rows`` to ``csv_path`` (atomically); return them as a markdown table."""

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=header)
            writer.writeheader()
            writer.writerows(rows)

    atomic_write(csv_path, write)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(r[h]) for h in header) + " |" for r in rows]
    return "\n".join(lines)


def write_table(runs: list[RunSpec], results: Path, failures: list[RunOutcome] = (), echo: bool = True) -> list[dict]:
    """``results/table.md`` and ``results/table.csv`` (each written atomically: a reader never sees
    half a table); prints the markdown if ``echo``; returns the rows."""
    summaries_of = {run: read_summary(run.run_dir(results)) for run in runs}  # None: not finished
    groups: dict[tuple[str, str], list[dict]] = {}
    for run, summary in summaries_of.items():
        if summary is not None:
            groups.setdefault((run.task, run.variant), []).append(summary)
    rows = [
        {
            "task": task,
            "variant": variant,
            "seeds": len(summaries),
            "last": _mean_std([s["last_score"] for s in summaries]),
            "last10": _mean_std([s["last10_mean_score"] for s in summaries]),
            "best": _mean_std([s["best_score"] for s in summaries]),
            "dataset_return": f"{np.mean([s['dataset_mean_return'] for s in summaries]):.1f}",
            "rollout_length": _rollout_mean(summaries, "mean_length", "{:.1f}"),
            "truncated": _rollout_mean(summaries, "truncation_rate", "{:.3f}"),
            "model_buffer": _rollout_mean(summaries, "model_buffer_size", "{:.0f}"),
            "wall_s_per_1k_steps": _wall_per_1k_steps(summaries),
            "code": code_of(summaries),
        }
        for (task, variant), summaries in sorted(groups.items())
    ]
    header = [
        "task",
        "variant",
        "seeds",
        "last",
        "last10",
        "best",
        "dataset_return",
        "rollout_length",
        "truncated",
        "model_buffer",
        "wall_s_per_1k_steps",
        "code",
    ]
    lines = [write_rows(rows, header, results / "table.csv")]
    lines.append(
        "\nNormalised scores, mean ± std over seeds (`last`: final evaluation; `last10`: mean of the last 10). "
        "Means over seeds of each run's model rollouts: `rollout_length` (transitions per start state), "
        "`truncated` (fraction of rollouts the filter cut), `model_buffer` (model transitions held at the end). "
        "`wall_s_per_1k_steps`: a run's wall time (rollouts, updates, evaluations; every session of a resumed "
        "run) per 1,000 gradient steps, mean over seeds. `code`: the commits the runs' epochs ran on."
    )
    failed = {o.run for o in failures}
    if failures:
        lines.append(f"\n## Failed runs ({len(failures)})\n")
        for o in failures:
            lines += [
                f"### {o.run.label} ({o.attempts} attempt{'s' if o.attempts > 1 else ''})",
                "```",
                o.error or "",
                "```",
            ]
    missing = [r for r in runs if r not in failed and summaries_of[r] is None]
    if missing:
        lines.append(f"\n## Not finished ({len(missing)})\n")
        lines += [f"- {r.label}: {r.run_dir(results)}{progress_of(r.run_dir(results))}" for r in missing]
    text = "\n".join(lines) + "\n"
    atomic_write(results / "table.md", lambda tmp: tmp.write_text(text))
    if echo:
        print(text, end="")
    return rows


def read_curve(tb_dir: Path, tag: str) -> tuple[np.ndarray, np.ndarray] | None:
    from tensorboard.backend.event_processing import event_accumulator

    # a resumed run's log purges the events after its checkpoint; the reader warns of that each time
    reader_log, level = event_accumulator.logger, event_accumulator.logger.level
    reader_log.setLevel(logging.ERROR)
    try:
        events = event_accumulator.EventAccumulator(str(tb_dir), size_guidance={"scalars": 0}).Reload()
    finally:
        reader_log.setLevel(level)
    if tag not in events.Tags()["scalars"]:
        return None
    points = {e.step: e.value for e in events.Scalars(tag)}  # a resumed run's later value wins
    steps = np.array(sorted(points))
    return steps, np.array([points[s] for s in steps])


def mean_std_curve(curves: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(steps, mean, std)`` over the steps every curve has (seeds evaluate at the same steps)."""
    common = sorted(set.intersection(*(set(s.tolist()) for s, _ in curves)))
    values = np.array([[dict(zip(s.tolist(), v))[c] for c in common] for s, v in curves])
    return np.array(common), values.mean(0), values.std(0)


def variant_curve(variant_dir: Path, tag: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int, bool] | None:
    """``(steps, mean, std, seeds averaged, seeds left out, partial)`` of ``tag`` over
    ``variant_dir/seed*/tb``, or ``None`` without any. A seed still running has not reached the
    others' last step: averaging it in would cut every seed's curve to its length, so it is left out
    (and counted). ``partial``: the seeds averaged have not finished either (no ``summary.json``)."""
    curves = {tb.parent: read_curve(tb, tag) for tb in sorted(variant_dir.glob("seed*/tb"))}
    curves = {run: c for run, c in curves.items() if c is not None and len(c[0])}
    if not curves:
        return None
    last = max(steps[-1] for steps, _ in curves.values())
    averaged = {run: c for run, c in curves.items() if c[0][-1] == last}
    partial = any(not (run / SUMMARY_FILE).exists() for run in averaged)
    return (*mean_std_curve(list(averaged.values())), len(averaged), len(curves) - len(averaged), partial)


def variant_dirs(task_dir: Path) -> list[Path]:
    """The folders under ``task_dir`` that hold runs (``seed*/tb``), sorted, at any depth: a variant
    may be a path (``paper/mopo_morec``). A run's own folder is not searched further."""
    found, todo = [], [task_dir] if task_dir.is_dir() else []
    while todo:
        folder = todo.pop()
        subfolders = [d for d in folder.iterdir() if d.is_dir()]
        if folder != task_dir and any(d.name.startswith("seed") and (d / "tb").is_dir() for d in subfolders):
            found.append(folder)
        todo += [d for d in subfolders if not d.name.startswith("seed")]
    return sorted(found)


def write_curves(
    results: Path | list[Path],
    tasks: list[str] | None = None,
    tag: str = "eval/normalized_score",
    out: Path | None = None,
    labels: list[str] | None = None,
) -> list[Path]:
    """One PNG per task under ``out`` (default ``<first results>/curves``) from
    ``<results>/<task>/<variant>/seed*/tb``. Several results roots (a study and its ablations) share
    each task's plot; ``labels`` names them in the legend (default: their folder paths)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    roots = [Path(r) for r in (results if isinstance(results, list) else [results])]
    if labels is not None and len(labels) != len(roots):
        raise ValueError(f"{len(labels)} labels for {len(roots)} results folders: give one label per folder")
    names = labels if labels is not None else [str(r) for r in roots]
    out = Path(out or roots[0] / "curves")
    task_names = (
        list(dict.fromkeys(tasks))
        if tasks
        else sorted({d.name for r in roots if r.is_dir() for d in r.iterdir() if d.is_dir()})
    )
    written = []
    for task in task_names:
        fig, ax = plt.subplots(figsize=(6, 4))
        for root, name in zip(roots, names):
            task_dir = root / task
            for variant_dir in variant_dirs(task_dir):
                curve = variant_curve(variant_dir, tag)
                if curve is None:
                    continue
                steps, mean, std, averaged, left_out, partial = curve
                prefix = f"{name}: " if len(roots) > 1 else ""
                variant = variant_dir.relative_to(task_dir).as_posix()  # paper/mopo_morec: a path
                ax.plot(
                    steps,
                    mean,
                    label=f"{prefix}{variant} ({averaged} seed{'' if averaged == 1 else 's'}"
                    f"{', partial' if partial else ''}{f', {left_out} still running left out' if left_out else ''})",
                )
                ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
        if ax.lines:
            ax.set(title=task, xlabel="gradient step", ylabel=tag)
            ax.legend(fontsize="small")
            fig.tight_layout()
            out.mkdir(parents=True, exist_ok=True)
            fig.savefig(out / f"{task}.png", dpi=100)
            written.append(out / f"{task}.png")
        plt.close(fig)
    return written
