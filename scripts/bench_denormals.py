"""What denormal floats cost a trained ensemble's rollouts on the CPU; prints one JSON object.

    python scripts/bench_denormals.py --dynamics runs/morec_scale/check/hopper-1000000/dynamics \\
        --dataset runs/morec_scale/data/hopper/hopper-medium.hdf5 [--rows 50000] [--steps 5] [--repeats 2]

The workload is a MOPO rollout's model work: ``--steps`` chained predictions of the whole ensemble
for ``--rows`` dataset states under uniform random actions (the first elite's mean is the next
state). It runs with denormals kept and flushed to zero (``morec.denormals.flush_denormals``, which
training applies), alternating, on one thread, and reports the seconds of each, their ratio, the
model's denormal weights, and whether the predictions of the two modes are bit-identical.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from morec.data import load_dataset  # noqa: E402
from morec.dynamics import EnsembleDynamics  # noqa: E402
from morec.provenance import code_version  # noqa: E402

SMALLEST_NORMAL = torch.finfo(torch.float32).tiny


def chained_predictions(model: EnsembleDynamics, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """``obs [B, O]``, ``actions [T, B, A]`` -> the last prediction ``[E, B, O + 1]``."""
    with torch.no_grad():
        for act in actions:
            mean, _ = model.predict(obs, act)
            obs = mean[0, :, :-1]
    return mean


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dynamics", required=True, help="a trained ensemble's folder (morec train-dynamics --out)")
    p.add_argument("--dataset", required=True, help="its data: the start states")
    p.add_argument("--rows", type=int, default=50_000)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(1)

    model = EnsembleDynamics.load(args.dynamics).eval()
    weights = torch.cat([w.detach().flatten() for w in model.parameters()])
    observations = load_dataset(args.dataset).observations
    rng = np.random.default_rng(0)
    obs = torch.as_tensor(observations[rng.integers(0, len(observations), args.rows)], dtype=torch.float32)
    act_dim = model.input_mean.numel() - obs.shape[1]
    actions = torch.as_tensor(rng.uniform(-1, 1, (args.steps, args.rows, act_dim)), dtype=torch.float32)

    seconds: dict[str, list[float]] = {"kept": [], "flushed": []}
    outputs: dict[str, torch.Tensor] = {}
    for _ in range(args.repeats):
        for mode in seconds:
            torch.set_flush_denormal(mode == "flushed")
            start = time.perf_counter()
            outputs[mode] = chained_predictions(model, obs, actions)
            seconds[mode].append(time.perf_counter() - start)
    torch.set_flush_denormal(False)
    kept, flushed = min(seconds["kept"]), min(seconds["flushed"])
    report = {
        "dynamics": str(Path(args.dynamics).resolve()),
        "workload": f"{args.steps} chained predictions of {args.rows:,} rows",
        "weights": int(weights.numel()),
        "denormal_weights": int(((weights != 0) & (weights.abs() < SMALLEST_NORMAL)).sum()),
        "seconds_kept": round(kept, 4),
        "seconds_flushed": round(flushed, 4),
        "kept_vs_flushed": round(kept / flushed, 2),
        "bit_identical": bool(torch.equal(outputs["kept"], outputs["flushed"])),
        "repeats": args.repeats,
        "threads": 1,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "commit": code_version(),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
