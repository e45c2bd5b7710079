"""The `morec train` pipeline: dataset -> dynamics -> (dynamics reward) -> MOPO/MOBILE with model
rollouts -> evaluation -> normalised score, with TensorBoard, atomic checkpoints and resume.

Run directory: ``config.yaml`` (resolved), ``checkpoint.pt`` (written atomically after every
epoch), ``tb/`` (TensorBoard, every scalar against the gradient step) and ``summary.json``.
Trained dynamics and dynamics rewards are cached under ``cache_dir`` by dataset hash, config and
seed, so runs that can share them do.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import yaml
from tianshou.algorithm.modelfree.sac import SACPolicy
from tianshou.data import Collector, CollectStats
from tianshou.env import DummyVectorEnv
from tianshou.utils.torch_utils import policy_within_training_step
from torch.utils.tensorboard import SummaryWriter
from tqdm.auto import tqdm

from dynamics import EnsembleDynamics, TaskInfo, fit_ensemble, get_termination_fn
from morec.buffer import ModelBuffer, TransitionBatch
from morec.data import OfflineDataset, load_dataset, normalized_score
from morec.data.formats import atomic_write
from morec.dynamics_reward import DynamicsReward
from morec.filter import MorecSelector
from morec.locking import LockBusy, acquire, exclusive_lock
from morec.reward_training import fit_dynamics_reward
from morec.rollout import RolloutConfig, RolloutEngine
from morec.shaping_setup import build_shaping
from morec.threshold import resolve_threshold
from morec.tasks import get_task

from .base import MixedSampler, ModelBasedSAC
from .config import ConfigError, TrainConfig, config_differences, config_from_dict
from .mobile import MOBILE
from .mopo import MOPO
from .networks import TwinCritic, build_actor, sample_action


# ---------------------------------------------------------------------------------------- data
def default_dataset_source(task: str) -> str:
    spec = get_task(task)
    if spec.benchmark == "d4rl":
        return f"d4rl:{task}"
    if spec.benchmark == "neorl":
        return f"neorl:{task}"
    raise ConfigError(f"task {task!r} names no benchmark dataset; pass --dataset (e.g. a file from `morec collect`)")


def dataset_fingerprint(ds: OfflineDataset) -> str:
    digest = hashlib.sha1()
    for arr in ds.arrays().values():
        digest.update(np.ascontiguousarray(arr).tobytes())
    digest.update(str(ds.metadata.get("layout")).encode())
    return digest.hexdigest()[:16]


def _key(*parts: Any) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------- models
# Runs sharing a cache entry (same dataset, config and seed) may start at once, in several processes
# or on several machines sharing the cache directory: a lock next to the entry makes one of them
# train it while the others wait and then load it.
def cached_dynamics(cfg: TrainConfig, ds: OfflineDataset, fingerprint: str, writer: SummaryWriter, progress: bool) -> tuple[EnsembleDynamics, str]:
    key = _key("dynamics", fingerprint, asdict(cfg.dynamics), cfg.seed)
    folder = Path(cfg.cache_dir) / "dynamics" / key
    task = TaskInfo(ds.obs_dim, ds.act_dim, ds.metadata.get("env_id"), ds.metadata.get("layout"))
    with exclusive_lock(folder.with_name(key + ".lock"), f"waiting for another process training dynamics {folder}"):
        if (folder / "dynamics.pt").exists():
            return EnsembleDynamics.load(folder, cfg.device, expect=task), key
        model = EnsembleDynamics(task, cfg.dynamics, seed=cfg.seed, device=cfg.device)
        fit_ensemble(model, ds, seed=cfg.seed, writer=writer, show_progress=progress)
        model.save(folder)
    return model, key


def cached_reward(cfg: TrainConfig, ds: OfflineDataset, dynamics: EnsembleDynamics, dynamics_key: str, progress: bool) -> DynamicsReward:
    key = _key("reward", dynamics_key, asdict(cfg.reward), cfg.seed)
    folder = Path(cfg.cache_dir) / "reward" / key
    with exclusive_lock(folder.with_name(key + ".lock"), f"waiting for another process training the dynamics reward {folder}"):
        if (folder / "dynamics_reward.pt").exists():
            return DynamicsReward.load(folder, cfg.device, obs_dim=ds.obs_dim, act_dim=ds.act_dim)
        reward, _ = fit_dynamics_reward(ds, dynamics, cfg.reward, seed=cfg.seed, log_dir=str(folder / "tb"), show_progress=progress)
        reward.save(folder)
    return reward


def build_algorithm(cfg: TrainConfig, obs_dim: int, act_dim: int, action_space: gym.spaces.Box, dynamics: EnsembleDynamics) -> ModelBasedSAC:
    gen = torch.Generator().manual_seed(cfg.seed)
    actor = build_actor(obs_dim, act_dim, cfg.agent.hidden_sizes)
    policy = SACPolicy(actor=actor, action_space=action_space)
    critic = TwinCritic(obs_dim, act_dim, cfg.agent.hidden_sizes, cfg.agent.num_critics, generator=gen)
    total = cfg.train.epochs * cfg.train.steps_per_epoch
    common = dict(policy=policy, critic=critic, config=cfg.agent, act_dim=act_dim, total_steps=total)
    algo = MOBILE(dynamics=dynamics, mobile=cfg.mobile, **common) if cfg.algorithm == "mobile" else MOPO(**common)
    return algo.to(cfg.device)


# ---------------------------------------------------------------------------------------- evaluation
def make_eval_env(env_id: str, layout: str) -> gym.Env:
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is out of date.*")
        return gym.make(env_id, exclude_current_positions_from_observation=(layout != "neorl"))


def evaluate(policy: SACPolicy, env_id: str, layout: str, episodes: int, seed: int) -> np.ndarray:
    """``[episodes]`` returns of the deterministic policy on vectorised gymnasium envs."""
    envs = DummyVectorEnv([lambda: make_eval_env(env_id, layout) for _ in range(min(episodes, 10))])
    envs.seed(seed)
    collector = Collector[CollectStats](policy, envs)
    stats = collector.collect(n_episode=episodes, reset_before_collect=True)
    envs.close()
    return np.asarray(stats.returns, dtype=np.float64)


# ---------------------------------------------------------------------------------------- the run
class Trainer:
    """One training run in ``run_dir``. ``resume=True`` continues from its checkpoint.

    The run directory is locked while the trainer exists, so a second process (a suite re-run
    while a killed one's worker still lingers) fails at once instead of interleaving checkpoints.
    """

    def __init__(self, cfg: TrainConfig, run_dir: str | Path, resume: bool = False, show_progress: bool = True):
        self.cfg, self.run_dir, self.progress = cfg, Path(run_dir), show_progress
        self.checkpoint_path = self.run_dir / "checkpoint.pt"
        try:
            self._run_lock = acquire(self.run_dir / ".lock", blocking=False)
        except LockBusy:
            raise ConfigError(f"{self.run_dir} is in use by another running process; wait for it or stop it") from None
        self._check_run_dir(resume)
        if torch.device(cfg.device).type == "cpu":
            torch.set_num_threads(1)
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed)
        source = cfg.dataset or default_dataset_source(cfg.task)
        self.dataset = load_dataset(source, env_id=cfg.task)
        self.task = get_task(cfg.task)
        self.layout = self.dataset.metadata["layout"]
        self.eval_env_id = self.task.eval_env_id
        self.writer = SummaryWriter(str(self.run_dir / "tb"))
        fingerprint = dataset_fingerprint(self.dataset)
        self.dynamics, dyn_key = cached_dynamics(cfg, self.dataset, fingerprint, self.writer, show_progress)
        device = self.dynamics.device
        rollout = RolloutConfig(cfg.rollout.horizon, cfg.rollout.samples_per_member, cfg.rollout.penalty_coef, cfg.rollout.candidate_clip)
        selector = None
        if cfg.morec:
            reward = cached_reward(cfg, self.dataset, self.dynamics, dyn_key, show_progress)
            try:
                threshold, calibration = resolve_threshold(reward, self.dynamics, cfg.filter, rollout, seed=cfg.seed)
            except ValueError as err:  # a reward cached by an older morec stores no held-out data
                raise ConfigError(f"filter.threshold: {err} (for `morec train`: delete the cached reward under "
                                  f"{Path(cfg.cache_dir) / 'reward'} so it is trained again)") from None
            if calibration is not None:
                self.writer.add_scalar("rollout/threshold", threshold, 0)
            selector = MorecSelector(reward, cfg.filter, threshold=threshold)
        termination_fn = get_termination_fn(cfg.task, self.layout)
        # reward shaping: the learner's real rewards and a hook on model rewards (dynamics and reward above train on the data as loaded)
        self.shaping = build_shaping(cfg.shaping, self.dataset, gamma=cfg.agent.gamma, termination_fn=termination_fn, seed=cfg.seed)
        self.engine = RolloutEngine(self.dynamics, termination_fn, rollout, selector=selector, seed=cfg.seed,
                                    reward_transform=self.shaping.model_hook)
        ds = self.shaping.real  # self.dataset itself unless shaping.apply_to shapes dataset rewards
        self.real = TransitionBatch(*(torch.as_tensor(getattr(ds, f), device=device) for f in ModelBuffer.FIELDS))
        capacity = cfg.rollout.batch_size * cfg.rollout.horizon * cfg.rollout.retain_epochs
        self.model_buffer = ModelBuffer(capacity, ds.obs_dim, ds.act_dim, device)
        self.sample_gen = torch.Generator(device=device).manual_seed(cfg.seed + 1)
        self.sampler = MixedSampler(self.real, self.model_buffer, cfg.train.real_ratio, self.sample_gen)
        env = make_eval_env(self.eval_env_id, self.layout)
        torch.manual_seed(cfg.seed)  # the same networks whether the models above were trained or loaded from the cache
        self.algo = build_algorithm(cfg, ds.obs_dim, ds.act_dim, env.action_space, self.dynamics)
        self.epoch, self.gradient_step, self.evaluations = 0, 0, []
        if resume:
            self._load_checkpoint()
        self.writer.close()
        # a resumed run drops events logged after its checkpoint (they are about to be written again)
        self.writer = SummaryWriter(str(self.run_dir / "tb"), purge_step=self.gradient_step + 1 if resume else None)

    # ------------------------------------------------------------------ run directory
    def _check_run_dir(self, resume: bool) -> None:
        config_path = self.run_dir / "config.yaml"
        resolved = self.cfg.to_dict()
        if resume:
            if not self.checkpoint_path.exists():
                raise ConfigError(f"--resume: no checkpoint at {self.checkpoint_path}; start the run without --resume")
            saved = config_from_dict(yaml.safe_load(config_path.read_text())).to_dict()
            if saved != resolved:
                diff = list(config_differences(saved, resolved))
                raise ConfigError(f"--resume: {self.checkpoint_path} was written with another config (differs in {diff})")
        elif self.checkpoint_path.exists():
            raise ConfigError(f"{self.run_dir} already holds a run; pass --resume to continue it or choose another --run-dir")
        else:  # an attempt killed before its first checkpoint: its curves are about to be written again
            shutil.rmtree(self.run_dir / "tb", ignore_errors=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(config_path, lambda tmp: tmp.write_text(yaml.safe_dump(_plain(resolved), sort_keys=False)))

    def _save_checkpoint(self) -> None:
        state = {
            "epoch": self.epoch,
            "gradient_step": self.gradient_step,
            "evaluations": self.evaluations,
            "algorithm": self.algo.state_dict(),
            "lr_schedulers": [s.state_dict() for s in self.algo.lr_schedulers],
            "model_buffer": self.model_buffer.state_dict(),
            "rng": {"torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                    "sample": self.sample_gen.get_state(), "engine": self.engine.generator.get_state(), "numpy": np.random.get_state()},
        }
        atomic_write(self.checkpoint_path, lambda tmp: torch.save(state, tmp))

    def _load_checkpoint(self) -> None:
        state = torch.load(self.checkpoint_path, map_location="cpu", weights_only=False)
        self.algo.load_state_dict(state["algorithm"])
        for scheduler, sd in zip(self.algo.lr_schedulers, state["lr_schedulers"]):
            scheduler.load_state_dict(sd)
        self.model_buffer.load_state_dict(state["model_buffer"])
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        if rng["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        self.sample_gen.set_state(rng["sample"])
        self.engine.generator.set_state(rng["engine"])
        np.random.set_state(rng["numpy"])
        self.epoch, self.gradient_step, self.evaluations = state["epoch"], state["gradient_step"], state["evaluations"]

    # ------------------------------------------------------------------ training
    def rollout(self) -> None:
        cfg = self.cfg.rollout
        rows = torch.randint(len(self.real), (cfg.batch_size,), device=self.real.observations.device, generator=self.sample_gen)
        actor = self.algo.actor
        with torch.no_grad():
            stats = self.engine.rollout(self.real.observations[rows], lambda o: sample_action(actor, o)[0], self.model_buffer)
        step = self.gradient_step
        self.writer.add_scalar("rollout/mean_length", stats.mean_length, step)
        self.writer.add_scalar("rollout/transitions", stats.transitions, step)
        self.writer.add_scalar("rollout/reward_mean", stats.reward_mean, step)
        self.writer.add_scalar("rollout/penalty_mean", stats.penalty_mean, step)
        self.writer.add_scalar("rollout/truncation_rate", stats.stopped / max(stats.start_states, 1), step)
        self.writer.add_scalar("rollout/termination_rate", stats.terminated / max(stats.start_states, 1), step)
        for key, value in stats.selector.items():
            self.writer.add_scalar(f"rollout/{key}", value, step)

    def run(self, on_evaluation: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Train to the end; ``on_evaluation(record)`` is called after each evaluation once its
        checkpoint is written (a sweep reports the score there). Releases the run directory."""
        try:
            return self._train(on_evaluation)
        finally:
            self._run_lock.close()

    def _train(self, on_evaluation: Callable[[dict[str, Any]], None] | None) -> dict[str, Any]:
        cfg = self.cfg.train
        start = time.perf_counter()
        total = cfg.epochs * cfg.steps_per_epoch
        bar = tqdm(total=total, initial=self.gradient_step, desc=self.cfg.name, disable=not self.progress)
        while self.epoch < cfg.epochs:
            window_start, window_steps = time.perf_counter(), 0
            for _ in range(cfg.steps_per_epoch):
                if self.gradient_step % self.cfg.rollout.freq == 0:
                    self.rollout()
                with policy_within_training_step(self.algo.policy):
                    stats = self.algo.update(self.sampler, cfg.batch_size)
                self.gradient_step += 1
                window_steps += 1
                bar.update(1)
                if self.gradient_step % cfg.log_every == 0:
                    self._log_training(stats, window_steps / (time.perf_counter() - window_start))
                    window_start, window_steps = time.perf_counter(), 0
            self.epoch += 1
            evaluated = self.epoch % cfg.eval_every == 0 or self.epoch == cfg.epochs
            if evaluated:
                self._evaluate()
                bar.set_postfix(score=f"{self.evaluations[-1]['normalized_score']:.1f}")
            self._save_checkpoint()
            if evaluated and on_evaluation is not None:
                on_evaluation(self.evaluations[-1])
        bar.close()
        summary = self._summary(time.perf_counter() - start)
        atomic_write(self.run_dir / "summary.json", lambda tmp: tmp.write_text(json.dumps(summary, indent=2)))
        self.writer.close()
        return summary

    def _log_training(self, stats, steps_per_s: float) -> None:
        step = self.gradient_step
        for key in ("actor_loss", "critic_loss", "alpha", "alpha_loss", "q_mean", "target_mean", "penalty_mean"):
            self.writer.add_scalar(f"train/{key}", getattr(stats, key), step)
        self.writer.add_scalar("perf/gradient_steps_per_s", steps_per_s, step)
        self.writer.add_scalar("train/actor_lr", self.algo.lr_schedulers[0].get_last_lr()[0], step)

    def _evaluate(self) -> None:
        returns = evaluate(self.algo.policy, self.eval_env_id, self.layout, self.cfg.train.eval_episodes, self.cfg.seed + 1000 * self.epoch)
        scores = normalized_score(self.cfg.task, returns)
        record = {"epoch": self.epoch, "gradient_step": self.gradient_step, "return_mean": float(returns.mean()),
                  "return_std": float(returns.std()), "normalized_score": float(scores.mean()), "normalized_score_std": float(scores.std())}
        self.evaluations.append(record)
        for key in ("return_mean", "return_std", "normalized_score", "normalized_score_std"):
            self.writer.add_scalar(f"eval/{key}", record[key], self.gradient_step)
        self.writer.flush()

    def _summary(self, seconds: float) -> dict[str, Any]:
        scores = [e["normalized_score"] for e in self.evaluations]
        return {
            "task": self.cfg.task, "algorithm": self.cfg.algorithm, "morec": self.cfg.morec, "seed": self.cfg.seed,
            "gradient_steps": self.gradient_step, "epochs": self.epoch,
            "last_score": scores[-1] if scores else None,
            "last10_mean_score": float(np.mean(scores[-10:])) if scores else None,
            "best_score": max(scores) if scores else None,
            "last_return": self.evaluations[-1]["return_mean"] if scores else None,
            "dataset_mean_return": float(self.dataset.returns().mean()),
            "shaping": self.shaping.summary(),
            "wall_seconds_this_session": round(seconds, 1),
            "evaluations": self.evaluations,
        }


def _plain(value):
    """Tuples -> lists so the YAML stays readable and loads back."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
