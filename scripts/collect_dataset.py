"""Collect D4RL-recipe datasets from a gymnasium MuJoCo task; the same as ``morec collect``.

    python scripts/collect_dataset.py --env Hopper-v4 --out data/hopper [--neorl] ...
"""

import sys

from morec.cli import main

if __name__ == "__main__":
    sys.exit(main(["collect", *sys.argv[1:]]))
