"""``morec generalisation``: MOREC's claim measured with the MuJoCo oracle on the datasets of
``morec collect`` (see :mod:`morec.runs.generalisation`).

    morec generalisation --collect-dir data/hopper --levels medium-replay,medium --out runs/generalisation/hopper
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

NAME = "generalisation"
HELP = "MOREC's claim against the MuJoCo oracle: filtered vs unfiltered rollout error on collected datasets"


def _csv(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--collect-dir", required=True, type=Path, help="output directory of morec collect")
    p.add_argument("--levels", default="medium-replay,medium")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--generators", default="fixed,adversarial")
    p.add_argument("--updates", type=int, default=3000)
    p.add_argument("--horizon", type=int, default=100)
    p.add_argument("--starts", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    import torch

    from morec.runs.generalisation import generalisation

    torch.set_num_threads(1)
    results = generalisation(
        args.collect_dir,
        args.out,
        levels=_csv(args.levels),
        generators=_csv(args.generators),
        updates=args.updates,
        horizon=args.horizon,
        starts=args.starts,
        seed=args.seed,
    )
    print(json.dumps(results, indent=2))
    return 0
