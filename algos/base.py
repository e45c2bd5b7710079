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
from dataclasses import dataclass, field
from typing import Any

import torch
from tianshou.algorithm.algorithm_base import Algorithm, TrainingStats
from tianshou.algorithm.modelfree.sac import SACPolicy
from tianshou.algorithm.optim import AdamOptimizerFactory, LRSchedulerFactory, OptimizerFactory
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler

from morec.buffer import ModelBuffer, TransitionBatch

from .cuda_graph import CapturedUpdate, replay_or_none
from .networks import TwinCritic, sample_action


@dataclass
class AgentConfig:
    """SAC settings shared by MOPO and MOBILE (OfflineRL-Kit defaults)."""

    hidden_sizes: tuple[int, ...] = (256, 256)
    actor_lr: float = 1e-4  # cosine-annealed to 0 over the run
    critic_lr: float = 3e-4
    alpha_lr: float = 1e-4
    gamma: float = 0.99
    tau: float = 0.005
    auto_alpha: bool = True
    alpha: float = 0.2  # the fixed entropy weight when auto_alpha is off
    target_entropy: float | None = None  # default: -act_dim
    num_critics: int = 2

    def __post_init__(self) -> None:
        self.hidden_sizes = tuple(self.hidden_sizes)


class CosineLRFactory(LRSchedulerFactory):
    """Cosine annealing to zero over ``total_steps`` scheduler steps (one per gradient step)."""

    def __init__(self, total_steps: int):
        self.total_steps = max(int(total_steps), 1)

    def create_scheduler(self, optim: torch.optim.Optimizer) -> LRScheduler:
        return CosineAnnealingLR(optim, T_max=self.total_steps)


@dataclass
class MixedBatch:
    """A training batch: ``transitions`` ``[B, ...]``, real rows first, then ``n_model`` model rows."""

    transitions: TransitionBatch
    n_model: int


