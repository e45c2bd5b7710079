"""The `morec train` pipeline, composed: dataset -> dynamics -> (dynamics reward, MOREC filter) ->
rollout engine -> MOPO/MOBILE -> the training loop with evaluation.

Each part is built elsewhere and only put together here:

- :mod:`morec.training.model_cache`: the dynamics and the dynamics reward, trained once and cached by
  dataset, config and seed (their folders go into the run's summary);
- :mod:`morec.training.factory`: the learner (MOPO or MOBILE);
- :mod:`morec.training.evaluation`: evaluation on the task's environment;
- :mod:`morec.shaping.setup`: the ``shaping:`` section (the learner's real rewards and the model
  rewards shaped; the dynamics and the dynamics reward keep the data as loaded);
- :mod:`morec.training.run_directory`: the run's folder (config, checkpoint, TensorBoard, summary,
  policy; locked while open);
- :mod:`morec.training.loop`: the loop (rollouts, updates, evaluations, TensorBoard, checkpoints,
  resume).

:func:`build_components` builds everything the loop needs (the steps, in order, are the places
to extend: the training data in :func:`load_training_dataset`, its shaping for the learner in
:func:`build_reward_shaping`, the model rollouts and their rewards in :func:`build_rollout_engine`).
:func:`start_run` ``(cfg, run_dir, resume=..., show_progress=...)`` opens the run directory and
builds the components (training or loading the models) into a :class:`~morec.training.loop.TrainingLoop`;
:func:`run_training` runs it to the end.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter

from morec.data import OfflineDataset, load_dataset
from morec.denormals import flush_denormals
from morec.dynamics import EnsembleDynamics, get_termination_fn
from morec.dynamics_reward.filter import MorecSelector
from morec.dynamics_reward.model import DynamicsReward
from morec.dynamics_reward.threshold import resolve_threshold
from morec.learners.sampler import MixedSampler
from morec.rollout.buffer import ModelBuffer, TransitionBatch
from morec.rollout.engine import RewardTransformFn, RolloutEngine, Selector
from morec.shaping.setup import RewardShaping, build_shaping
from morec.tasks import get_task
from morec.training.background_evaluation import ActorSpec, BackgroundEvaluator
from morec.training.config import ConfigError, TrainConfig
from morec.training.evaluation import Evaluator
from morec.training.factory import build_algorithm
from morec.training.loop import TrainingComponents, TrainingLoop
from morec.training.model_cache import cached_distilled_reward, cached_dynamics, cached_reward, dataset_fingerprint
from morec.training.run_directory import RunDirectory

__all__ = [
    "build_components",
    "build_reward_shaping",
    "build_rollout_engine",
    "build_selector",
    "default_dataset_source",
    "load_training_dataset",
    "run_training",
    "start_run",
]


# ---------------------------------------------------------------------------------------- data
def default_dataset_source(task: str) -> str:
    spec = get_task(task)
    if spec.benchmark == "d4rl":
        return f"d4rl:{task}"
    if spec.benchmark == "neorl":
        return f"neorl:{task}"
    raise ConfigError(f"task {task!r} names no benchmark dataset; pass --dataset (e.g. a file from `morec collect`)")


def load_training_dataset(cfg: TrainConfig) -> OfflineDataset:
    """The dataset as loaded: the dynamics and the dynamics reward train on it (their caches are
    shared with unshaped runs), the learner on it as :func:`build_reward_shaping` shapes it."""
    return load_dataset(cfg.dataset or default_dataset_source(cfg.task), env_id=cfg.task)


def build_reward_shaping(cfg: TrainConfig, dataset: OfflineDataset, layout: str) -> RewardShaping:
    """``cfg.shaping`` on the loaded ``dataset``: the learner's real data (its rewards shaped where
    ``shaping.apply_to`` says, else ``dataset`` itself) and the rollout engine's model-reward hook
    (``None`` unless model rewards are shaped). With ``transform: none`` nothing is built or drawn."""
    return build_shaping(
        cfg.shaping, dataset, gamma=cfg.agent.gamma, termination_fn=get_termination_fn(cfg.task, layout), seed=cfg.seed
    )


# ---------------------------------------------------------------------------------------- rollouts
def build_selector(
    cfg: TrainConfig,
    dataset: OfflineDataset,
    dynamics: EnsembleDynamics,
    reward: DynamicsReward | None,
    reward_key: str | None,
    writer: SummaryWriter,
    show_progress: bool,
) -> Selector | None:
    """MOREC's filter on ``reward`` (named by its cache key; its threshold resolved, distilled where
    the config says), or ``None`` for the random elite of MOPO/MOBILE."""
    if not cfg.morec:
        return None

    def threshold_of(scorer: DynamicsReward) -> tuple[float, dict | None]:
        try:
            return resolve_threshold(scorer, dynamics, cfg.filter, cfg.rollout, seed=cfg.resolved_model_seed)
        except ValueError as err:  # a reward saved by an older morec stores no held-out data
            where = cfg.reward_path or Path(cfg.cache_dir) / "reward"
            raise ConfigError(f"filter.threshold: {err} (train the dynamics reward under {where} again)") from None

    if not cfg.filter.distilled:  # the threshold of what scores, in the precision it scores in
        reward.set_score_dtype(cfg.filter.score_dtype)
    threshold, calibration = threshold_of(reward)
    if cfg.filter.distilled:  # the student scores; its own threshold (auto: calibrated on its r_D)
        reward = cached_distilled_reward(cfg, dataset, dynamics, reward, reward_key, threshold, writer, show_progress)
        threshold, calibration = threshold_of(reward.set_score_dtype(cfg.filter.score_dtype))
    if calibration is not None:
        writer.add_scalar("rollout/threshold", threshold, 0)
    return MorecSelector(reward, cfg.filter, threshold=threshold)


def build_rollout_engine(
    cfg: TrainConfig,
    dynamics: EnsembleDynamics,
    layout: str,
    selector: Selector | None,
    reward_transform: RewardTransformFn | None = None,
) -> RolloutEngine:
    """Model rollouts as ``cfg.rollout`` says, ending at the task's termination; ``reward_transform``
    maps each step's model reward before MOPO's penalty."""
    return RolloutEngine(
        dynamics,
        get_termination_fn(cfg.task, layout),
        cfg.rollout,
        selector=selector,
        seed=cfg.seed,
        reward_transform=reward_transform,
    )


# ---------------------------------------------------------------------------------------- composition
def build_components(cfg: TrainConfig, tb_dir: str | Path, show_progress: bool = True) -> TrainingComponents:
    """Everything the training loop runs on. Trains (or loads from ``cfg.cache_dir``) the dynamics
    and, with MOREC, the dynamics reward, logging their training to TensorBoard in ``tb_dir``.

    Seeds torch and numpy with ``cfg.seed`` first and torch again before the learner's networks, so
    they are the same whether the models were trained or loaded."""
    if torch.device(cfg.device).type == "cpu":
        torch.set_num_threads(1)
        flush_denormals()  # a long-trained model's denormal weights halved rollout speed (morec/denormals.py)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    dataset = load_training_dataset(cfg)
    layout = dataset.metadata["layout"]
    writer = SummaryWriter(str(tb_dir))
    try:
        dynamics, dynamics_key, dynamics_dir = cached_dynamics(
            cfg, dataset, dataset_fingerprint(dataset), writer, show_progress
        )
        reward, reward_key, reward_dir = (
            cached_reward(cfg, dataset, dynamics, dynamics_key, show_progress) if cfg.morec else (None, None, None)
        )
        selector = build_selector(cfg, dataset, dynamics, reward, reward_key, writer, show_progress)
    finally:
        writer.close()
    shaping = build_reward_shaping(cfg, dataset, layout)  # after the models: they train on the data as loaded
    engine = build_rollout_engine(cfg, dynamics, layout, selector, reward_transform=shaping.model_hook)
    device = dynamics.device
    real = TransitionBatch(*(torch.as_tensor(getattr(shaping.real, f), device=device) for f in ModelBuffer.FIELDS))
    capacity = cfg.rollout.batch_size * cfg.rollout.horizon * cfg.rollout.retain_epochs
    model_buffer = ModelBuffer(capacity, dataset.obs_dim, dataset.act_dim, device)
    sample_generator = torch.Generator(device=device).manual_seed(cfg.seed + 1)
    sampler = MixedSampler(real, model_buffer, cfg.train.real_ratio, sample_generator)
    evaluator = Evaluator(cfg.task, get_task(cfg.task).eval_env_id, layout)
    torch.manual_seed(cfg.seed)  # the same networks whether the models above were trained or loaded from the cache
    algorithm = build_algorithm(cfg, dataset.obs_dim, dataset.act_dim, evaluator.action_space, dynamics)
    if cfg.train.evaluates_in_background(cfg.device):
        evaluator = BackgroundEvaluator(
            ActorSpec(
                cfg.task, evaluator.env_id, layout, dataset.obs_dim, dataset.act_dim, tuple(cfg.agent.hidden_sizes)
            )
        )
    return TrainingComponents(
        dataset=dataset,
        real=real,
        dynamics=dynamics,
        engine=engine,
        model_buffer=model_buffer,
        sample_generator=sample_generator,
        sampler=sampler,
        algorithm=algorithm,
        evaluator=evaluator,
        shaping=shaping,
        model_dirs={"dynamics": str(dynamics_dir), "reward": str(reward_dir) if reward_dir else None},
    )


def start_run(cfg: TrainConfig, run_dir: str | Path, resume: bool = False, show_progress: bool = True) -> TrainingLoop:
    """A run ready to train: ``run_dir`` opened and locked (see :class:`~morec.training.run_directory.RunDirectory`;
    ``resume=True`` continues from its checkpoint), the run's models trained or loaded from the cache
    and the components built. Nothing of the policy is trained until the loop runs."""
    run = RunDirectory.open(cfg, run_dir, resume)
    with run.released_on_error():
        components = build_components(cfg, run.tb, show_progress)
        return TrainingLoop(cfg, run, components, resume=resume, show_progress=show_progress)


def run_training(
    cfg: TrainConfig,
    run_dir: str | Path,
    resume: bool = False,
    show_progress: bool = True,
    on_evaluation: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train ``cfg`` in ``run_dir`` to the end and return the summary (see :meth:`TrainingLoop.steps`)."""
    return start_run(cfg, run_dir, resume=resume, show_progress=show_progress).run(on_evaluation)
