"""How much MOBILE's penalty u(s, a) changes when its actor and critic passes run in bfloat16
(``mobile.penalty_dtype: bfloat16``), against how much it changes between two draws of its own
next-state and action samples in float32. Uses a trained run's actor, target critics and dynamics
(a MOPO run works too: the penalty needs nothing else) on dataset rows. Prints one JSON object.

    python scripts/penalty_precision.py RUN_DIR [--rows 2048] [--seed 0] [--device cpu]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import torch
from gymnasium.spaces import Box

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from morec.dynamics import EnsembleDynamics  # noqa: E402
from morec.errors import UserError  # noqa: E402
from morec.runs.suite.worker import read_summary  # noqa: E402
from morec.training.config import load_config  # noqa: E402
from morec.training.factory import build_algorithm  # noqa: E402
from morec.training.pipeline import load_training_dataset  # noqa: E402
from morec.training.run_directory import CHECKPOINT_FILE, CONFIG_FILE  # noqa: E402


def penalties(algo, obs: torch.Tensor, act: torch.Tensor, dtype: str, seed: int) -> torch.Tensor:
    """``u [B]`` with the penalty's passes in ``dtype``, torch's generator seeded with ``seed``."""
    algo.mobile.penalty_dtype = dtype
    torch.manual_seed(seed)
    return algo.bellman_uncertainty(obs, act)


def rank_correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    ranks = [x.argsort().argsort().double() for x in (a, b)]
    return float(torch.corrcoef(torch.stack(ranks))[0, 1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run_dir", help="a `morec train` run directory with config.yaml, checkpoint.pt and summary.json")
    p.add_argument("--rows", type=int, default=2048, help="dataset (s, a) rows to score")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    torch.set_num_threads(1)
    run = Path(args.run_dir)
    summary = read_summary(run)
    if summary is None or not (run / CHECKPOINT_FILE).exists():
        raise SystemExit(f"error: {run} has no summary.json and checkpoint.pt; pass a finished `morec train` run")
    cfg = load_config(run / CONFIG_FILE)
    # as MOBILE (a MOPO run's reward penalty is not used here), eager, on the asked device
    cfg = dataclasses.replace(
        cfg,
        algorithm="mobile",
        device=args.device,
        rollout=dataclasses.replace(cfg.rollout, penalty_coef=0.0),
        train=dataclasses.replace(cfg.train, compile="off"),
    )
    dataset = load_training_dataset(cfg)
    dynamics = EnsembleDynamics.load(summary["models"]["dynamics"], device=args.device).eval()
    algo = build_algorithm(cfg, dataset.obs_dim, dataset.act_dim, Box(-1, 1, (dataset.act_dim,)), dynamics)
    state = torch.load(run / CHECKPOINT_FILE, map_location=args.device, weights_only=False)["algorithm"]
    state.pop(algo._OPTIMIZERS_KEY, None)
    missing, unexpected = algo.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith("dynamics.") for k in missing):
        raise SystemExit(
            f"error: {run}/checkpoint.pt does not hold this learner's networks (missing {missing[:3]}, unexpected "
            f"{unexpected[:3]})"
        )
    rows = torch.randperm(len(dataset.observations), generator=torch.Generator().manual_seed(args.seed))[
        : args.rows
    ].numpy()
    obs = torch.as_tensor(dataset.observations[rows], device=args.device)
    act = torch.as_tensor(dataset.actions[rows], device=args.device)
    u32 = penalties(algo, obs, act, "float32", args.seed)
    u32_redrawn = penalties(algo, obs, act, "float32", args.seed + 1)
    u16 = penalties(algo, obs, act, "bfloat16", args.seed)
    scale = float(u32.abs().mean())
    with torch.no_grad():
        q = algo.critic_target(obs, act).min(0).values
    print(
        json.dumps(
            {
                "run": str(run),
                "rows": len(rows),
                "device": args.device,
                "q_mean": round(float(q.mean()), 3),
                "penalty_u_mean_float32": round(scale, 4),
                "bfloat16": {
                    "mean_abs_change_over_mean_u": round(float((u16 - u32).abs().mean()) / scale, 4),
                    "rank_correlation_with_float32": round(rank_correlation(u16, u32), 4),
                },
                "float32_redrawn_samples": {
                    "mean_abs_change_over_mean_u": round(float((u32_redrawn - u32).abs().mean()) / scale, 4),
                    "rank_correlation_with_float32": round(rank_correlation(u32_redrawn, u32), 4),
                },
                "note": "bfloat16 uses the same seed as the float32 reference; "
                "the redrawn row is the penalty's own Monte Carlo noise",
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    try:
        main()
    except UserError as err:
        raise SystemExit(f"error: {err}") from None