class MixedSampler:
    """Draws ``int(n * real_ratio)`` real rows and the rest from the model buffer (all real when
    the model buffer is empty)."""

    def __init__(self, real: TransitionBatch, model: ModelBuffer, real_ratio: float, generator: torch.Generator):
        if not 0.0 <= real_ratio <= 1.0:
            raise ValueError(f"real_ratio must be in [0, 1], got {real_ratio}")
        self.real, self.model, self.real_ratio, self.generator = real, model, real_ratio, generator

    def sample(self, n: int) -> MixedBatch:
        return self.gather(*self.draw_rows(n))

    def draw_rows(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Row indices of a batch of ``n``: ``[n_real]`` into the real data and ``[n - n_real]`` into
        the model buffer (``None`` when it is empty)."""
        n_real = n if len(self.model) == 0 else int(n * self.real_ratio)
        real_rows = torch.randint(len(self.real), (n_real,), device=self.real.observations.device, generator=self.generator)
        model_rows = self.model.draw_rows(n - n_real, generator=self.generator) if n - n_real else None
        return real_rows, model_rows

    def gather(self, real_rows: torch.Tensor, model_rows: torch.Tensor | None) -> MixedBatch:
        """The batch at these rows, real rows first."""
        parts = [TransitionBatch(*(getattr(self.real, f)[real_rows] for f in ModelBuffer.FIELDS))]
        if model_rows is not None:
            parts.append(self.model.rows(model_rows))
        batch = TransitionBatch(*(torch.cat([getattr(p, f) for p in parts]) for f in ModelBuffer.FIELDS))
        return MixedBatch(batch, 0 if model_rows is None else len(model_rows))


@dataclass(kw_only=True)
class ModelBasedStats(TrainingStats):
    """One update's scalars as 0-dim tensors on the algorithm's device (``float()`` reads one and
    waits for the device; the trainer does so only when it logs). With a CUDA graph they are the
    graph's output tensors: read them before the next update, which overwrites them."""

    actor_loss: float = 0.0
    critic_loss: float = 0.0
    alpha: float = 0.0
    alpha_loss: float = 0.0
    q_mean: float = 0.0
    target_mean: float = 0.0
    penalty_mean: float = 0.0  # the algorithm's own penalty on model rows (MOBILE); 0 for MOPO
    extra: dict = field(default_factory=dict)

    SCALARS = ("actor_loss", "critic_loss", "alpha", "alpha_loss", "q_mean", "target_mean", "penalty_mean")  # what the trainer logs


def _portable(optimizer_state: dict[str, Any]) -> dict[str, Any]:
    """An optimizer's ``state_dict()`` as an eager optimizer holds it: float learning rates, not capturable."""
    for group in optimizer_state["param_groups"]:
        group["lr"] = float(group["lr"])
        if "capturable" in group:
            group["capturable"] = False
    return optimizer_state


class _LogAlpha(torch.nn.Module):
    def __init__(self, value: float, trainable: bool):
        super().__init__()
        self.value = torch.nn.Parameter(torch.tensor(value), requires_grad=trainable)


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
        self.config = config
        self.critic = critic
        self.critic_target = copy.deepcopy(critic).requires_grad_(False)
        self.actor_optim = self._create_optimizer(
            policy.actor, AdamOptimizerFactory(lr=config.actor_lr).with_lr_scheduler_factory(CosineLRFactory(total_steps))
        )
        self.critic_optim = self._create_optimizer(critic, AdamOptimizerFactory(lr=config.critic_lr))
        self.log_alpha = _LogAlpha(0.0 if config.auto_alpha else math.log(config.alpha), config.auto_alpha)
        if config.auto_alpha:
            self.alpha_optim = self._create_optimizer(self.log_alpha, AdamOptimizerFactory(lr=config.alpha_lr))
        self.target_entropy = config.target_entropy if config.target_entropy is not None else -float(act_dim)
        self.captured_update = None  # a CapturedUpdate once capture_cuda_graph() is called
        self._eager_on_capture_failure = False

    def _create_optimizer(self, module: torch.nn.Module, factory: OptimizerFactory) -> Algorithm.Optimizer:
        optimizer, scheduler = factory.create_instances(module)
        if scheduler is not None:
            self.lr_schedulers.append(scheduler)
        optim = Algorithm.Optimizer(optimizer, module)
        self._optimizers.append(optim)
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
        (:class:`algos.cuda_graph.CapturedUpdate`; the learner must be on a CUDA device). The same
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
    def model_penalty(self, batch: TransitionBatch) -> torch.Tensor:
        """``[B]`` penalty subtracted from the critic target of model rows (none by default)."""
        return torch.zeros_like(batch.rewards)

    def backup_entropy(self) -> bool:
        return True

    def target_lower_bound(self) -> float | None:
        return None

    def actor_critic(self) -> TwinCritic:
        """The critics the actor loss uses (online by default)."""
        return self.critic

    # ------------------------------------------------------------------ the update
    def update(self, sampler: MixedSampler, batch_size: int) -> ModelBasedStats:
        """One gradient step on a batch of ``batch_size`` rows drawn by ``sampler``, then one step of
        every learning-rate scheduler. Must run inside tianshou's ``policy_within_training_step``."""
        if not self.policy.is_within_training_step:
            raise RuntimeError("update() outside a training step: wrap it in tianshou's policy_within_training_step")
        start = time.perf_counter()
        real_rows, model_rows = sampler.draw_rows(batch_size)
        stats = replay_or_none(self, sampler, real_rows, model_rows) if self.captured_update is not None else None
        if stats is None:
            stats = self._update_with_batch(sampler.gather(real_rows, model_rows))
        for scheduler in self.lr_schedulers:
            scheduler.step()
        stats.train_time = time.perf_counter() - start
        return stats

    def _update_with_batch(self, batch: MixedBatch) -> ModelBasedStats:
        cfg, tr = self.config, batch.transitions
        alpha = self.alpha
        with torch.no_grad():
            penalty = torch.zeros_like(tr.rewards)
            n_real = len(tr.rewards) - batch.n_model
            if n_real < len(tr.rewards):  # the penalty is only needed on model rows (the last ones)
                penalty[n_real:] = self.model_penalty(TransitionBatch(*(getattr(tr, f)[n_real:] for f in ModelBuffer.FIELDS)))
            next_act, next_logp = sample_action(self.actor, tr.next_observations)
            next_q = self.critic_target(tr.next_observations, next_act).min(0).values
            if self.backup_entropy():
                next_q = next_q - alpha * next_logp
            target = tr.rewards - penalty + cfg.gamma * (~tr.terminals).float() * next_q
            bound = self.target_lower_bound()
            if bound is not None:
                target = target.clamp_min(bound)
        q = self.critic(tr.observations, tr.actions)  # [C, B]
        critic_loss = (q - target).pow(2).mean(1).sum()
        self.critic_optim.step(critic_loss)

        act, logp = sample_action(self.actor, tr.observations)
        q_pi = self.actor_critic()(tr.observations, act).min(0).values
        actor_loss = (alpha * logp - q_pi).mean()
        self.actor_optim.step(actor_loss)

        alpha_loss = torch.zeros((), device=logp.device)
        if cfg.auto_alpha:
            alpha_loss = -(self.log_alpha.value * (logp.detach() + self.target_entropy)).mean()
            self.alpha_optim.step(alpha_loss)
            with torch.no_grad():
                self.log_alpha.value.clamp_(max=0.0)  # alpha <= 1, as OfflineRL-Kit
        with torch.no_grad():
            for p, tp in zip(self.critic.parameters(), self.critic_target.parameters()):
                tp.lerp_(p, cfg.tau)
        # 0-dim tensors, not floats: reading a value waits for the device, so only the logger does it
        return ModelBasedStats(
            actor_loss=actor_loss.detach(), critic_loss=critic_loss.detach(), alpha=alpha, alpha_loss=alpha_loss.detach(),
            q_mean=q.detach().mean(), target_mean=target.mean(),
            penalty_mean=penalty[n_real:].mean() if batch.n_model else torch.zeros((), device=penalty.device),
        )
