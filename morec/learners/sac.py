"""Model-based SAC on tianshou 2.x parts, the whole update in torch on the device.

Batches mix real transitions (``real_ratio``) with model transitions from a
:class:`morec.ModelBuffer`. Subclasses add their pessimism: MOPO's penalty is already in the model
rewards (the rollout engine applies it); MOBILE subtracts a Bellman-inconsistency penalty from the
critic target of model transitions.

:class:`ModelBasedSAC` is composed of tianshou parts (``SACPolicy``, the optimizer factories and
``Algorithm.Optimizer``) but is not a tianshou ``Algorithm``: tianshou's contract is
``update(buffer: ReplayBuffer, sample_size) -> TrainingStats``, sampling tianshou ``Batch`` es from a
numpy replay buffer with pre- and post-processing hooks, while ours draws device tensors from a
:class:`MixedSampler`. Its own contract is :meth:`ModelBasedSAC.update`.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Mapping
from typing import Any

import torch
from tianshou.algorithm.algorithm_base import Algorithm
from tianshou.algorithm.modelfree.sac import SACPolicy
from tianshou.algorithm.optim import AdamOptimizerFactory, LRSchedulerFactory, OptimizerFactory
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler

from morec.learners.config import AgentConfig
from morec.learners.cuda_graph import CapturedUpdate, replay_or_none
from morec.learners.networks import TwinCritic, sample_action
from morec.learners.sac_step import (
    LogAlpha,
    MixedBatch,
    ModelBasedStats,
    NextStateSampler,
    SACNetworks,
    StepSettings,
    sac_step,
)
from morec.learners.sampler import MixedSampler
from morec.rollout.buffer import TransitionBatch


class CosineLRFactory(LRSchedulerFactory):
    """Cosine annealing to zero over ``total_steps`` scheduler steps (one per gradient step)."""

    def __init__(self, total_steps: int):
        self.total_steps = max(int(total_steps), 1)

    def create_scheduler(self, optim: torch.optim.Optimizer) -> LRScheduler:
        return CosineAnnealingLR(optim, T_max=self.total_steps)


def _portable(optimizer_state: dict[str, Any]) -> dict[str, Any]:
    """An optimizer's ``state_dict()`` as an eager optimizer holds it: float learning rates, not capturable."""
    for group in optimizer_state["param_groups"]:
        group["lr"] = float(group["lr"])
        if "capturable" in group:
            group["capturable"] = False
    return optimizer_state


