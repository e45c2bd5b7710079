"""MOBILE (Sun et al., 2023): a Bellman-inconsistency penalty in the critic target of model data.

For each model row, ``u(s, a)`` is the standard deviation over the elites of the mean over ``N``
next-state samples (from that elite's Gaussian) of ``min_k Q_target(s', a')`` with ``a' ~ pi(s')``.
As in the released code: no reward term and no gamma inside ``u``; targets clamped at a lower
bound (0 for locomotion) and an optional deterministic backup (no entropy term), plus MOREC's
variant that computes the actor loss on the target critics.
"""

from __future__ import annotations

import torch

from morec.cpu_features import warn_if_bfloat16_is_emulated
from morec.learners.config import MobileConfig
from morec.learners.networks import TwinCritic
from morec.learners.sac import ModelBasedSAC
from morec.learners.sac_step import ActorSample, NextStateSampler, SACNetworks
from morec.rollout.buffer import TransitionBatch
from morec.row_blocks import row_blocks

# rows per block of the penalty's pass on the CPU (of 5 elites x 10 samples x ~244 rows = 12,200):
# 1.14x the whole pass's steps/s on one thread in float32 and bfloat16; 2,048 and 8,192 were slower
PENALTY_BLOCK_ROWS = 4096


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
    ``min_k Q_target(s', a')`` with ``a'`` from ``actor_sample``; the passes in ``dtype``, on the CPU
    :data:`PENALTY_BLOCK_ROWS` rows at a time (the noise drawn block by block is the same stream)."""
    next_obs = sample_next(obs, act, num_samples)[..., :-1]  # [..., N, E, B, O]
    lead = obs.shape[:-2]
    flat = next_obs.reshape(*lead, -1, next_obs.shape[-1])  # [..., N * E * B, O]
    blocks = row_blocks(flat.shape[-2], PENALTY_BLOCK_ROWS) if flat.device.type == "cpu" else [slice(None)]
    with torch.autocast(obs.device.type, dtype=torch.bfloat16, enabled=dtype == "bfloat16"):
        qs = [min_target_q(flat[..., rows, :], actor_sample, critic_target) for rows in blocks]
    q = qs[0] if len(qs) == 1 else torch.cat(qs, -1)  # [..., N * E * B]
    return (
        q.float().reshape(next_obs.shape[:-1]).mean(-3).std(-2)
    )  # unbiased over elites, as torch.std in the released code


def min_target_q(obs: torch.Tensor, actor_sample: ActorSample, critic_target: torch.nn.Module) -> torch.Tensor:
    """``min_k Q_target(s, a)`` ``[..., R]`` of ``obs [..., R, O]`` with ``a`` from ``actor_sample``."""
    act, _ = actor_sample(obs)
    return critic_target(obs, act).min(-2).values


class MOBILE(ModelBasedSAC):
    def __init__(self, *, dynamics, mobile: MobileConfig, **kwargs):
        super().__init__(**kwargs)
        self.dynamics, self.mobile = dynamics, mobile
        if mobile.penalty_dtype == "bfloat16":
            warn_if_bfloat16_is_emulated("mobile.penalty_dtype=bfloat16", dynamics.device)

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
