"""How many training runs should share one device? Aggregate MOBILE gradient steps/s of N
concurrent processes (the way a suite packs runs with --max-parallel or --gpus-per-run), for each N
in --runs. Every process warms up, then all count their steps over the same wall-clock window.
Prints one JSON object.

    python scripts/bench_shared_device.py --device cuda --runs 1,2,4,8 [--seconds 15] [--cuda-graph] [--in-process]

``--cuda-graph``: each learner replays its update as a captured CUDA graph (``train.compile`` on CUDA).
``--in-process``: also N learners in one process, stepped in lockstep, each with its own random
state (what ``morec train --seeds`` does), beside the N processes (``in_process``).
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

from morec.learners import MOBILE, MixedSampler  # noqa: E402
from morec.training.seeds import RunScope  # noqa: E402

WARMUP_S = 25.0  # every process is set up within this; the common window starts after it


def worker(device: str, start_at: float, seconds: float, cuda_graph: bool, learners: int) -> None:
    """Count the MOBILE updates of ``learners`` learners (in lockstep, each in its own
    :class:`RunScope`) between ``start_at`` and ``start_at + seconds`` (wall clock)."""
    torch.set_num_threads(1)
    real, model = data(device)
    runs = []
    for i in range(learners):
        algo = make(MOBILE, device)
        if cuda_graph:
            algo.capture_cuda_graph()
        sampler = MixedSampler(real, model, 0.05, torch.Generator(device=device).manual_seed(i))
        runs.append((algo, sampler, RunScope(device)))

    def one_round() -> None:
        for algo, sampler, scope in runs:
            with scope.entered(), policy_within_training_step(algo.policy):
                algo.update(sampler, 256)

    steps, late = 0, time.time() > start_at  # set-up ran past the window's start
    while time.time() < start_at:  # warm up until the common window opens
        one_round()
    sync(device)
    while time.time() < start_at + seconds:
        one_round()
        steps += learners
    sync(device)
    print(json.dumps({"steps": steps, "late_start": late}))


def concurrent(args, processes: int, learners: int) -> dict:
    """``processes`` workers of ``learners`` learners each, counted over one common window."""
    start_at = time.time() + WARMUP_S
    command = [
        sys.executable,
        __file__,
        "--device",
        args.device,
        "--worker",
        str(start_at),
        str(args.seconds),
        "--learners",
        str(learners),
    ]
    procs = [
        subprocess.Popen(command + ["--cuda-graph"] * args.cuda_graph, stdout=subprocess.PIPE, text=True)
        for _ in range(processes)
    ]
    outs = [json.loads(proc.communicate()[0].strip().splitlines()[-1]) for proc in procs]
    total = sum(o["steps"] for o in outs) / args.seconds
    runs = processes * learners
    return {
        "aggregate_steps_per_s": round(total, 1),
        "per_run_steps_per_s": round(total / runs, 1),
        "late_starts": sum(o["late_start"] for o in outs),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--runs", default="1,2,4,8", help="comma-separated numbers of concurrent processes")
    p.add_argument("--seconds", type=float, default=15.0, help="the common measuring window")
    p.add_argument("--cuda-graph", action="store_true", help="replay each update as a captured CUDA graph")
    p.add_argument("--in-process", action="store_true", help="also N learners in one process (morec train --seeds)")
    p.add_argument("--worker", nargs=2, type=float, metavar=("START_AT", "SECONDS"), help=argparse.SUPPRESS)
    p.add_argument("--learners", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args.device, *args.worker, args.cuda_graph, args.learners)
        return
    result = {
        "device": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu",
        "workload": "MOBILE update, 5 elites x 10 samples, batch 256, 256x256 networks, 1 CPU thread per process",
        "cuda_graph": args.cuda_graph,
        "window_s": args.seconds,
        "concurrent": {},
    }
    counts = [int(x) for x in args.runs.split(",")]
    result["concurrent"] = {n: concurrent(args, n, 1) for n in counts}
    if args.in_process:
        result["in_process"] = {n: concurrent(args, 1, n) for n in counts}
    one = result["concurrent"].get(1)
    if one:
        for mode in ("concurrent", "in_process"):
            for row in result.get(mode, {}).values():
                row["aggregate_vs_one_run"] = round(row["aggregate_steps_per_s"] / one["aggregate_steps_per_s"], 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
