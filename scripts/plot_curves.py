"""Learning curves (mean ± std over seeds) straight from TensorBoard event files, one PNG per task.

    python scripts/plot_curves.py runs/d4rl [--tag eval/normalized_score] [--out runs/d4rl/curves]

Expects the suite layout ``<results>/<task>/<variant>/seed<k>/tb``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402


def read_curve(tb_dir: Path, tag: str) -> tuple[np.ndarray, np.ndarray] | None:
    events = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0}).Reload()
    if tag not in events.Tags()["scalars"]:
        return None
    points = {e.step: e.value for e in events.Scalars(tag)}  # a resumed run's later value wins
    steps = np.array(sorted(points))
    return steps, np.array([points[s] for s in steps])


def mean_std(curves: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Curves on their common steps (seeds evaluated at the same gradient steps)."""
    common = sorted(set.intersection(*(set(s.tolist()) for s, _ in curves)))
    values = np.array([[dict(zip(s.tolist(), v))[c] for c in common] for s, v in curves])
    return np.array(common), values.mean(0), values.std(0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("results")
    p.add_argument("--tag", default="eval/normalized_score")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    results = Path(args.results)
    out = Path(args.out or results / "curves")
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    for task_dir in sorted(d for d in results.iterdir() if d.is_dir() and d.name != out.name):
        fig, ax = plt.subplots(figsize=(6, 4))
        plotted = False
        for variant_dir in sorted(d for d in task_dir.iterdir() if d.is_dir()):
            curves = [c for c in (read_curve(tb, args.tag) for tb in sorted(variant_dir.glob("seed*/tb"))) if c is not None]
            if not curves:
                continue
            steps, mean, std = mean_std(curves)
            ax.plot(steps, mean, label=f"{variant_dir.name} ({len(curves)} seed{'' if len(curves) == 1 else 's'})")
            ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
            plotted = True
        if plotted:
            ax.set(title=task_dir.name, xlabel="gradient step", ylabel=args.tag)
            ax.legend()
            fig.tight_layout()
            fig.savefig(out / f"{task_dir.name}.png", dpi=100)
            written += 1
        plt.close(fig)
    print(f"wrote {written} plot(s) to {out}")


if __name__ == "__main__":
    main()
