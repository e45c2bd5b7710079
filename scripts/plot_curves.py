"""Learning curves (mean ± std over seeds) straight from TensorBoard event files, one PNG per task.

    python scripts/plot_curves.py runs/d4rl [--tag eval/normalized_score] [--out runs/d4rl/curves]

Expects the suite layout ``<results>/<task>/<variant>/seed<k>/tb`` (suites draw these themselves).
"""

import argparse
from pathlib import Path

from morec.suite import write_curves

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("results")
    p.add_argument("--tag", default="eval/normalized_score")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    written = write_curves(Path(args.results), tag=args.tag, out=Path(args.out) if args.out else None)
    print(f"wrote {len(written)} plot(s) to {Path(args.out or Path(args.results) / 'curves')}")
