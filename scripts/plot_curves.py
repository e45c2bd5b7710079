"""Learning curves (mean ± std over seeds) straight from TensorBoard event files, one PNG per task.

    python scripts/plot_curves.py runs/d4rl [--tag eval/normalized_score] [--out runs/d4rl/curves]
    python scripts/plot_curves.py runs/study runs/study-ablation --labels main,ablation --out docs/figures

Expects the suite layout ``<results>/<task>/<variant>/seed<k>/tb`` (suites draw these themselves).
Several results folders share each task's plot, their variants named by ``--labels``.
"""

import argparse
from pathlib import Path

from morec.runs.suite import write_curves

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("results", nargs="+")
    p.add_argument("--tag", default="eval/normalized_score")
    p.add_argument("--out", default=None)
    p.add_argument("--labels", default=None, help="comma-separated, one per results folder")
    args = p.parse_args()
    labels = args.labels.split(",") if args.labels else None
    roots = [Path(r) for r in args.results]
    try:
        written = write_curves(roots, tag=args.tag, out=Path(args.out) if args.out else None, labels=labels)
    except ValueError as err:  # labels that do not match the folders
        p.error(f"--labels: {err}")
    print(f"wrote {len(written)} plot(s) to {Path(args.out or roots[0] / 'curves')}")
