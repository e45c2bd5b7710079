"""S seeds' learners as one: :class:`StackedSAC` (``train.stack_seeds``, used by ``morec train --seeds``).

Every parameter of the S seeds' actors, critics, target critics and entropy weights gets a leading
seed dimension, and one gradient step updates all seeds with one batched product per layer
(``torch.baddbmm`` over ``[S, N, in] @ [S, in, out]``) instead of S steps of small products. The
seeds stay independent: each draws its own batch from its own data and model buffer, the loss is
the sum of the seeds' losses (so each seed's gradient is its own loss's), and Adam works element by
element. The step itself is :func:`~morec.learners.sac_step.sac_step`, the plain learner's, with a seed
dimension in front, and the algorithm's hooks are the first seed's learner's: a penalty that
samples next states (MOBILE's) gets each seed's samples from that seed's own sampler.

The seeds' own learners (:class:`~morec.learners.sac.ModelBasedSAC`) remain what the rest of a run reads:
:meth:`StackedSAC.write_to_seeds` copies the stacked parameters and optimizer moments into them
before a rollout, an evaluation or a checkpoint, and :meth:`StackedSAC.read_from_seeds` copies them
back (after a resume). So each seed's run directory is written exactly as a separate run's.

What differs from separate runs: the sampling noise of the update (the actions' reparameterisation,
MOBILE's next-state samples) is drawn for all seeds at once from one stream (the first seed's), and
a batched product sums in another order than a plain one. So S stacked seeds are S independent runs
of the same algorithm, not bit for bit the S separate runs; a stack of one seed draws the same noise
as the plain run and agrees with it to float rounding (tests/test_stacked_learner.py).
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Sequence
from typing import Any, cast

import torch
from tianshou.algorithm.algorithm_base import Algorithm
from tianshou.algorithm.optim import AdamOptimizerFactory
from tianshou.utils.net.continuous import SIGMA_MAX, SIGMA_MIN
from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingLR

from morec.learners.cuda_graph import replay_or_none
from morec.learners.networks import TwinCritic, tanh_gaussian_log_prob
from morec.learners.sac import ModelBasedSAC
from morec.learners.sac_step import LogAlpha, MixedBatch, ModelBasedStats, NextStateSampler, SACNetworks, sac_step
from morec.learners.sampler import StackedSampler


def _stacked(tensors: Sequence[torch.Tensor]) -> nn.Parameter:
    """The seeds' tensors as one parameter with a leading seed dimension (a copy)."""
    return nn.Parameter(torch.stack([t.detach() for t in tensors]).clone())


