"""The same smoke suite (2 tasks x 2 seeds of MOPO by default) on the local pool and on a local
Ray instance, side by side in one process, plus Ray's start-up cost on its own (``ray.init``, one
empty task, ``ray.shutdown``). Prints one JSON object.

    python scripts/bench_suite.py [--variants mopo] [--seeds 0,1] [--max-parallel 2]

Datasets: random-action hopper and halfcheetah recordings (official D4RL file names) unless
--d4rl-dir points at real ones.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from morec.collect.envs import make_env, record_episodes_batched
from morec.collect.recipe import log_to_dataset, uniform_actions
from morec.data.sources import d4rl_file_name
from morec.runs.suite import SuiteConfig, run_suite

TASKS = {"hopper-medium-v2": "Hopper-v4", "halfcheetah-medium-v2": "HalfCheetah-v4"}


def write_random_datasets(folder: Path, steps: int) -> None:
    for seed, (task, env_id) in enumerate(TASKS.items()):
        env = make_env(env_id, seed)
        log = record_episodes_batched(
            [env], uniform_actions(env.action_space, np.random.default_rng(seed)), steps, seed=seed
        )
        log_to_dataset(log.arrays(), env_id, "d4rl", {"source": "bench_suite"}).save(folder / d4rl_file_name(task))


def ray_startup_seconds() -> dict[str, float]:
    import ray

    start = time.perf_counter()
    ray.init(include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    up = time.perf_counter()
    ray.get(ray.remote(lambda: None).remote())
    first_task = time.perf_counter()
    ray.shutdown()
    return {
        "init_s": round(up - start, 2),
        "first_task_s": round(first_task - up, 2),
        "shutdown_s": round(time.perf_counter() - first_task, 2),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--variants", default="mopo")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--max-parallel", type=int, default=2)
    p.add_argument("--steps", type=int, default=1500, help="transitions per random dataset")
    p.add_argument("--d4rl-dir", default=None)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = Path(args.d4rl_dir) if args.d4rl_dir else tmp / "d4rl"
        if not args.d4rl_dir:
            data.mkdir()
            write_random_datasets(data, args.steps)
        os.environ["D4RL_DATASET_DIR"] = str(data)
        out = {
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
            "ray_startup": ray_startup_seconds(),
        }
        for backend in ("pool", "ray"):
            cfg = SuiteConfig(
                "d4rl",
                list(TASKS),
                args.variants.split(","),
                [int(s) for s in args.seeds.split(",")],
                results=tmp / backend,
                smoke=True,
                env={"D4RL_DATASET_DIR": str(data)},
            )
            start = time.perf_counter()
            failed = run_suite(cfg, backend=backend, max_parallel=args.max_parallel)
            record = json.loads((tmp / backend / "suite.json").read_text())
            out[backend] = {
                "wall_s": round(time.perf_counter() - start, 2),
                "backend_startup_s": record["startup_seconds"],
                "runs": record["ran"],
                "failed": failed,
                "mean_run_s": round(float(np.mean([o["seconds"] for o in record["outcomes"]])), 2),
            }
        out["ray_over_pool_wall"] = round(out["ray"]["wall_s"] / out["pool"]["wall_s"], 3)
        out["same_table"] = (tmp / "pool" / "table.md").read_text() == (tmp / "ray" / "table.md").read_text()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
