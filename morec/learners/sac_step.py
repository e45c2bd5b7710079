"""One SAC gradient step, written once over leading dimensions: :func:`sac_step`.

The plain learner (:class:`~morec.learners.sac.ModelBasedSAC`) calls it with no leading dimension, the
stacked learner (:class:`~morec.learners.stacked.StackedSAC`) with a seed dimension ``S`` in front of
every tensor; an algorithm changes the step only through its hooks (the model-row penalty, the
entropy backup, the target's lower bound, the critics the actor uses), so it is written once for
both. Shapes below: ``...`` is ``()`` or ``(S,)``, ``B`` the batch, ``C`` the critics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from tianshou.algorithm.algorithm_base import Algorithm, TrainingStats
from torch import nn

from morec.rollout.buffer import ModelBuffer, TransitionBatch

# (obs [..., N, O]) -> (actions [..., N, A], log-probabilities [..., N]): a reparameterised tanh-Gaussian sample
ActorSample = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
# (obs [..., B, O], act [..., B, A], n) -> n next-state-and-reward samples per elite [..., n, E, B, O + 1]
NextStateSampler = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]


@dataclass
class MixedBatch:
    """A training batch: ``transitions`` ``[..., B, ...]``, real rows first, then ``n_model`` model rows."""

    transitions: TransitionBatch
    n_model: int

    @property
    def model_rows(self) -> TransitionBatch:
        """The last ``n_model`` rows (the model rows) of every field."""
        lead = self.transitions.rewards.dim() - 1
        n_real = self.transitions.rewards.shape[-1] - self.n_model
        rows = (slice(None),) * lead + (slice(n_real, None),)
        return TransitionBatch(*(getattr(self.transitions, f)[rows] for f in ModelBuffer.FIELDS))


@dataclass(kw_only=True)
class ModelBasedStats(TrainingStats):
    """One update's scalars as tensors on the learner's device, ``[...]`` (``float()`` reads one and
    waits for the device; the training loop does so only when it logs). With a CUDA graph they are the
    graph's output tensors: read them before the next update, which overwrites them."""

    actor_loss: torch.Tensor | float = 0.0
    critic_loss: torch.Tensor | float = 0.0
    alpha: torch.Tensor | float = 0.0
    alpha_loss: torch.Tensor | float = 0.0
    q_mean: torch.Tensor | float = 0.0
    target_mean: torch.Tensor | float = 0.0
    penalty_mean: torch.Tensor | float = 0.0  # the algorithm's own penalty on model rows (MOBILE); 0 for MOPO

    SCALARS = (
        "actor_loss",
        "critic_loss",
        "alpha",
        "alpha_loss",
        "q_mean",
        "target_mean",
        "penalty_mean",
    )  # what the training loop logs


class LogAlpha(nn.Module):
    """The entropy weight's logarithm, ``[...]`` (trainable with ``auto_alpha``)."""

    def __init__(self, value: torch.Tensor | float, trainable: bool):
        super().__init__()
        self.value = nn.Parameter(torch.as_tensor(value, dtype=torch.float32).clone(), requires_grad=trainable)


@dataclass
class SACNetworks:
    """What one step reads and updates."""

    actor_sample: ActorSample
    critic: nn.Module  # (obs [..., B, O], act [..., B, A]) -> Q [..., C, B]
    critic_target: nn.Module
    actor_critic: nn.Module  # the critics the actor loss uses (the online ones or the targets)
    log_alpha: LogAlpha
    critic_optim: Algorithm.Optimizer
    actor_optim: Algorithm.Optimizer
    alpha_optim: Algorithm.Optimizer | None  # None: a fixed entropy weight


@dataclass
class StepSettings:
    """The algorithm's part of the step: its settings and hooks."""

    gamma: float
    tau: float
    target_entropy: float
    penalty: Callable[[TransitionBatch, SACNetworks], torch.Tensor]  # model rows [..., n, ...] -> [..., n]
    backup_entropy: bool = True  # the entropy term in the critic target
    target_lower_bound: float | None = None  # clamp the critic target from below


def sac_step(nets: SACNetworks, batch: MixedBatch, settings: StepSettings) -> ModelBasedStats:
    """One gradient step of the critics, the actor and (when it learns) the entropy weight on
    ``batch``, then the target critics' soft update. Each seed's loss is its own; the optimizers
    step on their sum, so each seed's gradient is its own loss's."""
    tr, s = batch.transitions, settings
    alpha = nets.log_alpha.value.exp().detach()  # [...]
    n_real = tr.rewards.shape[-1] - batch.n_model
    with torch.no_grad():
        penalty = torch.zeros_like(tr.rewards)  # [..., B]
        if batch.n_model:  # only model rows are penalised (the last ones)
            penalty[..., n_real:] = s.penalty(batch.model_rows, nets)
        next_act, next_logp = nets.actor_sample(tr.next_observations)
        next_q = nets.critic_target(tr.next_observations, next_act).min(-2).values  # [..., B]
        if s.backup_entropy:
            next_q = next_q - alpha[..., None] * next_logp
        target = tr.rewards - penalty + s.gamma * (~tr.terminals).float() * next_q
        if s.target_lower_bound is not None:
            target = target.clamp_min(s.target_lower_bound)
    q = nets.critic(tr.observations, tr.actions)  # [..., C, B]
    critic_loss = (q - target[..., None, :]).pow(2).mean(-1).sum(-1)  # [...]
    nets.critic_optim.step(critic_loss.sum())

    act, logp = nets.actor_sample(tr.observations)
    q_pi = nets.actor_critic(tr.observations, act).min(-2).values
    actor_loss = (alpha[..., None] * logp - q_pi).mean(-1)
    nets.actor_optim.step(actor_loss.sum())

    alpha_loss = torch.zeros_like(alpha)
    if nets.alpha_optim is not None:
        alpha_loss = -(nets.log_alpha.value[..., None] * (logp.detach() + s.target_entropy)).mean(-1)
        nets.alpha_optim.step(alpha_loss.sum())
        with torch.no_grad():
            nets.log_alpha.value.clamp_(max=0.0)  # alpha <= 1, as OfflineRL-Kit
    with torch.no_grad():
        for p, tp in zip(nets.critic.parameters(), nets.critic_target.parameters()):
            tp.lerp_(p, s.tau)
    # tensors, not floats: reading a value waits for the device, so only the logger does it
    return ModelBasedStats(
        actor_loss=actor_loss.detach(),
        critic_loss=critic_loss.detach(),
        alpha=alpha,
        alpha_loss=alpha_loss.detach(),
        q_mean=q.detach().mean((-2, -1)),
        target_mean=target.mean(-1),
        penalty_mean=penalty[..., n_real:].mean(-1) if batch.n_model else torch.zeros_like(alpha),
    )
