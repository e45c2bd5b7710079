"""Learners for tests: tiny MOPO/MOBILE learners and batches, their recorded stats, a CPU stand-in
for CUDA-graph capture, and the resume check every learner's run must pass."""

from __future__ import annotations

import gymnasium as gym
import pytest
import torch
from tianshou.algorithm.modelfree.sac import SACPolicy

from morec.dynamics import EnsembleConfig, EnsembleDynamics, TaskInfo
from morec.learners.config import AgentConfig, MobileConfig
from morec.learners.cuda_graph import CapturedUpdate
from morec.learners.mobile import MOBILE
from morec.learners.mopo import MOPO
from morec.learners.networks import TwinCritic, build_actor
from morec.learners.sac_step import ModelBasedStats
from morec.rollout.buffer import ModelBuffer, TransitionBatch
from morec.training.loop import TrainingLoop
from morec.training.pipeline import start_run

O, A = 4, 2


def real_batch(n=300, seed=0) -> TransitionBatch:
    g = torch.Generator().manual_seed(seed)
    return TransitionBatch(
        torch.randn(n, O, generator=g),
        torch.rand(n, A, generator=g) * 2 - 1,
        torch.randn(n, generator=g),
        torch.randn(n, O, generator=g),
        torch.rand(n, generator=g) < 0.05,
    )


def make_algo(cls, **kw):
    torch.manual_seed(0)
    policy = SACPolicy(actor=build_actor(O, A, (32, 32)), action_space=gym.spaces.Box(-1, 1, (A,)))
    return cls(
        policy=policy,
        critic=TwinCritic(O, A, (32, 32)),
        config=AgentConfig(hidden_sizes=(32, 32)),
        act_dim=A,
        total_steps=10,
        **kw,
    )


def assert_resume_reproduces_the_uninterrupted_run(cfg, tmp_path, monkeypatch) -> None:
    """Train ``cfg`` to the end; train it again killed after epoch 1 and resumed: the same
    evaluations, rollout statistics and final networks."""
    full = start_run(cfg, tmp_path / "full", show_progress=False)
    full_summary = full.run()
    original = TrainingLoop._save_checkpoint

    def crash_after_first(self):
        original(self)
        if self.epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(TrainingLoop, "_save_checkpoint", crash_after_first)
    with pytest.raises(KeyboardInterrupt):
        start_run(cfg, tmp_path / "killed", show_progress=False).run()
    monkeypatch.setattr(TrainingLoop, "_save_checkpoint", original)
    resumed = start_run(cfg, tmp_path / "killed", resume=True, show_progress=False)
    assert resumed.epoch == 1 and resumed.gradient_step == cfg.train.steps_per_epoch
    first_session = resumed.seconds_before_session
    resumed_summary = resumed.run()
    assert (
        first_session > 0
        and resumed_summary["wall_seconds"] >= first_session + resumed_summary["wall_seconds_this_session"] - 0.1
    )
    assert resumed_summary["evaluations"] == full_summary["evaluations"]
    assert resumed_summary["rollouts"] == full_summary["rollouts"]
    for (k, a), b in zip(full.algo.state_dict().items(), resumed.algo.state_dict().values()):
        if isinstance(a, torch.Tensor):
            torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)


STAT_FIELDS = ModelBasedStats.SCALARS


class SimulatedCapture(CapturedUpdate):
    """:class:`CapturedUpdate`'s bookkeeping on the CPU."""

    DEVICE_TYPE = "cpu"

    def __init__(self, algo):
        super().__init__(algo)
        self.captures = 0

    def _warm_up(self, step) -> None:
        for _ in range(self.WARMUP_STEPS):
            step()

    def _record(self, step):
        self.captures += 1
        stats = step()
        return _Rerun(step, stats), stats

    def _make_optimizers_capturable(self) -> None:
        """Nothing to do: capturable Adam needs a GPU, and the stand-in keeps the eager optimizers."""

    def _rng_state(self) -> torch.Tensor:
        return torch.get_rng_state()

    def _set_rng_state(self, state: torch.Tensor) -> None:
        torch.set_rng_state(state)


def learner(name: str, device: str = "cpu"):
    """A small MOPO or MOBILE learner (MOBILE's penalty from a small random ensemble) on ``device``."""
    if name == "MOPO":
        return make_algo(MOPO).to(device)
    dynamics = EnsembleDynamics(
        TaskInfo(O, A), EnsembleConfig(hidden_sizes=(32, 32), weight_decays=(0.0, 0.0, 0.0)), device=device
    )
    return make_algo(MOBILE, dynamics=dynamics.eval(), mobile=MobileConfig(num_samples=3)).to(device)


def on(device: str, batch: TransitionBatch) -> TransitionBatch:
    return TransitionBatch(*(getattr(batch, f).to(device) for f in ModelBuffer.FIELDS))


def assert_close_in_mean(graphed: list[dict[str, float]], eager: list[dict[str, float]]) -> None:
    """The same arithmetic, but random draws may differ in a graph: the losses and Q agree on average."""
    for name in ("critic_loss", "q_mean"):
        graphed_mean = sum(h[name] for h in graphed[2:]) / len(graphed[2:])
        eager_mean = sum(h[name] for h in eager[2:]) / len(eager[2:])
        assert abs(graphed_mean - eager_mean) <= 0.5 * abs(eager_mean) + 0.5, (name, graphed_mean, eager_mean)


class TinyEnsemble:
    """Elites 0 and 1 predict next state obs + e (exactly: tiny std) and reward 0."""

    def __init__(self):
        self.device = torch.device("cpu")
        self.elites = torch.tensor([0, 1])
        self.task = TaskInfo(O, A)

    def sample(self, obs, act, num_samples=1):
        shift = torch.tensor([0.0, 1.0], device=obs.device).view(1, 2, 1, 1)
        nxt = obs.expand(num_samples, 2, *obs.shape) + shift
        return torch.cat([nxt, torch.zeros(*nxt.shape[:-1], 1, device=obs.device)], -1)


class _Rerun:
    """A stand-in graph: ``replay()`` reruns the step and writes its outputs into the recorded ones."""

    def __init__(self, step, stats):
        self.step, self.stats = step, stats

    def replay(self) -> None:
        new = self.step()
        for name in STAT_FIELDS:
            getattr(self.stats, name).copy_(getattr(new, name))
