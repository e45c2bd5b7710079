"""Rollout-engine and dynamics-training throughput; prints one JSON object.

    python scripts/bench_rollout.py [--device cpu|cuda] [--threads 1] [--quick]

Workloads (Hopper sizes: obs 11, act 3; the published 7 x 4 x 200 ensemble, untrained weights,
no termination so every row runs the full horizon):

- ``mopo_b50000_h5``: 50,000 start states x 5 steps, one sample per elite (MOPO/MOBILE);
- ``morec_b2000_h100_k10``: 2,000 start states x 100 steps, 10 candidates per row (5 elites x 2);
- ``kit_style_*``: the same MOPO workload stepped the way OfflineRL-Kit does it (ensemble on the
  device, then noise, elite choice and termination in numpy on the host every step), side by side
  for a ratio;
- ``morec_filtered_b2000_h100_k10``: the MOREC workload with the dynamics-reward filter selecting
  (10 discriminator snapshots, threshold 0 so no row is truncated);
- ``morec_filtered_bfloat16_b2000_h100_k10``: the same, r_D scored in bfloat16
  (``filter.score_dtype: bfloat16``);
- ``morec_distilled_b2000_h100_k10``: the same with a distilled reward (one network of the
  ``morec distil-reward`` default size); ``filtered_cost_vs_unfiltered`` gives each as the time per
  transition relative to the unfiltered MOREC workload (the budget: at most 2);
- ``reward_d``: one rollout step's scoring, 10 snapshots x 10 candidates x 2,000 states: as the
  filter scores (one snapshot at a time, in row blocks on the CPU), over all rows at once
  (``whole_rows``, before row blocks), as one batched pass over the stacked snapshots (before
  that), and in bfloat16;
- ``dynamics_prediction_ms``: one rollout step's prediction by the elites for 2,000 and 50,000
  states, in row blocks (as rollouts run on the CPU) and over all rows at once (``whole_rows``);
- ``dynamics_epoch_seconds_100k``: one training epoch on 100,000 transitions;
- ``dynamics_layer_gflops``: GFLOP/s of one hidden layer's batched products in dynamics training
  (forward, weight gradient, input gradient) and of one plain matrix product of the same size.
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

from morec import ModelBuffer, RolloutConfig, RolloutEngine  # noqa: E402
from morec.allocator import keep_freed_memory  # noqa: E402
from morec.denormals import flush_denormals  # noqa: E402
from morec.dynamics import EnsembleConfig, EnsembleDynamics, TaskInfo, fit_ensemble  # noqa: E402
from morec.dynamics_reward.config import DistillationConfig  # noqa: E402
from morec.dynamics_reward.filter import MorecFilterConfig, MorecSelector  # noqa: E402
from morec.dynamics_reward.model import Discriminator, DynamicsReward, DynamicsRewardConfig  # noqa: E402

OBS, ACT = 11, 3


def actor(device) -> torch.nn.Module:
    """A SAC-sized deterministic actor (256 x 256, tanh)."""
    net = torch.nn.Sequential(
        torch.nn.Linear(OBS, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, ACT),
        torch.nn.Tanh(),
    ).to(device)
    return net.eval()


def never(obs, act, next_obs):
    return torch.zeros(len(obs), dtype=torch.bool, device=obs.device)


def sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def reward_with_snapshots(num: int, device, hidden_sizes: tuple[int, ...] | None = None) -> DynamicsReward:
    cfg = DynamicsRewardConfig() if hidden_sizes is None else DynamicsRewardConfig(hidden_sizes=hidden_sizes)
    base = DynamicsReward(OBS, ACT, cfg).to(device)
    gen = torch.Generator().manual_seed(0)
    states = [Discriminator(1, base.in_features, cfg.hidden_sizes, gen).state_dict() for _ in range(num)]
    return base.with_snapshots(states, [1.0] * num, [-1.0] * num).eval()


def time_reward(
    reward: DynamicsReward, states: int, candidates: int, device, repeats: int, batched=False, whole_rows=False
) -> float:
    """Seconds for one rollout step's r_D from its features (built once, outside the timing);
    ``batched``: the stacked snapshots' logits in one batched pass instead of one snapshot at a
    time (the same numbers to float rounding); ``whole_rows``: one snapshot at a time over all rows
    at once instead of in row blocks (:mod:`morec.row_blocks`)."""
    obs, act = torch.randn(states, OBS, device=device), torch.randn(states, ACT, device=device)
    cands = torch.randn(candidates, states, OBS, device=device)
    features = reward.features(obs.expand(candidates, -1, -1), act.expand(candidates, -1, -1), cands)
    features = features.reshape(-1, reward.in_features)

    def score():
        if batched:
            return torch.sigmoid(reward.calibrated(reward.snapshots(features))).mean(0)
        if whole_rows:
            logits = reward.snapshots.member_logits(features, reward.score_dtype, block_rows=len(features))
            return torch.sigmoid(reward.calibrated(logits)).mean(0)
        return reward.probability(features)

    best = float("inf")
    with torch.no_grad():
        score()
        for _ in range(repeats):
            sync(device)
            t0 = time.perf_counter()
            score()
            sync(device)
            best = min(best, time.perf_counter() - t0)
    return best


def time_engine(model, policy, batch: int, horizon: int, samples: int, device, repeats: int, selector=None) -> float:
    engine = RolloutEngine(
        model, never, RolloutConfig(horizon=horizon, samples_per_member=samples), selector=selector, seed=0
    )
    starts = torch.randn(batch, OBS, device=device)
    buf = ModelBuffer(batch * horizon, OBS, ACT, device)
    with torch.no_grad():
        engine.rollout(starts[: min(batch, 256)], policy, buf)  # warm-up
        sync(device)
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            stats = engine.rollout(starts, policy, buf)
            sync(device)
            best = min(best, time.perf_counter() - t0)
    return stats.transitions / best


def time_prediction(model: EnsembleDynamics, rows: int, device, repeats: int, whole_rows=False) -> float:
    """Seconds for one rollout step's prediction by the elites for ``rows`` states (no autograd):
    in row blocks (:mod:`morec.row_blocks`, on the CPU) or, with ``whole_rows``, all rows at once."""
    obs, act = torch.randn(rows, OBS, device=device), torch.rand(rows, ACT, device=device) * 2 - 1
    block_rows = rows if whole_rows else None
    best = float("inf")
    with torch.no_grad():
        for _ in range(repeats + 1):
            sync(device)
            t0 = time.perf_counter()
            model.forward_normalised(model.normalise(obs, act), model.elites, block_rows=block_rows)
            sync(device)
            best = min(best, time.perf_counter() - t0)
    return best


def time_kit_style(model, policy, batch: int, horizon: int, device, repeats: int) -> float:
    """Per step: ensemble forward on the device, then numpy on the host (OfflineRL-Kit's step)."""
    rng = np.random.default_rng(0)
    elites = model.elites.cpu().numpy()
    starts = torch.randn(batch, OBS, device=device)
    best = float("inf")
    with torch.no_grad():
        for _ in range(repeats):
            t0 = time.perf_counter()
            obs, written = starts, 0
            for _ in range(horizon):
                act = policy(obs)
                mean, logvar = model.predict(obs, act)
                mean, std = mean.cpu().numpy(), np.exp(0.5 * logvar.cpu().numpy())
                samples = mean + rng.normal(size=mean.shape) * std
                pick = elites[rng.integers(len(elites), size=len(obs))]
                chosen = samples[pick, np.arange(len(obs))]
                done = ~np.isfinite(chosen).all(1)
                written += len(obs)
                obs = torch.as_tensor(chosen[~done, :-1], dtype=torch.float32, device=device)
            sync(device)
            best = min(best, time.perf_counter() - t0)
    return written / best


def time_training_epoch(device, n: int) -> float:
    rng = np.random.default_rng(0)

    class Data:
        observations = rng.normal(size=(n, OBS)).astype(np.float32)
        actions = rng.uniform(-1, 1, size=(n, ACT)).astype(np.float32)
        next_observations = observations + 0.01 * rng.normal(size=(n, OBS)).astype(np.float32)
        rewards = rng.normal(size=n).astype(np.float32)

    model = EnsembleDynamics(TaskInfo(OBS, ACT), EnsembleConfig(max_epochs=2), device=device)
    report = fit_ensemble(model, Data, show_progress=False)
    return report.seconds / report.epochs


def layer_product_rates(device, repeats: int = 200) -> dict[str, float]:
    """GFLOP/s of one hidden layer's product of the 7-member ensemble in dynamics training (7 x 256
    rows x 200 x 200, as a batched product: forward, weight gradient, input gradient) against one
    plain matrix product of the same size: how close the ensemble's training runs to the rate the
    core reaches at all."""
    x, w = torch.randn(7, 256, 200, device=device), torch.randn(7, 200, 200, device=device)
    flops = 2 * 7 * 256 * 200 * 200
    products = {
        "forward": lambda: torch.bmm(x, w),
        "weight_gradient": lambda: torch.bmm(x.transpose(1, 2), x),
        "input_gradient": lambda: torch.bmm(x, w.transpose(1, 2)),
        "one_plain_product": lambda: torch.mm(x.reshape(-1, 200), w[0]),
    }
    rates = {}
    for name, product in products.items():
        for _ in range(10):
            product()
        sync(device)
        t0 = time.perf_counter()
        for _ in range(repeats):
            product()
        sync(device)
        rates[name] = round(flops * repeats / (time.perf_counter() - t0) / 1e9, 1)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="10x smaller workloads (a smoke run)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    keep_freed_memory()  # as `morec train` does
    flush_denormals()  # as training does
    scale = 10 if args.quick else 1
    model = EnsembleDynamics(TaskInfo(OBS, ACT), EnsembleConfig(), seed=0, device=args.device).eval()
    policy = actor(args.device)
    mopo_b = 50_000 // scale
    ours = time_engine(model, policy, mopo_b, 5, 1, args.device, args.repeats)
    kit = time_kit_style(model, policy, mopo_b, 5, args.device, args.repeats)
    reward = reward_with_snapshots(10, args.device)
    selector = MorecSelector(reward, MorecFilterConfig(threshold=0.0))
    reward_bf16 = reward_with_snapshots(10, args.device).set_score_dtype("bfloat16")
    selector_bf16 = MorecSelector(reward_bf16, MorecFilterConfig(threshold=0.0, score_dtype="bfloat16"))
    distilled = MorecSelector(
        reward_with_snapshots(1, args.device, DistillationConfig().hidden_sizes), MorecFilterConfig(threshold=0.0)
    )
    morec_b = 2000 // scale
    reward_seconds = time_reward(reward, morec_b, 10, args.device, args.repeats)
    batched_seconds = time_reward(reward, morec_b, 10, args.device, args.repeats, batched=True)
    whole_rows_seconds = time_reward(reward, morec_b, 10, args.device, args.repeats, whole_rows=True)
    bf16_seconds = time_reward(reward_bf16, morec_b, 10, args.device, args.repeats)
    unfiltered = time_engine(model, policy, morec_b, 100, 2, args.device, args.repeats)
    filtered = time_engine(model, policy, morec_b, 100, 2, args.device, args.repeats, selector)
    filtered_bf16 = time_engine(model, policy, morec_b, 100, 2, args.device, args.repeats, selector_bf16)
    filtered_distilled = time_engine(model, policy, morec_b, 100, 2, args.device, args.repeats, distilled)
    result = {
        "device": str(torch.cuda.get_device_name(0))
        if args.device.startswith("cuda")
        else platform.processor() or "cpu",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "quick": args.quick,
        "transitions_per_s": {
            f"mopo_b{mopo_b}_h5": round(ours),
            f"morec_b{morec_b}_h100_k10": round(unfiltered),
            f"morec_filtered_b{morec_b}_h100_k10": round(filtered),
            f"morec_filtered_bfloat16_b{morec_b}_h100_k10": round(filtered_bf16),
            f"morec_distilled_b{morec_b}_h100_k10": round(filtered_distilled),
            f"kit_style_b{mopo_b}_h5": round(kit),
        },
        "filtered_cost_vs_unfiltered": {
            "snapshots_10": round(unfiltered / filtered, 2),
            "snapshots_10_bfloat16": round(unfiltered / filtered_bf16, 2),
            "distilled": round(unfiltered / filtered_distilled, 2),
        },
        "engine_vs_kit_style_ratio": round(ours / kit, 2),
        "reward_d": {
            "workload": f"10 snapshots x 10 candidates x {morec_b} states",
            "ms_per_rollout_step": round(1000 * reward_seconds, 2),
            "snapshot_evaluations_per_s": round(10 * 10 * morec_b / reward_seconds),
            "ms_per_rollout_step_batched": round(1000 * batched_seconds, 2),
            "ms_per_rollout_step_whole_rows": round(1000 * whole_rows_seconds, 2),
            "ms_per_rollout_step_bfloat16": round(1000 * bf16_seconds, 2),
        },
        "dynamics_prediction_ms": {
            f"rows_{rows}{suffix}": round(1000 * time_prediction(model, rows, args.device, args.repeats, whole), 2)
            for rows in (morec_b, mopo_b)
            for suffix, whole in (("", False), ("_whole_rows", True))
        },
        "dynamics_epoch_seconds_100k": round(time_training_epoch(args.device, 100_000 // scale) * scale, 2),
        "dynamics_layer_gflops": layer_product_rates(args.device),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
