"""`RolloutEngine`: batched model rollouts for every algorithm, torch tensors end to end.

Each step, for the live rows ``[B]``:

1. ``act = policy(obs)``;
2. one batched ensemble forward for all members -> ``(mean, logvar) [E, B, O + 1]``;
3. candidates ``[K, B, O + 1]``: ``samples_per_member`` Gaussian draws from each elite
   (``K = elites x samples``);
   optionally clipped to ``[-candidate_clip, candidate_clip]`` (the released MOREC code: 25 on D4RL);
   and the **consensus** ``[B, O + 1]``, the mean of the elites' mean predictions (clipped alike);
4. the **selector** picks one candidate per row (default: a uniformly random elite, as MOPO and
   MOBILE do; the MOREC filter plugs in here) and may stop rows (marking them terminal) or
   truncate them (ending them without the terminal flag);
5. termination function on ``(obs, act, next_obs)``; optional truncation hook;
6. optional ``reward_transform(reward, obs, act, next_obs)`` on the model reward (e.g. a
   :class:`morec.shaping.transforms.StepAdapter` of clipping, flip noise or potential shaping);
7. optional MOPO penalty ``lambda * max_e ||sigma_e||`` subtracted from the (transformed) reward;
8. the step's transitions go into the :class:`ModelBuffer`; rows that terminated or stopped drop out.

Nothing leaves the device inside the loop except the live-row count that compaction needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import torch

from morec.dynamics.termination import TerminationFn
from morec.rollout.buffer import ModelBuffer, TransitionBatch
from morec.rollout.config import RolloutConfig

Policy = Callable[[torch.Tensor], torch.Tensor]  # obs [B, O] -> act [B, A]
TruncationFn = Callable[
    [int, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor
]  # (step, obs, act, next_obs) -> bool [B]
RewardTransformFn = Callable[
    [torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor
]  # (reward [B], obs, act, next_obs) -> reward [B]


@dataclass
class Selection:
    """A selector's decision for ``B`` rows: ``index [B]`` into the ``K`` candidates, and
    optionally ``stop [B]`` (rows to end here; their transition is kept and marked terminal),
    ``truncate [B]`` (rows to end here; their transition is kept, not marked terminal) and
    per-step scalar statistics."""

    index: torch.Tensor
    stop: torch.Tensor | None = None
    truncate: torch.Tensor | None = None
    stats: dict[str, torch.Tensor] = field(default_factory=dict)

    def rows(self, keep: torch.Tensor) -> Selection:
        """The decision for the rows ``keep [B]`` (a boolean mask) says to keep."""
        return Selection(
            self.index[keep],
            None if self.stop is None else self.stop[keep],
            None if self.truncate is None else self.truncate[keep],
            self.stats,
        )


class Selector(Protocol):
    def __call__(
        self,
        obs: torch.Tensor,
        act: torch.Tensor,
        candidates: torch.Tensor,
        step: int,
        generator: torch.Generator,
        consensus: torch.Tensor,
    ) -> Selection:
        """``obs [B, O]``, ``act [B, A]``, ``candidates [K, B, O + 1]``, ``consensus [B, O + 1]``
        (the elites' mean prediction) -> :class:`Selection`."""


class RandomEliteSelector:
    """MOPO/MOBILE: each row takes the sample of one uniformly chosen elite draw."""

    def __call__(self, obs, act, candidates, step, generator, consensus) -> Selection:
        k, b = candidates.shape[:2]
        return Selection(index=torch.randint(k, (b,), device=candidates.device, generator=generator))


@dataclass
class RolloutStats:
    start_states: int
    transitions: int
    mean_length: float  # transitions per start state
    reward_mean: float  # model reward before the reward transform and any penalty
    penalty_mean: float
    terminated: int  # by the termination function
    stopped: int  # by the selector (e.g. the MOREC threshold) or the truncation hook
    reached_horizon: int
    selector: dict[str, float] = field(default_factory=dict)  # selector statistics, averaged per transition
    diverged: int = 0  # rows ended because the model's next state, reward or penalty was not finite (not written)


@dataclass
class StepRecord:
    """What one rollout step wrote (tensors of the ``B`` live rows), for analysis callbacks."""

    step: int
    observations: torch.Tensor
    actions: torch.Tensor
    next_observations: torch.Tensor
    rewards: torch.Tensor
    terminals: torch.Tensor  # [B] written terminal flag (termination function or selector stop)
    terminated: torch.Tensor  # [B] by the termination function alone
    ended: torch.Tensor  # [B] rows that end here (terminal, stopped or truncated)
    rows: torch.Tensor  # [B] index of each row's start state


class RolloutEngine:
    """Rolls ``policy`` through ``dynamics`` from start states and fills a :class:`ModelBuffer`.

    ``dynamics`` needs ``predict(obs, act, members=None) -> (mean, logvar) [E, B, O + 1]`` (``members``:
    indices of the members to run, ``E = len(members)``; the engine passes ``elites`` when it needs no
    other member) and ``elites``.
    ``reward_transform`` maps the model reward ``[B]`` of each step (with ``obs [B, O]``,
    ``act [B, A]``, ``next_obs [B, O]``) to the reward ``[B]`` written before the penalty.
    """

    def __init__(
        self,
        dynamics,
        termination_fn: TerminationFn,
        config: RolloutConfig | None = None,
        selector: Selector | None = None,
        truncation_fn: TruncationFn | None = None,
        seed: int = 0,
        reward_transform: RewardTransformFn | None = None,
    ):
        self.dynamics = dynamics
        self.termination_fn = termination_fn
        self.config = config or RolloutConfig()
        self.selector = selector or RandomEliteSelector()
        self.truncation_fn = truncation_fn
        self.reward_transform = reward_transform
        self.device = dynamics.device
        self.generator = torch.Generator(device=self.device).manual_seed(seed)

    def candidates(self, obs: torch.Tensor, act: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(candidates [K, B, O + 1], penalty [B], consensus [B, O + 1])`` for one step; the
        consensus is the mean over elites of their mean predictions."""
        elites = self.dynamics.elites
        # only the elites propose candidates; MOPO's penalty alone needs the other members to run
        members = None if self.config.penalty_coef else elites
        mean, logvar = self.dynamics.predict(obs, act, members)
        std = (0.5 * logvar).exp()
        m, s = (mean[elites], std[elites]) if members is None else (mean, std)
        noise = torch.randn((self.config.samples_per_member, *m.shape), device=m.device, generator=self.generator)
        cands = (m + noise * s).reshape(-1, *m.shape[1:])
        consensus = m.mean(0)
        if self.config.candidate_clip is not None:
            cands = cands.clamp(-self.config.candidate_clip, self.config.candidate_clip)
            consensus = consensus.clamp(-self.config.candidate_clip, self.config.candidate_clip)
        if self.config.penalty_coef:
            penalty = self.config.penalty_coef * std.norm(dim=-1).amax(dim=0)  # max over all members
        else:
            penalty = torch.zeros(obs.shape[0], device=obs.device)
        return cands, penalty, consensus

    def select(self, obs: torch.Tensor, act: torch.Tensor, step: int) -> tuple[torch.Tensor, Selection, torch.Tensor]:
        """One model step: ``(picked [B, O + 1] next observation and reward, selection, penalty [B])``."""
        cands, penalty, consensus = self.candidates(obs, act)
        sel = self.selector(obs, act, cands, step, self.generator, consensus)
        picked = cands.gather(0, sel.index.view(1, -1, 1).expand(1, -1, cands.shape[-1]))[0]
        return picked, sel, penalty

    @torch.no_grad()
    def rollout(
        self,
        start_states: torch.Tensor,
        policy: Policy,
        buffer: ModelBuffer,
        step_callback: Callable[[StepRecord], None] | None = None,
    ) -> RolloutStats:
        """Run up to ``horizon`` steps from ``start_states [B, O]`` and write every transition."""
        obs = start_states.to(self.device, torch.float32)
        n_start = len(obs)
        rows = torch.arange(n_start, device=self.device)
        n_written, diverged = 0, 0
        sums = {k: torch.zeros((), device=self.device) for k in ("reward", "penalty", "terminated", "stopped")}
        selector_sums: dict[str, torch.Tensor] = {}
        for step in range(self.config.horizon):
            if len(obs) == 0:
                break
            act = policy(obs)
            picked, sel, penalty = self.select(obs, act, step)
            finite = torch.isfinite(picked).all(-1) & torch.isfinite(penalty)
            if not bool(finite.all()):  # the model diverged on these rows: they end here, nothing of them written
                diverged += int((~finite).sum())
                obs, act, picked, penalty, rows, sel = (
                    obs[finite],
                    act[finite],
                    picked[finite],
                    penalty[finite],
                    rows[finite],
                    sel.rows(finite),
                )
                if len(obs) == 0:
                    break
            next_obs, model_reward = picked[:, :-1], picked[:, -1]
            terminated = self.termination_fn(obs, act, next_obs)
            stop = sel.stop if sel.stop is not None else torch.zeros_like(terminated)
            truncated = (
                self.truncation_fn(step, obs, act, next_obs) if self.truncation_fn else torch.zeros_like(terminated)
            )
            if sel.truncate is not None:
                truncated = truncated | sel.truncate
            terminals = terminated | stop
            reward = model_reward
            if self.reward_transform is not None:
                reward = self.reward_transform(model_reward, obs, act, next_obs)
                if reward.shape != model_reward.shape:
                    raise ValueError(
                        f"reward_transform must return rewards of shape {tuple(model_reward.shape)}, "
                        f"got {tuple(reward.shape)}"
                    )
            buffer.add(TransitionBatch(obs, act, reward - penalty, next_obs, terminals))
            ended = terminals | truncated
            if step_callback is not None:
                step_callback(
                    StepRecord(step, obs, act, next_obs, reward - penalty, terminals, terminated, ended, rows)
                )
            n = len(obs)
            n_written += n
            sums["reward"] += model_reward.sum()
            sums["penalty"] += penalty.sum()
            sums["terminated"] += terminated.sum()
            sums["stopped"] += ((stop | truncated) & ~terminated).sum()
            for key, value in sel.stats.items():
                selector_sums[key] = selector_sums.get(key, 0) + value * n
            obs, rows = next_obs[~ended], rows[~ended]
        terminated, stopped = int(sums["terminated"]), int(sums["stopped"])
        return RolloutStats(
            start_states=n_start,
            transitions=n_written,
            mean_length=n_written / max(n_start, 1),
            reward_mean=float(sums["reward"]) / max(n_written, 1),
            penalty_mean=float(sums["penalty"]) / max(n_written, 1),
            terminated=terminated,
            stopped=stopped,
            reached_horizon=n_start - terminated - stopped - diverged,
            selector={k: float(v) / max(n_written, 1) for k, v in selector_sums.items()},
            diverged=diverged,
        )
