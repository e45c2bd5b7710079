"""D4RL-recipe datasets from a gymnasium MuJoCo task: ``morec collect``.

1. Train a behaviour SAC online (:mod:`morec.collect.behaviour`), evaluating and checkpointing it.
2. ``expert``: the final policy; ``medium``: the checkpoint whose evaluation return is closest to a
   third of the final one; ``medium-replay``: every transition of training up to that checkpoint;
   ``random``: uniform actions; ``medium-expert``: medium followed by expert. Policies act by
   sampling from their action distribution, as in D4RL.
3. Write each as D4RL hdf5 (x position excluded) and optionally NeoRL npz (x position included),
   with ``infos/qpos`` and ``infos/qvel`` (the simulator state before each step, for the oracle).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from morec.collect.behaviour import BehaviourTrainer, Evaluation, SACConfig, evaluate
from morec.collect.config import CollectConfig
from morec.collect.envs import TransitionLog, make_env, record_episodes_batched
from morec.collect.episodes import policy_batch_act_fn
from morec.data import OfflineDataset
from morec.io import atomic_write
from morec.progress import progress_bar
from morec.tasks import get_task


def pick_medium(evaluations: list[Evaluation], warmup_steps: int = 0) -> Evaluation:
    """The checkpoint (after warm-up, before the final one) whose return is closest to a third of
    the final return — D4RL's "medium" policy."""
    final = evaluations[-1]
    candidates = [e for e in evaluations[:-1] if e.step >= warmup_steps] or evaluations[:-1] or evaluations
    return min(candidates, key=lambda e: abs(e.mean_return - final.mean_return / 3.0))


def log_to_dataset(log: dict[str, np.ndarray], env_id: str, layout: str, meta: dict[str, Any]) -> OfflineDataset:
    """A recording as an :class:`OfflineDataset` in the ``d4rl`` or ``neorl`` observation layout."""
    obs, next_obs = log["observations"], log["next_observations"]
    if layout == "neorl":
        obs = np.concatenate([log["x_before"][:, None], obs], axis=1)
        next_obs = np.concatenate([log["x_after"][:, None], next_obs], axis=1)
    return OfflineDataset.from_arrays(
        obs,
        log["actions"],
        log["rewards"],
        log["terminals"],
        log["timeouts"],
        next_obs,
        env_id=env_id,
        layout=layout,
        metadata=meta,
        infos={"qpos": log["qpos"], "qvel": log["qvel"]},
    )


def dataset_file_name(env_id: str, level: str, layout: str) -> str:
    """``hopper-medium.hdf5`` (D4RL layout) or ``hopper-medium.npz`` (NeoRL layout)."""
    return f"{get_task(env_id).domain.name}-{level}.{'npz' if layout == 'neorl' else 'hdf5'}"


def collect(cfg: CollectConfig, show_progress: bool = True) -> dict[str, Any]:
    """Train (or resume) the behaviour policy, write the datasets and ``collect_summary.json``.
    Returns that summary."""
    torch.set_num_threads(1)
    out = Path(cfg.out_dir)
    start = time.perf_counter()
    trainer = BehaviourTrainer(cfg.env_id, out / "behaviour_sac", cfg.sac, seed=cfg.seed, device=cfg.device)
    resumed_at = trainer.step if trainer.try_resume() else None
    evaluations = trainer.train(show_progress=show_progress)
    train_seconds = time.perf_counter() - start
    medium_eval, expert_eval = pick_medium(evaluations, cfg.sac.warmup_steps), evaluations[-1]

    recordings: dict[str, dict[str, np.ndarray]] = {}
    rollout_policies = {"random": None, "medium": medium_eval, "expert": expert_eval}
    needed = {lvl for lvl in cfg.levels if lvl in rollout_policies}
    if "medium-expert" in cfg.levels:
        needed |= {"medium", "expert"}
    envs = [make_env(cfg.env_id, cfg.seed + 30_000 + i) for i in range(cfg.recording_envs)]
    record_seconds: dict[str, float] = {}
    for offset, level in enumerate(sorted(needed)):
        evaluation = rollout_policies[level]
        if evaluation is None:
            act_fn = uniform_actions(envs[0].action_space, np.random.default_rng(cfg.seed + 40_000))
        else:
            act_fn = policy_batch_act_fn(trainer.load_policy(evaluation), deterministic=False)
        bar = progress_bar(
            show_progress,
            total=cfg.dataset_size,
            desc=f"{level} data",
            unit="step",
            line_every=max(1, cfg.dataset_size // 10),
        )
        started = time.perf_counter()
        try:
            log = record_episodes_batched(
                envs, act_fn, cfg.dataset_size, seed=cfg.seed + 50_000 + 1_000 * offset, progress=bar
            )
        finally:
            bar.close()
        record_seconds[level] = round(time.perf_counter() - started, 1)
        recordings[level] = log.arrays()
    if "medium-replay" in cfg.levels:
        recordings["medium-replay"] = _replay_until(trainer.log, medium_eval.step)

    layouts = ["d4rl"] + (["neorl"] if cfg.neorl else [])
    files: dict[str, dict[str, Any]] = {}
    for level in cfg.levels:
        policy_step = {"medium": medium_eval.step, "expert": expert_eval.step, "medium-replay": medium_eval.step}.get(
            level
        )
        meta = {"source": "morec collect", "level": level, "seed": cfg.seed, "behaviour_policy_step": policy_step}
        for layout in layouts:
            if level == "medium-expert":
                parts = [log_to_dataset(recordings[lv], cfg.env_id, layout, meta) for lv in ("medium", "expert")]
                ds = OfflineDataset.concatenate(parts, metadata=parts[0].metadata)
            else:
                ds = log_to_dataset(recordings[level], cfg.env_id, layout, meta)
            path = ds.save(out / dataset_file_name(cfg.env_id, level, layout))
            summary = ds.summary()
            files[f"{level}:{layout}"] = {
                "path": str(path),
                "transitions": summary["transitions"],
                "episodes": summary["episodes"],
                "return_mean": summary["return_mean"],
            }

    summary = {
        "env_id": cfg.env_id,
        "config": asdict(cfg),
        "resumed_at_step": resumed_at,
        "evaluations": [asdict(e) for e in evaluations],
        "medium_policy": asdict(medium_eval),
        "expert_policy": asdict(expert_eval),
        "train_seconds": round(train_seconds, 1),
        "recording_envs": cfg.recording_envs,
        "record_seconds": record_seconds,
        "total_seconds": round(time.perf_counter() - start, 1),
        "datasets": files,
    }
    atomic_write(out / "collect_summary.json", lambda tmp: tmp.write_text(json.dumps(summary, indent=2)))
    return summary


def uniform_actions(space, rng: np.random.Generator):
    """``obs [N, O] -> actions [N, A]`` drawn uniformly from a Box action space (the ``random`` dataset)."""
    return lambda obs: rng.uniform(space.low, space.high, (len(obs), *space.shape)).astype(np.float32)


def _replay_until(log: TransitionLog, step: int) -> dict[str, np.ndarray]:
    """The first ``step`` training transitions; the episode running at ``step`` is cut there."""
    arrays = log.arrays(stop=step)
    arrays["timeouts"][-1] |= ~arrays["terminals"][-1]
    return arrays


__all__ = ["CollectConfig", "SACConfig", "collect", "evaluate", "pick_medium", "log_to_dataset"]