class ModelBasedSAC(torch.nn.Module):
    """SAC on mixed real/model batches. ``update(sampler, batch_size)`` performs one gradient step.

    ``state_dict()`` holds the networks; :meth:`training_state` adds the optimizer states under
    ``"_optimizers"`` (the layout of tianshou's ``Algorithm``, which checkpoints have always used)."""

    _OPTIMIZERS_KEY = "_optimizers"

    def __init__(self, *, policy: SACPolicy, critic: TwinCritic, config: AgentConfig, act_dim: int, total_steps: int):
        super().__init__()
        self.policy = policy
        self.lr_schedulers: list[LRScheduler] = []
        self._optimizers: list[Algorithm.Optimizer] = []
        self.torch_optimizers: list[torch.optim.Optimizer] = []  # the torch optimizers inside _optimizers, in order
        self.config = config
        self.critic = critic
        self.critic_target = copy.deepcopy(critic).requires_grad_(False)
        self.actor_optim = self._create_optimizer(
            policy.actor,
            AdamOptimizerFactory(lr=config.actor_lr).with_lr_scheduler_factory(CosineLRFactory(total_steps)),
        )
        self.critic_optim = self._create_optimizer(critic, AdamOptimizerFactory(lr=config.critic_lr))
        self.log_alpha = LogAlpha(0.0 if config.auto_alpha else math.log(config.alpha), config.auto_alpha)
        if config.auto_alpha:
            self.alpha_optim = self._create_optimizer(self.log_alpha, AdamOptimizerFactory(lr=config.alpha_lr))
        self.target_entropy = config.target_entropy if config.target_entropy is not None else -float(act_dim)
        self.captured_update: CapturedUpdate | None = None  # set by capture_cuda_graph()
        self._eager_on_capture_failure = False

    def _create_optimizer(self, module: torch.nn.Module, factory: OptimizerFactory) -> Algorithm.Optimizer:
        optimizer, scheduler = factory.create_instances(module)
        if scheduler is not None:
            self.lr_schedulers.append(scheduler)
        optim = Algorithm.Optimizer(optimizer, module)
        self._optimizers.append(optim)
        self.torch_optimizers.append(optimizer)
        return optim

    def training_state(self) -> dict[str, Any]:
        """The networks' ``state_dict()`` and the optimizer states: what resuming training needs. The
        same with or without a CUDA graph (its learning rates, device tensors there, are saved as floats)."""
        return {**self.state_dict(), self._OPTIMIZERS_KEY: [_portable(o.state_dict()) for o in self._optimizers]}

    def load_training_state(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`training_state` returned."""
        state = dict(state)
        for optim, optim_state in zip(self._optimizers, state.pop(self._OPTIMIZERS_KEY), strict=True):
            optim.load_state_dict(optim_state)
        self.load_state_dict(state)

    def compile_networks(self, eager_on_failure: bool = False) -> None:
        """``torch.compile`` the actor, the critics and the target critics in place (their forward and
        backward become fused kernels; parameters, optimizers and ``state_dict`` keys are unchanged, so
        checkpoints load either way). Shapes that vary, as the rollouts' live rows do, get a dynamic
        graph after their first recompilation. The dynamics model stays eager. ``eager_on_failure``:
        a graph that fails to compile (no compiler toolchain, say) runs eagerly, and torch logs why
        (this sets torch's process-wide ``torch._dynamo.config.suppress_errors``)."""
        if eager_on_failure:
            torch._dynamo.config.suppress_errors = True
        for module in (self.policy.actor, self.critic, self.critic_target):
            module.compile()

    def capture_cuda_graph(self, eager_on_failure: bool = False) -> None:
        """Run every later :meth:`update` as the replay of one captured CUDA graph
        (:class:`morec.learners.cuda_graph.CapturedUpdate`; the learner must be on a CUDA device). The same
        arithmetic as the eager step, in one launch instead of hundreds. ``eager_on_failure``: a step
        that cannot be captured warns once and runs eagerly from then on."""
        self.captured_update, self._eager_on_capture_failure = CapturedUpdate(self), eager_on_failure

    @property
    def actor(self) -> torch.nn.Module:
        return self.policy.actor

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.value.exp().detach()

    # ------------------------------------------------------------------ hooks for subclasses
    def model_penalty(
        self, rows: TransitionBatch, nets: SACNetworks, sample_next: NextStateSampler | None
    ) -> torch.Tensor:
        """``[..., n]`` penalty subtracted from the critic target of model ``rows`` ``[..., n, ...]``
        (none by default), from the networks ``nets`` and the ``sample_next`` of
        :meth:`next_state_sampler` it is given: with a seed dimension when the learner is stacked."""
        return torch.zeros_like(rows.rewards)

    def next_state_sampler(self) -> NextStateSampler | None:
        """What :meth:`model_penalty` samples next states from (``None``: it needs none)."""
        return None

    def backup_entropy(self) -> bool:
        return True

    def target_lower_bound(self) -> float | None:
        return None

    def actor_critic(self) -> TwinCritic:
        """The critics the actor loss uses (online by default)."""
        return self.critic

    # ------------------------------------------------------------------ the update
    def networks(self) -> SACNetworks:
        """This learner's networks and optimizers, as :func:`~morec.learners.sac_step.sac_step` reads them."""
        return SACNetworks(
            actor_sample=lambda obs: sample_action(self.actor, obs),
            critic=self.critic,
            critic_target=self.critic_target,
            actor_critic=self.actor_critic(),
            log_alpha=self.log_alpha,
            critic_optim=self.critic_optim,
            actor_optim=self.actor_optim,
            alpha_optim=self.alpha_optim if self.config.auto_alpha else None,
        )

    def step_settings(self, sample_next: NextStateSampler | None) -> StepSettings:
        """This algorithm's settings and hooks for :func:`~morec.learners.sac_step.sac_step`, its penalty
        sampling next states with ``sample_next``."""
        return StepSettings(
            gamma=self.config.gamma,
            tau=self.config.tau,
            target_entropy=self.target_entropy,
            penalty=lambda rows, nets: self.model_penalty(rows, nets, sample_next),
            backup_entropy=self.backup_entropy(),
            target_lower_bound=self.target_lower_bound(),
        )

    def update(self, sampler: MixedSampler, batch_size: int) -> ModelBasedStats:
        """One gradient step on a batch of ``batch_size`` rows drawn by ``sampler``, then one step of
        every learning-rate scheduler. Must run inside tianshou's ``policy_within_training_step``."""
        if not self.policy.is_within_training_step:
            raise RuntimeError("update() outside a training step: wrap it in tianshou's policy_within_training_step")
        start = time.perf_counter()
        real_rows, model_rows = sampler.draw_rows(batch_size)
        stats = replay_or_none(self, sampler, real_rows, model_rows) if self.captured_update is not None else None
        if stats is None:
            stats = self.update_with_batch(sampler.gather(real_rows, model_rows))
        for scheduler in self.lr_schedulers:
            scheduler.step()
        stats.train_time = time.perf_counter() - start
        return stats

    def update_with_batch(self, batch: MixedBatch) -> ModelBasedStats:
        """One gradient step on ``batch`` (no scheduler step): :func:`~morec.learners.sac_step.sac_step`."""
        return sac_step(self.networks(), batch, self.step_settings(self.next_state_sampler()))
