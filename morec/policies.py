"""Tensor policies for model rollouts and model-error checks: ``obs [B, O] -> act [B, A]``."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from .behaviour import SACConfig, build_sac
from .envs import make_env

TensorPolicy = Callable[[torch.Tensor], torch.Tensor]


def random_policy(act_dim: int, generator: torch.Generator, low: float = -1.0, high: float = 1.0) -> TensorPolicy:
    """Uniform actions in ``[low, high]``."""
    def act(obs: torch.Tensor) -> torch.Tensor:
        u = torch.rand(len(obs), act_dim, device=obs.device, generator=generator)
        return low + (high - low) * u
    return act


def load_sac_actor(path: str | Path, env_id: str, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The actor of a behaviour-SAC checkpoint written by ``morec collect`` (``policy_<step>.pt``);
    the hidden size is read from the weights."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    first = next(v for k, v in state.items() if k.endswith("weight"))
    env = make_env(env_id)
    if first.shape[1] != env.observation_space.shape[0]:
        raise ValueError(f"{path} takes observations of size {first.shape[1]}, but {env_id} has {env.observation_space.shape[0]}")
    algo = build_sac(env.observation_space.shape[0], env.action_space, SACConfig(hidden_size=first.shape[0]), str(device))
    algo.policy.load_state_dict(state)
    return algo.policy.actor.eval()


def actor_policy(actor: torch.nn.Module, generator: torch.Generator, deterministic: bool = False,
                 noise_std: float = 0.0) -> TensorPolicy:
    """A tanh-Gaussian SAC actor as a tensor policy: its mode or a sample, plus optional extra
    Gaussian noise of ``noise_std`` (a noisier behaviour policy), clipped to [-1, 1]."""
    @torch.no_grad()
    def act(obs: torch.Tensor) -> torch.Tensor:
        (mu, sigma), _ = actor(obs)
        pre = mu if deterministic else mu + sigma * torch.randn(mu.shape, device=mu.device, generator=generator)
        a = torch.tanh(pre)
        if noise_std:
            a = a + noise_std * torch.randn(a.shape, device=a.device, generator=generator)
        return a.clamp(-1.0, 1.0)
    return act
