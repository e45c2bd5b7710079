"""Actor and twin critic for the model-based SAC learners."""

from __future__ import annotations

import math

import torch
from tianshou.utils.net.common import Net
from tianshou.utils.net.continuous import ContinuousActorProbabilistic
from torch import nn

from dynamics.layers import EnsembleLinear


def build_actor(obs_dim: int, act_dim: int, hidden_sizes: tuple[int, ...]) -> ContinuousActorProbabilistic:
    """tianshou's state-conditioned Gaussian actor (unbounded mean, tanh applied when sampling)."""
    return ContinuousActorProbabilistic(
        preprocess_net=Net(state_shape=obs_dim, hidden_sizes=hidden_sizes),
        action_shape=act_dim,
        unbounded=True,
        conditioned_sigma=True,
    )


def sample_action(actor: nn.Module, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Reparameterised tanh-Gaussian action ``[..., A]`` and its log-probability ``[...]``
    (with the tanh correction). ``obs`` may have leading dimensions ``[..., O]``."""
    lead = obs.shape[:-1]
    (mu, sigma), _ = actor(obs.reshape(-1, obs.shape[-1]))
    pre = mu + sigma * torch.randn_like(mu)
    action = torch.tanh(pre)
    log_prob = (-0.5 * ((pre - mu) / sigma).pow(2) - sigma.log() - 0.5 * math.log(2 * math.pi)).sum(-1)
    log_prob = log_prob - torch.log(1 - action.pow(2) + 1e-6).sum(-1)
    return action.reshape(*lead, -1), log_prob.reshape(lead)


class TwinCritic(nn.Module):
    """``num_critics`` Q networks run as one: ``(obs [..., B, O], act [..., B, A]) -> Q [C, ...]``."""

    def __init__(self, obs_dim: int, act_dim: int, hidden_sizes: tuple[int, ...], num_critics: int = 2,
                 generator: torch.Generator | None = None):
        super().__init__()
        sizes = (obs_dim + act_dim, *hidden_sizes, 1)
        self.layers = nn.ModuleList(EnsembleLinear(num_critics, i, o, generator=generator) for i, o in zip(sizes[:-1], sizes[1:]))
        for layer in self.layers:  # PyTorch's default Linear initialisation, as SAC implementations use
            bound = 1 / math.sqrt(layer.weight.shape[1])
            nn.init.uniform_(layer.weight, -bound, bound, generator=generator)
            nn.init.uniform_(layer.bias, -bound, bound, generator=generator)

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        lead = obs.shape[:-1]
        x = torch.cat([obs, act], dim=-1).reshape(-1, obs.shape[-1] + act.shape[-1])
        for layer in self.layers[:-1]:
            x = torch.relu(layer(x))
        return self.layers[-1](x)[..., 0].reshape(-1, *lead)