class StackedActor(nn.Module):
    """S tianshou Gaussian actors (:func:`morec.actor.build_actor`) as one:
    ``obs [S, N, O] -> (mu, sigma) [S, N, A]``. Weights ``[S, out, in]`` (``nn.Linear``'s layout per
    seed), biases ``[S, 1, out]``."""

    def __init__(self, actors: Sequence[nn.Module]):
        super().__init__()
        linears = [self._linears(actor) for actor in actors]
        *hidden, (self.mu_weight, self.mu_bias), (self.sigma_weight, self.sigma_bias) = [
            (_stacked([seed[i].weight for seed in linears]), _stacked([seed[i].bias.unsqueeze(0) for seed in linears]))
            for i in range(len(linears[0]))
        ]
        self.hidden_weights = nn.ParameterList(w for w, _ in hidden)
        self.hidden_biases = nn.ParameterList(b for _, b in hidden)

    @staticmethod
    def _linears(actor: Any) -> list[nn.Linear]:
        """A tianshou actor's layers: the hidden ones (ReLU after each), then the mean and the log-std heads."""
        return [
            *(m for m in actor.preprocess.modules() if isinstance(m, nn.Linear)),
            actor.mu.model[0],
            actor.sigma.model[0],
        ]

    def pairs(self, actor: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``(stacked parameter, the seed's parameter)`` for one seed's ``actor``."""
        stacked = [
            *zip(self.hidden_weights, self.hidden_biases),
            (self.mu_weight, self.mu_bias),
            (self.sigma_weight, self.sigma_bias),
        ]
        return [
            pair
            for (w, b), layer in zip(stacked, self._linears(actor), strict=True)
            for pair in ((w, layer.weight), (b, layer.bias))
        ]

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = obs
        for weight, bias in zip(self.hidden_weights, self.hidden_biases):
            x = torch.baddbmm(bias, x, weight.transpose(1, 2)).relu()
        mu = torch.baddbmm(self.mu_bias, x, self.mu_weight.transpose(1, 2))
        log_sigma = torch.baddbmm(self.sigma_bias, x, self.sigma_weight.transpose(1, 2))
        return mu, log_sigma.clamp(SIGMA_MIN, SIGMA_MAX).exp()

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterised tanh-Gaussian actions ``[S, N, A]`` and log-probabilities ``[S, N]``, as
        :func:`morec.learners.networks.sample_action` per seed (one noise draw for all seeds)."""
        mu, sigma = self(obs)
        pre = mu + sigma * torch.randn_like(mu)
        action = torch.tanh(pre)
        return action, tanh_gaussian_log_prob(mu, sigma, pre, action)


class StackedCritic(nn.Module):
    """S :class:`~morec.learners.networks.TwinCritic` s as one: ``(obs [S, N, O], act [S, N, A]) -> Q [S, C, N]``.
    Weights ``[S, C, in, out]``, biases ``[S, C, 1, out]``."""

    def __init__(self, critics: Sequence[TwinCritic]):
        super().__init__()
        depth = len(critics[0].linears)
        self.weights = nn.ParameterList(_stacked([c.linears[i].weight for c in critics]) for i in range(depth))
        self.biases = nn.ParameterList(_stacked([c.linears[i].bias for c in critics]) for i in range(depth))

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        seeds, critics = self.weights[0].shape[:2]
        x = torch.cat([obs, act], dim=-1)  # [S, N, I]
        x = x.unsqueeze(1).expand(-1, critics, -1, -1).reshape(seeds * critics, *x.shape[1:])  # [S * C, N, I]
        layers = list(zip(self.weights, self.biases))
        for weight, bias in layers[:-1]:
            x = torch.baddbmm(bias.flatten(0, 1), x, weight.flatten(0, 1)).relu()
        weight, bias = layers[-1]
        with torch.autocast(x.device.type, enabled=False):  # the output layer in float32, as TwinCritic
            q = torch.baddbmm(bias.flatten(0, 1).float(), x.float(), weight.flatten(0, 1).float())
        return q.reshape(seeds, critics, -1)

    def pairs(self, critic: TwinCritic) -> list[tuple[nn.Parameter, nn.Parameter]]:
        """``(stacked parameter, the seed's parameter)`` for one seed's ``critic``."""
        return [
            pair
            for w, b, layer in zip(self.weights, self.biases, critic.linears, strict=True)
            for pair in ((w, layer.weight), (b, layer.bias))
        ]


class StackedSAC(nn.Module):
    """One gradient step for all ``learners`` (one per seed, of one class and config) at once.

    ``update(sampler, batch_size)`` has :meth:`ModelBasedSAC.update`'s contract with a
    :class:`StackedSampler`, and returns :class:`ModelBasedStats` of ``[S]`` tensors
    (:meth:`seed_stats` picks one seed's). The actor's learning rate follows one cosine schedule
    for all seeds (the seeds' schedulers are copied from it)."""

    def __init__(self, learners: Sequence[ModelBasedSAC]):
        super().__init__()
        first = learners[0]
        kinds = {type(learner) for learner in learners}
        if len(kinds) != 1:
            raise ValueError(f"train.stack_seeds stacks learners of one class, got {sorted(k.__name__ for k in kinds)}")
        self.learners = list(learners)  # a plain list: their parameters are not this module's
        self.config = first.config
        self.actor = StackedActor([learner.actor for learner in learners])
        self.critic = StackedCritic([learner.critic for learner in learners])
        self.critic_target = StackedCritic([learner.critic_target for learner in learners]).requires_grad_(False)
        self.log_alpha = LogAlpha(
            torch.stack([learner.log_alpha.value.detach() for learner in learners]), self.config.auto_alpha
        )
        self.actor_on_target_critics = first.actor_critic() is first.critic_target
        self._optimizers: list[Algorithm.Optimizer] = []
        self.torch_optimizers: list[torch.optim.Optimizer] = []
        self.actor_optim = self._optimizer(self.actor, self.config.actor_lr)
        self.lr_schedulers = [
            CosineAnnealingLR(self.torch_optimizers[0], T_max=cast(CosineAnnealingLR, first.lr_schedulers[0]).T_max)
        ]
        self.critic_optim = self._optimizer(self.critic, self.config.critic_lr)
        if self.config.auto_alpha:
            self.alpha_optim = self._optimizer(self.log_alpha, self.config.alpha_lr)
        self.captured_update = None
        self._eager_on_capture_failure = False
        self.read_from_seeds()

    def _optimizer(self, module: nn.Module, lr: float) -> Algorithm.Optimizer:
        """Adam as :class:`~morec.learners.sac.ModelBasedSAC` builds it."""
        optimizer, _ = AdamOptimizerFactory(lr=lr).create_instances(module)
        optim = Algorithm.Optimizer(optimizer, module)
        self._optimizers.append(optim)
        self.torch_optimizers.append(optimizer)
        return optim

    # ------------------------------------------------------------------ the seeds' learners
    def _pairs(self) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        """Each stacked parameter with the seeds' parameters it stacks."""
        per_seed = [
            [
                *self.actor.pairs(learner.actor),
                *self.critic.pairs(learner.critic),
                *self.critic_target.pairs(learner.critic_target),
                (self.log_alpha.value, learner.log_alpha.value),
            ]
            for learner in self.learners
        ]
        return [(pairs[0][0], [seed[i][1] for seed in per_seed]) for i, pairs in enumerate(zip(*per_seed))]

    def _optimizer_pairs(self):
        """``(stacked torch optimizer, the seeds' torch optimizers)`` in the learners' order (actor,
        critics, entropy weight)."""
        return [
            (optim, [learner.torch_optimizers[i] for learner in self.learners])
            for i, optim in enumerate(self.torch_optimizers)
        ]

    @torch.no_grad()
    def read_from_seeds(self) -> None:
        """Copy the seeds' parameters and optimizer moments into the stack (in place: a captured
        graph keeps reading the same tensors)."""
        pairs = self._pairs()
        seeds_of = {id(p): seeds for p, seeds in pairs}
        for stacked, seeds in pairs:
            stacked.copy_(torch.stack([p.reshape(stacked.shape[1:]) for p in seeds]))
        for stacked_optim, seed_optims in self._optimizer_pairs():
            for p in (p for group in stacked_optim.param_groups for p in group["params"]):
                seed_states = [optim.state.get(q) for optim, q in zip(seed_optims, seeds_of[id(p)])]
                if not seed_states[0]:
                    stacked_optim.state.pop(p, None)
                    continue
                state = stacked_optim.state.setdefault(p, {})
                for key in seed_states[0]:
                    value = (
                        seed_states[0][key]
                        if key == "step"
                        else torch.stack([s[key].reshape(p.shape[1:]) for s in seed_states])
                    )
                    if key in state:
                        state[key].copy_(value)
                    else:
                        state[key] = value.clone()
            lr = float(seed_optims[0].param_groups[0]["lr"])
            for group in stacked_optim.param_groups:
                if isinstance(group["lr"], torch.Tensor):  # capturable: the graph reads this tensor
                    group["lr"].fill_(lr)
                else:
                    group["lr"] = lr
        for scheduler, seed_scheduler in zip(self.lr_schedulers, self.learners[0].lr_schedulers, strict=True):
            scheduler.load_state_dict(seed_scheduler.state_dict())

    @torch.no_grad()
    def write_to_seeds(self) -> None:
        """Copy the stack's parameters and optimizer moments into the seeds' learners (their
        optimizers' step counts as an eager optimizer keeps them, on the CPU)."""
        pairs = self._pairs()
        seeds_of = {id(p): seeds for p, seeds in pairs}
        for stacked, seeds in pairs:
            for s, p in enumerate(seeds):
                p.copy_(stacked[s].reshape(p.shape))
        for stacked_optim, seed_optims in self._optimizer_pairs():
            for p, state in stacked_optim.state.items():
                for s, (optim, q) in enumerate(zip(seed_optims, seeds_of[id(p)])):
                    optim.state[q] = {
                        key: value.detach().to("cpu", torch.float32).clone()
                        if key == "step"
                        else value[s].reshape(q.shape).clone()
                        for key, value in state.items()
                    }
        self.write_schedules_to_seeds()

    def write_schedules_to_seeds(self) -> None:
        """Copy the learning rates and the schedule's state into the seeds' optimizers and schedulers
        (what the training loop logs as ``train/actor_lr``)."""
        for stacked_optim, seed_optims in self._optimizer_pairs():
            for optim in seed_optims:
                optim.param_groups[0]["lr"] = float(stacked_optim.param_groups[0]["lr"])
        for learner in self.learners:
            for scheduler, seed_scheduler in zip(self.lr_schedulers, learner.lr_schedulers, strict=True):
                seed_scheduler.load_state_dict(scheduler.state_dict())

    # ------------------------------------------------------------------ the update
    def capture_cuda_graph(self, eager_on_failure: bool = False) -> None:
        """Replay every later update as one CUDA graph (see :class:`morec.learners.cuda_graph.CapturedUpdate`)."""
        from morec.learners.cuda_graph import CapturedUpdate

        self.captured_update, self._eager_on_capture_failure = CapturedUpdate(self), eager_on_failure

    def update(self, sampler: StackedSampler, batch_size: int) -> ModelBasedStats:
        """One gradient step of every seed, then one step of every seed's learning-rate schedulers."""
        start = time.perf_counter()
        rows = sampler.draw_rows(batch_size)
        splits = {(len(real), 0 if model is None else len(model)) for real, model in rows}
        if len(splits) == 1:
            real_rows = torch.stack([real for real, _ in rows])
            model_rows = None if rows[0][1] is None else torch.stack([cast(torch.Tensor, model) for _, model in rows])
            stats = replay_or_none(self, sampler, real_rows, model_rows) if self.captured_update is not None else None
            if stats is None:
                stats = self.update_with_batch(sampler.gather(real_rows, model_rows))
        else:  # a seed whose model buffer is still empty trains on real rows only: step the seeds one by one
            stats = self._update_each_seed(sampler, rows)
        with warnings.catch_warnings():  # after a step of the seeds' own optimizers, the stack's did not step
            warnings.filterwarnings(
                "ignore", message=re.escape("Detected call of `lr_scheduler.step()` before `optimizer.step()`")
            )
            for scheduler in self.lr_schedulers:
                scheduler.step()
        stats.train_time = time.perf_counter() - start
        return stats

    def _update_each_seed(self, sampler: StackedSampler, rows) -> ModelBasedStats:
        self.write_to_seeds()
        per_seed = [
            learner.update_with_batch(seed_sampler.gather(*seed_rows))
            for learner, seed_sampler, seed_rows in zip(self.learners, sampler.samplers, rows)
        ]
        self.read_from_seeds()
        stacked: dict[str, Any] = {
            key: torch.stack([getattr(s, key) for s in per_seed]) for key in ModelBasedStats.SCALARS
        }
        return ModelBasedStats(**stacked)

    @staticmethod
    def seed_stats(stats: ModelBasedStats, seed_index: int) -> ModelBasedStats:
        """One seed's scalars (0-dim tensors) of a stacked update's ``[S]`` stats."""
        return ModelBasedStats(
            **{key: getattr(stats, key)[seed_index] for key in ModelBasedStats.SCALARS}, train_time=stats.train_time
        )

    def networks(self) -> SACNetworks:
        """The stacked networks and optimizers, as :func:`~morec.learners.sac_step.sac_step` reads them."""
        return SACNetworks(
            actor_sample=self.actor.sample,
            critic=self.critic,
            critic_target=self.critic_target,
            actor_critic=self.critic_target if self.actor_on_target_critics else self.critic,
            log_alpha=self.log_alpha,
            critic_optim=self.critic_optim,
            actor_optim=self.actor_optim,
            alpha_optim=self.alpha_optim if self.config.auto_alpha else None,
        )

    def next_state_sampler(self) -> NextStateSampler | None:
        """The seeds' next-state samplers as one: ``[S, B, O]`` -> ``[S, n, E, B, O + 1]``, each seed's
        rows from its own (``None`` when the algorithm samples none)."""
        samplers = [learner.next_state_sampler() for learner in self.learners]
        if any(sample is None for sample in samplers):
            return None
        each = cast(list[NextStateSampler], samplers)
        return lambda obs, act, n: torch.stack([sample(o, a, n) for sample, o, a in zip(each, obs, act, strict=True)])

    def update_with_batch(self, batch: MixedBatch) -> ModelBasedStats:
        """One gradient step of every seed on ``batch`` (fields ``[S, B, ...]``): the plain learner's
        :func:`~morec.learners.sac_step.sac_step` with the first seed's hooks."""
        return sac_step(self.networks(), batch, self.learners[0].step_settings(self.next_state_sampler()))
