"""Online SAC (tianshou) that produces the behaviour policies and the replay data for datasets.

The training loop is ours (tianshou's `SAC` does the gradient steps) so that every environment
step is also written to a :class:`TransitionLog` with the simulator state, which the
``medium-replay`` dataset and the NeoRL layout need. A checkpoint is written atomically at every
evaluation; a killed run resumes from the last one.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from tianshou.algorithm import SAC
from tianshou.algorithm.modelfree.sac import AutoAlpha, SACPolicy
from tianshou.algorithm.optim import AdamOptimizerFactory
from tianshou.data import Batch, ReplayBuffer
from tianshou.utils.net.common import Net
from tianshou.utils.net.continuous import ContinuousCritic
from tianshou.utils.torch_utils import policy_within_training_step

from morec.actor import build_actor
from morec.collect.config import SACConfig
from morec.collect.envs import TransitionLog, make_env, step_and_record
from morec.collect.episodes import evaluate, policy_act_fn
from morec.errors import UserError
from morec.io import atomic_write
from morec.progress import draws_bar, progress_bar


@dataclass
class Evaluation:
    step: int
    mean_return: float
    std_return: float
    policy_path: str


def build_sac(obs_dim: int, action_space: gym.spaces.Box, cfg: SACConfig, device: str) -> SAC:
    act_dim = int(np.prod(action_space.shape))
    hidden = (cfg.hidden_size, cfg.hidden_size)
    actor = build_actor(obs_dim, act_dim, hidden).to(device)

    def critic() -> ContinuousCritic:
        return ContinuousCritic(
            preprocess_net=Net(state_shape=obs_dim, action_shape=act_dim, hidden_sizes=hidden, concat=True)
        ).to(device)

    alpha = (
        AutoAlpha(target_entropy=-act_dim, log_alpha=0.0, optim=AdamOptimizerFactory(lr=cfg.alpha_lr)).to(device)
        if cfg.alpha is None
        else cfg.alpha
    )
    policy = SACPolicy(actor=actor, action_space=action_space)
    return SAC(
        policy=policy,
        policy_optim=AdamOptimizerFactory(lr=cfg.actor_lr),
        critic=critic(),
        critic_optim=AdamOptimizerFactory(lr=cfg.critic_lr),
        critic2=critic(),
        critic2_optim=AdamOptimizerFactory(lr=cfg.critic_lr),
        tau=cfg.tau,
        gamma=cfg.gamma,
        alpha=alpha,
    )


class BehaviourMismatch(UserError, ValueError):
    """A behaviour-SAC checkpoint belongs to another task, seed or config than the run resuming it."""


class BehaviourTrainer:
    """Trains SAC online on ``env_id`` and keeps every transition and a policy per evaluation.

    Files under ``workdir``: ``state.pt`` (resume checkpoint: networks, optimisers, transitions,
    evaluations, RNG states) and ``policy_<step>.pt`` (actor weights at each evaluation).
    """

    def __init__(self, env_id: str, workdir: str | Path, cfg: SACConfig, seed: int = 0, device: str = "cpu"):
        self.env_id, self.cfg, self.seed, self.device = env_id, cfg, seed, device
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(seed)
        self.env = make_env(env_id, seed)
        self.eval_env = make_env(env_id, seed + 10_000)
        self.algo = build_sac(self.env.observation_space.shape[0], self.env.action_space, cfg, device)
        self.log = TransitionLog()
        self.evaluations: list[Evaluation] = []
        self.step = 0
        self.rng = np.random.default_rng(seed)

    # ------------------------------------------------------------------ checkpoints
    @property
    def state_path(self) -> Path:
        return self.workdir / "state.pt"

    def save(self) -> None:
        state = {
            "env_id": self.env_id,
            "config": asdict(self.cfg),
            "seed": self.seed,
            "step": self.step,
            "algorithm": self.algo.state_dict(),
            "transitions": self.log.arrays() if len(self.log) else {},
            "evaluations": [asdict(e) for e in self.evaluations],
            "numpy_rng": self.rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
        }
        atomic_write(self.state_path, lambda tmp: torch.save(state, tmp))

    def try_resume(self) -> bool:
        """Load ``state.pt`` when present; refuse one written for another task or config."""
        if not self.state_path.exists():
            return False
        state = torch.load(self.state_path, map_location=self.device, weights_only=False)
        saved_config = {"alpha": None, **state["config"]}  # checkpoints from before `alpha` existed tuned it
        if state["env_id"] != self.env_id or saved_config != asdict(self.cfg) or state["seed"] != self.seed:
            wanted = {"env_id": self.env_id, "seed": self.seed, **asdict(self.cfg)}
            saved = {"env_id": state["env_id"], "seed": state["seed"], **saved_config}
            differs = [f"{k} {saved.get(k)} -> {v}" for k, v in wanted.items() if saved.get(k) != v]
            raise BehaviourMismatch(
                f"{self.state_path} was written by a run with other settings ({', '.join(differs)}); "
                f"use another output directory or delete {self.workdir} to start over"
            )
        self.algo.load_state_dict(state["algorithm"])
        self.log = TransitionLog.from_arrays(state["transitions"])
        if len(self.log):  # the episode in progress at the checkpoint was cut there
            self.log.set_last("timeouts", not self.log.last("terminals"))
        self.evaluations = [Evaluation(**e) for e in state["evaluations"]]
        self.step = state["step"]
        self.rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"].cpu())  # map_location may have moved it to the device
        return True

    # ------------------------------------------------------------------ training
    def _replay_buffer(self) -> ReplayBuffer:
        buffer = ReplayBuffer(size=max(self.cfg.train_steps, 1))
        if len(self.log):
            a = self.log.arrays()
            raw_act = self.algo.policy.map_action_inverse(a["actions"])
            term, trunc = a["terminals"], a["timeouts"]
            buffer = ReplayBuffer.from_data(
                obs=a["observations"],
                act=raw_act,
                rew=a["rewards"],
                terminated=term,
                truncated=trunc,
                done=term | trunc,
                obs_next=a["next_observations"],
            )
            grown = ReplayBuffer(size=max(self.cfg.train_steps, 1))
            grown.update(buffer)
            buffer = grown
        return buffer

    def train(self, show_progress: bool = True) -> list[Evaluation]:
        cfg = self.cfg
        buffer = self._replay_buffer()
        policy = self.algo.policy
        sample_act = policy_act_fn(policy, deterministic=False)
        obs, _ = self.env.reset(seed=self.seed + self.step)
        bar = progress_bar(
            show_progress, total=cfg.train_steps, initial=self.step, desc=f"SAC {self.env_id}", line_every=None
        )
        while self.step < cfg.train_steps:
            if self.step < cfg.warmup_steps:
                low, high = self.env.action_space.low, self.env.action_space.high
                action = self.rng.uniform(low, high).astype(np.float32)
            else:
                action = sample_act(obs)
            obs_next, terminated, truncated = step_and_record(self.env, obs, action, self.log)
            buffer.add(
                Batch(
                    obs=obs,
                    act=policy.map_action_inverse(action),
                    rew=float(self.log.last("rewards")),
                    terminated=terminated,
                    truncated=truncated,
                    obs_next=obs_next,
                    info={},
                )
            )
            obs = self.env.reset()[0] if (terminated or truncated) else obs_next
            self.step += 1
            if self.step >= cfg.warmup_steps and len(buffer) >= cfg.batch_size:
                with policy_within_training_step(policy):
                    self.algo.update(buffer=buffer, sample_size=cfg.batch_size)
            if self.step % cfg.eval_every == 0 or self.step == cfg.train_steps:
                self._evaluate_and_checkpoint()
                bar.set_postfix(eval_return=f"{self.evaluations[-1].mean_return:.0f}")
                if not draws_bar(show_progress):  # a log file: one line per evaluation instead of a bar
                    print(
                        f"SAC {self.env_id} step {self.step}/{cfg.train_steps}: "
                        f"eval return {self.evaluations[-1].mean_return:.0f}",
                        file=sys.stderr,
                        flush=True,
                    )
            bar.update(1)
        bar.close()
        return self.evaluations

    def _evaluate_and_checkpoint(self) -> None:
        policy_path = self.workdir / f"policy_{self.step}.pt"
        actor_state = self.algo.policy.state_dict()
        atomic_write(policy_path, lambda tmp: torch.save(actor_state, tmp))
        returns = evaluate(
            self.eval_env, policy_act_fn(self.algo.policy, True), self.cfg.eval_episodes, self.seed + 20_000
        )
        self.evaluations.append(Evaluation(self.step, float(returns.mean()), float(returns.std()), policy_path.name))
        self.save()

    def load_policy(self, evaluation: Evaluation) -> SACPolicy:
        """A fresh policy holding the actor weights saved at ``evaluation``."""
        algo = build_sac(self.env.observation_space.shape[0], self.env.action_space, self.cfg, self.device)
        algo.policy.load_state_dict(torch.load(self.workdir / evaluation.policy_path, map_location=self.device))
        return algo.policy
