"""MOBILE (Sun et al., 2023): a Bellman-inconsistency penalty in the critic target of model data.

For each model row, ``u(s, a)`` is the standard deviation over the elites of the mean over ``N``
next-state samples (from that elite's Gaussian) of ``min_k Q_target(s', a')`` with ``a' ~ pi(s')``.
As in the released code: no reward term and no gamma inside ``u``; targets clamped at a lower
bound (0 for locomotion) and an optional deterministic backup (no entropy term), plus MOREC's
variant that computes the actor loss on the target critics.
"""

from __future__ import annotations

import torch

from morec.learners.config import MobileConfig
from morec.learners.networks import TwinCritic
from morec.learners.sac import ModelBasedSAC
from morec.learners.sac_step import ActorSample, NextStateSampler, SACNetworks
from morec.rollout.buffer import TransitionBatch


def bellman_uncertainty(
    obs: torch.Tensor,
    act: torch.Tensor,
    sample_next: NextStateSampler,
    actor_sample: ActorSample,
    critic_target: torch.nn.Module,
    num_samples: int,
    dtype: str = "float32",
) -> torch.Tensor:
    """``u(s, a)`` ``[..., B]`` of ``obs [..., B, O]``, ``act [..., B, A]``: the standard deviation
    over the elites of the mean over ``num_samples`` next states (from ``sample_next``) of
    ``min_k Q_target(s', a')`` with ``a'`` from ``actor_sample``; the passes in ``dtype``."""
    next_obs = sample_next(obs, act, num_samples)[..., :-1]  # [..., N, E, B, O]
    lead = obs.shape[:-2]
    flat = next_obs.reshape(*lead, -1, next_obs.shape[-1])  # [..., N * E * B, O]
    with torch.autocast(obs.device.type, dtype=torch.bfloat16, enabled=dtype == "bfloat16"):
        next_act, _ = actor_sample(flat)
        q = critic_target(flat, next_act).min(-2).values  # [..., N * E * B]
    return (
        q.float().reshape(next_obs.shape[:-1]).mean(-3).std(-2)
    )  # unbiased over elites, as torch.std in the released code


class MOBILE(ModelBasedSAC):
    def __init__(self, *, dynamics, mobile: MobileConfig, **kwargs):
        super().__init__(**kwargs)
        self.dynamics, self.mobile = dynamics, mobile

    @torch.no_grad()
    def bellman_uncertainty(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """``u(s, a) [B]`` with this learner's dynamics, actor and target critics (see :func:`bellman_uncertainty`)."""
        return bellman_uncertainty(
            obs,
            act,
            self.dynamics.sample,
            self.networks().actor_sample,
            self.critic_target,
            self.mobile.num_samples,
            self.mobile.penalty_dtype,
        )

    def model_penalty(
        self, rows: TransitionBatch, nets: SACNetworks, sample_next: NextStateSampler | None
    ) -> torch.Tensor:
        if sample_next is None:
            raise ValueError("MOBILE's penalty samples next states: pass its next_state_sampler()")
        return self.mobile.beta * bellman_uncertainty(
            rows.observations,
            rows.actions,
            sample_next,
            nets.actor_sample,
            nets.critic_target,
            self.mobile.num_samples,
            self.mobile.penalty_dtype,
        )

    def next_state_sampler(self) -> NextStateSampler:
        return lambda obs, act, n: self.dynamics.sample(obs, act, num_samples=n)

    def backup_entropy(self) -> bool:
        return not self.mobile.deterministic_backup

    def target_lower_bound(self) -> float | None:
        return self.mobile.target_lower_bound

    def actor_critic(self) -> TwinCritic:
        return self.critic_target if self.mobile.actor_on_target_critics else self.critic
