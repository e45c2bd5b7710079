"""Building the policy learner of a training config (:data:`LEARNERS`: MOPO or MOBILE) with its actor and critics."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import torch
from tianshou.algorithm.modelfree.sac import SACPolicy

from morec.learners.mobile import MOBILE
from morec.learners.mopo import MOPO
from morec.learners.networks import TwinCritic, build_actor
from morec.learners.sac import ModelBasedSAC
from morec.training.config import TrainConfig

# algorithm name (morec.learners.config.ALGORITHMS) -> its learner from the config, the dynamics and
# the shared parts (policy, critic, agent settings, action size, total gradient steps)
LEARNERS: dict[str, Callable[..., ModelBasedSAC]] = {
    "mopo": lambda cfg, dynamics, **common: MOPO(**common),
    "mobile": lambda cfg, dynamics, **common: MOBILE(dynamics=dynamics, mobile=cfg.mobile, **common),
}


def build_algorithm(
    cfg: TrainConfig, obs_dim: int, act_dim: int, action_space: gym.spaces.Box, dynamics
) -> ModelBasedSAC:
    """``cfg.algorithm`` on ``cfg.device``. The actor draws from torch's global generator, the
    critics from one seeded by ``cfg.seed``; MOBILE also needs the ``dynamics`` for its penalty. The
    networks are compiled, and on CUDA the whole update captured as a CUDA graph, where
    ``cfg.train.compile`` says."""
    gen = torch.Generator().manual_seed(cfg.seed)
    actor = build_actor(obs_dim, act_dim, cfg.agent.hidden_sizes)
    policy = SACPolicy(actor=actor, action_space=action_space)
    critic = TwinCritic(obs_dim, act_dim, cfg.agent.hidden_sizes, cfg.agent.num_critics, generator=gen)
    total = cfg.train.epochs * cfg.train.steps_per_epoch
    common = dict(policy=policy, critic=critic, config=cfg.agent, act_dim=act_dim, total_steps=total)
    algo = LEARNERS[cfg.algorithm](cfg, dynamics, **common).to(cfg.device)
    if cfg.train.compiles(cfg.device):
        auto = cfg.train.compile == "auto"  # "on": a failure stops the run
        algo.compile_networks(eager_on_failure=auto)
        if torch.device(cfg.device).type == "cuda":
            algo.capture_cuda_graph(eager_on_failure=auto)
    return algo
