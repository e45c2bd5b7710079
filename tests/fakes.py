"""Small stand-ins with known answers: a linear system, shifting and two-elite dynamics, fixed-score
rewards, a linear TorchScript-able policy."""

from __future__ import annotations

import numpy as np
import torch

from morec.data import OfflineDataset
from morec.dynamics import TaskInfo


def linear_system(
    n: int = 3000, obs_dim: int = 4, act_dim: int = 2, noise: float = 0.01, seed: int = 0
) -> OfflineDataset:
    """s' = s + 0.1 * (A s + B a) + noise, r = sum(a) - |s|^2: learnable and known."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(obs_dim, obs_dim)) * 0.3
    B = rng.normal(size=(obs_dim, act_dim))
    obs = rng.normal(size=(n, obs_dim)).astype(np.float32)
    act = rng.uniform(-1, 1, size=(n, act_dim)).astype(np.float32)
    nxt = obs + 0.1 * (obs @ A.T + act @ B.T) + noise * rng.normal(size=(n, obs_dim))
    rew = act.sum(1) - (obs**2).sum(1) * 0.1
    return OfflineDataset.from_arrays(obs, act, rew, np.zeros(n, bool), np.ones(n, bool), nxt)


# ---------------------------------------------------------------------------- RolloutEngine
class ShiftDynamics:
    """Member e predicts s' = s + e (all dims) and reward e, with a tiny fixed std; elites 1..3."""

    def __init__(self, members: int = 5, obs_dim: int = 2, logvar: float = -40.0, device: str = "cpu"):
        self.device = torch.device(device)
        self.elites = torch.tensor([1, 2, 3], device=self.device)
        self.members, self.obs_dim, self.logvar = members, obs_dim, logvar
        self.task = TaskInfo(obs_dim, 1)

    def predict(self, obs, act, members=None):
        shift = torch.arange(self.members, dtype=torch.float32, device=obs.device).view(-1, 1, 1)
        nxt = obs.unsqueeze(0) + shift
        rew = shift.expand(-1, len(obs), 1)
        mean = torch.cat([nxt, rew], dim=-1)
        logvar = torch.full_like(mean, self.logvar)
        logvar[0] = self.logvar + 2  # member 0 (not an elite) has the widest std
        return (mean, logvar) if members is None else (mean[members], logvar[members])


def never(obs, act, next_obs):
    return torch.zeros(len(obs), dtype=torch.bool, device=obs.device)


def zero_policy(obs):
    return torch.zeros(len(obs), 1, device=obs.device)


class FixedScores:
    """A stand-in reward: candidate k scores scores[k] for every row (observations in [0, 1])."""

    def __init__(self, scores):
        self.scores = torch.tensor(scores)
        self.obs_low, self.obs_high = torch.zeros(()), torch.ones(())

    def __call__(self, obs, act, next_obs):
        return self.scores[:, None].expand(next_obs.shape[0], obs.shape[0]).clone()


# ---------------------------------------------------------------------------- TorchScript policies
class Linear(torch.nn.Module):
    def __init__(self, obs_dim: int, act_dim: int, scale: float = 1.0):
        super().__init__()
        self.net = torch.nn.Linear(obs_dim, act_dim)
        self.scale = scale

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.scale * torch.tanh(self.net(obs))
