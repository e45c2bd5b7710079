"""Dataset recording throughput of ``morec collect``: prints one JSON object.

    python scripts/bench_collect.py [--env Hopper-v4] [--steps 20000] [--envs 1,4,16,64] [--rounds 3]

A behaviour policy (an untrained 256x256 SAC actor, sampling as ``collect`` does) recorded for
``--steps`` transitions with ``N`` envs side by side (:func:`morec.collect.envs.record_episodes_batched`:
one batched policy call per step), for each ``N`` in ``--envs``, in alternating rounds on one
torch thread. ``speedup_vs_1`` is each ``N``'s median rate over the one-env rate.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from morec.collect.behaviour import build_sac  # noqa: E402
from morec.collect.config import SACConfig  # noqa: E402
from morec.collect.envs import make_env, record_episodes_batched  # noqa: E402
from morec.collect.episodes import policy_batch_act_fn  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="Hopper-v4")
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--envs", default="1,4,16,64", help="comma-separated numbers of envs side by side")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    counts = [int(x) for x in args.envs.split(",")]
    envs = {n: [make_env(args.env, i) for i in range(n)] for n in counts}
    probe = envs[counts[0]][0]
    act = policy_batch_act_fn(
        build_sac(probe.observation_space.shape[0], probe.action_space, SACConfig(hidden_size=256), "cpu").policy,
        deterministic=False,
    )
    rates: dict[int, list[float]] = {n: [] for n in counts}
    for _ in range(args.rounds):
        for n in counts:
            start = time.perf_counter()
            record_episodes_batched(envs[n], act, args.steps, seed=0)
            rates[n].append(args.steps / (time.perf_counter() - start))
    median = {n: statistics.median(r) for n, r in rates.items()}
    report = {
        "env": args.env,
        "steps": args.steps,
        "rounds": args.rounds,
        "torch_threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "steps_per_s": {str(n): round(median[n], 1) for n in counts},
        "steps_per_s_all_rounds": {str(n): [round(r, 1) for r in rates[n]] for n in counts},
        "seconds_per_million": {str(n): round(1e6 / median[n], 1) for n in counts},
        "speedup_vs_1": {str(n): round(median[n] / median[1], 2) for n in counts} if 1 in median else None,
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
