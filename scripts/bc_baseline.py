"""Behaviour-cloning baseline on a dataset: normalised score over evaluation episodes (JSON).

python scripts/bc_baseline.py --dataset data/hopper/hopper-medium.hdf5 --task hopper-medium-v2 --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from morec.data import load_dataset, normalized_score  # noqa: E402
from morec.learners.bc import BCConfig, train_bc  # noqa: E402
from morec.tasks import get_task  # noqa: E402
from morec.training.evaluation import evaluate_policy as evaluate  # noqa: E402
from morec.training.evaluation import make_eval_env  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", required=True)
    p.add_argument("--task", required=True, help="task name for the evaluation env and the normaliser")
    p.add_argument("--seeds", default="0")
    p.add_argument("--steps", type=int, default=BCConfig.steps)
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    torch.set_num_threads(1)
    ds = load_dataset(args.dataset, env_id=args.task)
    env_id, layout = get_task(args.task).eval_env_id, ds.metadata["layout"]
    results = []
    for seed in (int(s) for s in args.seeds.split(",")):
        policy, losses = train_bc(
            ds, make_eval_env(env_id, layout).action_space, BCConfig(steps=args.steps), seed, args.device
        )
        returns = evaluate(policy, env_id, layout, args.episodes, seed=seed + 10_000)
        results.append(
            {
                "seed": seed,
                "return_mean": float(returns.mean()),
                "normalized_score": float(normalized_score(args.task, returns).mean()),
                "final_loss": losses[-1],
            }
        )
    scores = np.array([r["normalized_score"] for r in results])
    print(
        json.dumps(
            {
                "dataset": args.dataset,
                "task": args.task,
                "steps": args.steps,
                "runs": results,
                "normalized_score_mean": float(scores.mean()),
                "normalized_score_std": float(scores.std()),
                "dataset_mean_return": float(ds.returns().mean()),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
