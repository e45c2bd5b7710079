"""How many training runs should share one device? Aggregate MOBILE gradient steps/s of N
concurrent processes (the way a suite packs runs with --max-parallel or --gpus-per-run), for each N
in --runs. Every process warms up, then all count their steps over the same wall-clock window.
Prints one JSON object.

    python scripts/bench_shared_device.py --device cuda --runs 1,2,4,8 [--seconds 15] [--cuda-graph]

``--cuda-graph``: each process replays its update as a captured CUDA graph (``train.compile`` on CUDA).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch
from tianshou.utils.torch_utils import policy_within_training_step

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_train import data, make, sync  # noqa: E402

from algos import MOBILE, MixedSampler  # noqa: E402

WARMUP_S = 20.0  # every process is set up within this; the common window starts after it


def worker(device: str, start_at: float, seconds: float, cuda_graph: bool) -> None:
    """Count MOBILE updates between ``start_at`` and ``start_at + seconds`` (wall clock)."""
    torch.set_num_threads(1)
    algo = make(MOBILE, device)
    if cuda_graph:
        algo.capture_cuda_graph()
    real, model = data(device)
    sampler = MixedSampler(real, model, 0.05, torch.Generator(device=device).manual_seed(0))
    steps, late = 0, time.time() > start_at  # set-up ran past the window's start
    with policy_within_training_step(algo.policy):
        while time.time() < start_at:  # warm up until the common window opens
            algo.update(sampler, 256)
        sync(device)
        while time.time() < start_at + seconds:
            algo.update(sampler, 256)
            steps += 1
        sync(device)
    print(json.dumps({"steps": steps, "late_start": late}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--runs", default="1,2,4,8", help="comma-separated numbers of concurrent processes")
    p.add_argument("--seconds", type=float, default=15.0, help="the common measuring window")
    p.add_argument("--cuda-graph", action="store_true", help="replay each update as a captured CUDA graph")
    p.add_argument("--worker", nargs=2, type=float, metavar=("START_AT", "SECONDS"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args.device, *args.worker, args.cuda_graph)
        return
    result = {"device": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu",
              "workload": "MOBILE update, 5 elites x 10 samples, batch 256, 256x256 networks, 1 CPU thread per process",
              "cuda_graph": args.cuda_graph, "window_s": args.seconds, "concurrent": {}}
    for n in (int(x) for x in args.runs.split(",")):
        start_at = time.time() + WARMUP_S
        command = [sys.executable, __file__, "--device", args.device, "--worker", str(start_at), str(args.seconds)]
        procs = [subprocess.Popen(command + ["--cuda-graph"] * args.cuda_graph, stdout=subprocess.PIPE, text=True) for _ in range(n)]
        outs = [json.loads(proc.communicate()[0].strip().splitlines()[-1]) for proc in procs]
        per_run = [o["steps"] / args.seconds for o in outs]
        result["concurrent"][n] = {"aggregate_steps_per_s": round(sum(per_run), 1), "per_run_steps_per_s": round(sum(per_run) / n, 1),
                                   "late_starts": sum(o["late_start"] for o in outs)}
    one = result["concurrent"].get(1)
    if one:
        for row in result["concurrent"].values():
            row["aggregate_vs_one_run"] = round(row["aggregate_steps_per_s"] / one["aggregate_steps_per_s"], 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
