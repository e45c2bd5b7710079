"""How well does each return decomposer recover per-step rewards from episodic returns?

For each D4RL-format file (e.g. from ``morec collect``): take the episodic view (each episode's
return on its last step), hold out a fraction of whole episodes, fit IRCR, RD, RRD, RRD with bias
correction, LaRe on the **hand-written** factors of the robot and LaRe on identity factors on the
rest, and compare the relabelled per-step rewards with the true ones (Pearson and Spearman):

- ``all``: ``relabel`` of the whole episodic dataset (IRCR uses every episode's own return there;
  the learned decomposers predict from ``(s, a)`` and never saw the held-out episodes);
- ``heldout``: ``predict`` on the held-out episodes' steps, no return used (IRCR: nearest fitted step).

Prints one JSON object.

    python scripts/credit_correlation.py /tmp/cdefault/hopper-medium.hdf5 /tmp/hc/halfcheetah-medium.hdf5
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from morec.credit import (
    IRCR,
    IdentityFactors,
    LaReConfig,
    LatentRewardDecoder,
    RandomizedReturnDecomposition,
    RDConfig,
    ReturnDecomposition,
    RRDConfig,
    episodic,
    hand_written_factors,
    split_episodes,
)
from morec.credit.factors import HAND_WRITTEN_FACTORS
from morec.data import load_dataset


def ranks(x: np.ndarray) -> np.ndarray:
    """Ranks ``[N]`` with ties given their average rank."""
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return ((ends - (counts - 1) / 2.0) - 1.0)[inverse]


def pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.std() == 0 or y.std() == 0:
        return None  # undefined for a constant prediction
    return float(np.corrcoef(x, y)[0, 1])


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    return pearson(ranks(x), ranks(y))


def decomposers(domain: str | None, args: argparse.Namespace) -> dict:
    """Name -> unfitted decomposer, all with the same budget."""
    base = {"updates": args.updates, "hidden_sizes": tuple(args.hidden), "lr": args.lr, "batch_size": args.batch_size}
    rrd = {**base, "subset_size": args.subset_size}
    out = {
        "ircr": IRCR(device=args.device),
        "rd": ReturnDecomposition(RDConfig(**base), args.device),
        "rrd": RandomizedReturnDecomposition(RRDConfig(**rrd, bias_correction=False), args.device),
        "rrd-unbiased": RandomizedReturnDecomposition(RRDConfig(**rrd, bias_correction=True), args.device),
    }
    if domain in HAND_WRITTEN_FACTORS:
        out["lare+hand-written"] = LatentRewardDecoder(hand_written_factors(domain), LaReConfig(**rrd), args.device)
    out["lare+identity"] = LatentRewardDecoder(IdentityFactors(), LaReConfig(**rrd), args.device)
    return out


def evaluate(path: str, args: argparse.Namespace) -> dict:
    data = episodic(load_dataset(path, download=False))
    train, held = split_episodes(data, args.holdout, args.seed)
    true_all, true_held = data.infos["true_rewards"], held.infos["true_rewards"]
    result = {
        "domain": data.domain,
        "transitions": len(data),
        "episodes": data.metadata["episodic_rewards"]["episodes"],
        "train_episodes": len(train.episode_ends()),
        "heldout_episodes": len(held.episode_ends()),
        "methods": {},
    }
    if data.domain not in HAND_WRITTEN_FACTORS:
        result["note"] = f"no hand-written factors for domain {data.domain!r}; lare+hand-written skipped"
    for name, model in decomposers(data.domain, args).items():
        start = time.perf_counter()
        report = model.fit(train, seed=args.seed, show_progress=args.progress)
        fit_seconds = time.perf_counter() - start
        r_all = model.relabel(data).rewards
        r_held = model.predict(held.observations, held.actions)
        result["methods"][name] = {
            "pearson_all": pearson(r_all, true_all),
            "spearman_all": spearman(r_all, true_all),
            "pearson_heldout": pearson(r_held, true_held),
            "spearman_heldout": spearman(r_held, true_held),
            "fit_seconds": round(fit_seconds, 2),
            "final_loss": report.final_loss,
            "encoder": report.encoder,
            "encoder_source": report.encoder_source,
        }
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("paths", nargs="+", help="D4RL-format hdf5 files (e.g. written by `morec collect`)")
    p.add_argument("--updates", type=int, default=2000, help="gradient steps per learned decomposer")
    p.add_argument("--hidden", type=int, nargs="+", default=[256, 256], help="reward network hidden widths")
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--batch-size", type=int, default=256, help="target steps per update")
    p.add_argument("--subset-size", type=int, default=64, help="RRD/LaRe steps sampled per episode (K)")
    p.add_argument("--holdout", type=float, default=0.2, help="fraction of whole episodes held out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--progress", action="store_true", help="show tqdm progress bars (stderr)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    torch.set_num_threads(1)
    args = parse_args(argv)
    config = {k: v for k, v in vars(args).items() if k not in ("paths", "progress")}
    out = {"config": config, "datasets": {path: evaluate(path, args) for path in args.paths}}
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
