"""Behaviour cloning: the tanh-Gaussian actor fitted by maximum likelihood to the dataset's
actions, as a baseline for the model-based learners (same actor network and evaluation)."""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import torch
from tianshou.algorithm.modelfree.sac import SACPolicy

from morec.learners.networks import build_actor, tanh_gaussian_log_prob

ACTION_EPS = 1e-4  # keeps atanh finite for actions at exactly +-1


@dataclass
class BCConfig:
    hidden_sizes: tuple[int, ...] = (256, 256)
    lr: float = 1e-4
    batch_size: int = 256
    steps: int = 10_000


def log_likelihood(actor: torch.nn.Module, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
    """``[B]`` log-probability of actions ``act`` in (-1, 1) under the tanh-Gaussian actor."""
    (mu, sigma), _ = actor(obs)
    act = act.clamp(-1 + ACTION_EPS, 1 - ACTION_EPS)
    return tanh_gaussian_log_prob(mu, sigma, torch.atanh(act), act)


def train_bc(dataset, action_space: gym.spaces.Box, config: BCConfig | None = None, seed: int = 0,
             device: str | torch.device = "cpu") -> tuple[SACPolicy, list[float]]:
    """A deterministic-at-evaluation SACPolicy cloned from ``dataset``, and the loss every 1000 steps."""
    cfg = config or BCConfig()
    torch.manual_seed(seed)
    actor = build_actor(dataset.obs_dim, dataset.act_dim, tuple(cfg.hidden_sizes)).to(device)
    obs = torch.as_tensor(dataset.observations, device=device)
    act = torch.as_tensor(dataset.actions, device=device)
    gen = torch.Generator(device=device).manual_seed(seed)
    optim = torch.optim.Adam(actor.parameters(), lr=cfg.lr)
    losses = []
    for step in range(cfg.steps):
        rows = torch.randint(len(obs), (cfg.batch_size,), device=device, generator=gen)
        loss = -log_likelihood(actor, obs[rows], act[rows]).mean()
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        if step % 1000 == 0 or step == cfg.steps - 1:
            losses.append(loss.item())
    return SACPolicy(actor=actor, action_space=action_space), losses
