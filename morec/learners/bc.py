"""Behaviour cloning: the tanh-Gaussian actor fitted by maximum likelihood to the dataset's
actions, as a baseline for the model-based learners (same actor network and evaluation), with the
learners' contract (:class:`BehaviourCloning`: ``update(sampler, batch_size)``, ``training_state``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import torch
from tianshou.algorithm.algorithm_base import TrainingStats
from tianshou.algorithm.modelfree.sac import SACPolicy

from morec.learners.config import BCConfig
from morec.learners.networks import build_actor, tanh_gaussian_log_prob
from morec.learners.sampler import MixedSampler
from morec.rollout.buffer import ModelBuffer, TransitionBatch

ACTION_EPS = 1e-4  # keeps atanh finite for actions at exactly +-1


def log_likelihood(actor: torch.nn.Module, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
    """``[B]`` log-probability of actions ``act`` in (-1, 1) under the tanh-Gaussian actor."""
    (mu, sigma), _ = actor(obs)
    act = act.clamp(-1 + ACTION_EPS, 1 - ACTION_EPS)
    return tanh_gaussian_log_prob(mu, sigma, torch.atanh(act), act)


@dataclass(kw_only=True)
class BCStats(TrainingStats):
    loss: torch.Tensor  # the batch's negative log-likelihood, 0-dim


class BehaviourCloning(torch.nn.Module):
    """The actor cloned from the data's actions, one Adam step per :meth:`update` on a batch of
    ``sampler``'s rows (real rows: its model buffer stays empty)."""

    def __init__(self, actor: torch.nn.Module, config: BCConfig):
        super().__init__()
        self.actor, self.config = actor, config
        self.optim = torch.optim.Adam(actor.parameters(), lr=config.lr)

    def update(self, sampler: MixedSampler, batch_size: int) -> BCStats:
        batch = sampler.sample(batch_size).transitions
        loss = -log_likelihood(self.actor, batch.observations, batch.actions).mean()
        self.optim.zero_grad(set_to_none=True)
        loss.backward()
        self.optim.step()
        return BCStats(loss=loss.detach())

    def training_state(self) -> dict[str, Any]:
        """The actor's ``state_dict()`` and the optimizer's state (the learners' checkpoint layout)."""
        return {**self.state_dict(), "_optimizers": [self.optim.state_dict()]}

    def load_training_state(self, state: Mapping[str, Any]) -> None:
        state = dict(state)
        self.optim.load_state_dict(state.pop("_optimizers")[0])
        self.load_state_dict(state)


def real_sampler(dataset, device: str | torch.device, generator: torch.Generator) -> MixedSampler:
    """A sampler of ``dataset``'s rows alone (an empty model buffer)."""
    real = TransitionBatch(*(torch.as_tensor(getattr(dataset, f), device=device) for f in ModelBuffer.FIELDS))
    return MixedSampler(real, ModelBuffer(1, dataset.obs_dim, dataset.act_dim, device), 1.0, generator)


def train_bc(
    dataset,
    action_space: gym.spaces.Box,
    config: BCConfig | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> tuple[SACPolicy, list[float]]:
    """A deterministic-at-evaluation SACPolicy cloned from ``dataset``, and the loss every 1000 steps."""
    cfg = config or BCConfig()
    torch.manual_seed(seed)
    learner = BehaviourCloning(build_actor(dataset.obs_dim, dataset.act_dim, tuple(cfg.hidden_sizes)).to(device), cfg)
    sampler = real_sampler(dataset, device, torch.Generator(device=device).manual_seed(seed))
    losses = []
    for step in range(cfg.steps):
        loss = learner.update(sampler, cfg.batch_size).loss
        if step % 1000 == 0 or step == cfg.steps - 1:
            losses.append(loss.item())
    return SACPolicy(actor=learner.actor, action_space=action_space), losses
