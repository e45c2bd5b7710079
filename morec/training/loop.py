"""The training loop of `morec train`, over components built elsewhere (:mod:`morec.training.pipeline`),
in a run folder (:class:`~morec.training.run_directory.RunDirectory`).

:class:`TrainingLoop` only loops: epochs of gradient steps with a model rollout every
``rollout.freq`` steps, an evaluation every ``train.eval_every`` epochs, TensorBoard scalars, a
checkpoint per epoch and, with ``resume=True``, the state of the last checkpoint (the resumed run
reproduces the uninterrupted one). With a :class:`~morec.training.background_evaluation.BackgroundEvaluator`
an epoch's evaluation runs in another process during the next epoch and is recorded at that
epoch's end; a checkpoint names the evaluation in flight, and a resumed run evaluates it again
from the checkpoint's actor, which is the one it was of.
"""

from __future__ import annotations

import json
import math
import sys
import time
import warnings
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tianshou.utils.torch_utils import policy_within_training_step
from torch.utils.tensorboard import SummaryWriter

from morec.data import OfflineDataset
from morec.dynamics import EnsembleDynamics
from morec.errors import UserError
from morec.io import atomic_write
from morec.learners.networks import sample_action
from morec.learners.sac import ModelBasedSAC, ModelBasedStats
from morec.learners.sampler import MixedSampler
from morec.progress import draws_bar, progress_bar
from morec.provenance import code_version, machine
from morec.rollout.buffer import ModelBuffer, TransitionBatch
from morec.rollout.engine import RolloutEngine
from morec.rollout.policies import export_actor_mode
from morec.shaping.setup import RewardShaping
from morec.training.background_evaluation import BackgroundEvaluator
from morec.training.config import TrainConfig
from morec.training.evaluation import Evaluator
from morec.training.run_directory import RunDirectory


class TrainingDiverged(UserError):
    """The learner's losses stopped being finite (one line naming the likely cause and the fix)."""


@dataclass
class UpdateRequest:
    """A gradient step a run's :meth:`TrainingLoop.steps` asks for: ``batch_size`` rows from
    ``sampler``. ``reads`` says what the run reads of its learner before its next request: its
    weights (``"learner"``: a rollout or the epoch's end), its learning-rate schedule
    (``"schedule"``: a logged step), or nothing (``None``); a driver that updates a stack of runs'
    learners at once writes that much back into each run's own learner before sending the stats."""

    sampler: MixedSampler
    batch_size: int
    reads: str | None


@dataclass
class TrainingComponents:
    """What the loop runs on, built by :func:`morec.training.pipeline.build_components`."""

    dataset: OfflineDataset  # the data as loaded (the models trained on it; its mean return goes into the summary)
    real: TransitionBatch  # the learner's data (rewards shaped where shaping says) on the device: rollout starts, rows
    dynamics: EnsembleDynamics  # the ensemble the engine rolls through
    engine: RolloutEngine  # model rollouts (selector, reward transform, penalty) into model_buffer
    model_buffer: ModelBuffer
    sample_generator: torch.Generator  # rollout start states and training batches
    sampler: MixedSampler  # training batches: real and model rows
    algorithm: ModelBasedSAC
    evaluator: Evaluator | BackgroundEvaluator  # the latter in another process (train.evaluate_in_background)
    shaping: RewardShaping  # the shaping: section as built (its record goes into the summary)
    model_dirs: dict[str, str | None]  # cache folders of the "dynamics" and the "reward" (None without MOREC)


class TrainingLoop:
    """Trains ``components.algorithm`` to ``cfg.train.epochs`` in ``run`` (a :class:`RunDirectory`,
    closed when :meth:`run` returns). ``resume=True`` continues from the run's checkpoint."""

    # warn when the filter cuts this fraction of the first rollout's start states into fake terminals
    TRUNCATION_WARNING_RATE = 0.9

    def __init__(
        self,
        cfg: TrainConfig,
        run: RunDirectory,
        components: TrainingComponents,
        resume: bool = False,
        show_progress: bool = True,
    ):
        self.cfg, self.run_directory, self.components, self.progress = cfg, run, components, show_progress
        self.checkpoint_path = run.checkpoint
        parts = components
        self.dataset, self.real, self.dynamics, self.engine = parts.dataset, parts.real, parts.dynamics, parts.engine
        self.model_buffer, self.sample_gen, self.sampler = parts.model_buffer, parts.sample_generator, parts.sampler
        self.algo, self.evaluator, self.shaping = parts.algorithm, parts.evaluator, parts.shaping
        self.epoch, self.gradient_step, self.evaluations = 0, 0, []
        self.evaluation_to_redo: dict[str, int] | None = None  # in flight when the loaded checkpoint was written
        self.seconds_before_session = 0.0  # training time of earlier sessions of a resumed run
        self.rollouts: list[dict[str, float]] = []  # per model rollout: its statistics (for the summary)
        self.stacked_with_seeds: list[int] | None = (
            None  # set by morec.training.seeds when its updates are stacked with other seeds'
        )
        self.bar_position = 0  # the progress bar's line (morec.training.seeds gives each seed its own)
        # the code and processor each stretch of epochs ran on:
        # [{"code": "960f30d", "machine": "AMD EPYC (AVX2)", "from_epoch": 1}, ...]
        self.code_versions: list[dict[str, Any]] = []
        if resume:
            self._load_checkpoint()
        stretch = {"code": code_version(), "machine": machine(self.real.observations.device)}
        last = self.code_versions[-1] if self.code_versions else {}
        if (last.get("code"), last.get("machine")) != (stretch["code"], stretch["machine"]):
            self.code_versions.append({**stretch, "from_epoch": self.epoch + 1})
        # a resumed run drops events logged after its checkpoint (they are about to be written again)
        self.writer = SummaryWriter(str(run.tb), purge_step=self.gradient_step + 1 if resume else None)

    # ------------------------------------------------------------------ checkpoints
    def _save_checkpoint(self) -> None:
        state = {
            "epoch": self.epoch,
            "gradient_step": self.gradient_step,
            "evaluations": self.evaluations,
            "evaluation_in_flight": self.evaluator.pending,
            "rollouts": self.rollouts,
            "seconds": self.seconds_before_session + time.perf_counter() - self.session_start,
            "code_versions": self.code_versions,
            "algorithm": self.algo.training_state(),
            "lr_schedulers": [s.state_dict() for s in self.algo.lr_schedulers],
            "model_buffer": self.model_buffer.state_dict(),
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                "sample": self.sample_gen.get_state(),
                "engine": self.engine.generator.get_state(),
                "numpy": np.random.get_state(),
            },
        }
        atomic_write(self.checkpoint_path, lambda tmp: torch.save(state, tmp))

    def _load_checkpoint(self) -> None:
        state = torch.load(self.checkpoint_path, map_location="cpu", weights_only=False)
        self.algo.load_training_state(state["algorithm"])
        for scheduler, sd in zip(self.algo.lr_schedulers, state["lr_schedulers"]):
            scheduler.load_state_dict(sd)
        self.model_buffer.load_state_dict(state["model_buffer"])
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        if rng["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        self.sample_gen.set_state(rng["sample"])
        self.engine.generator.set_state(rng["engine"])
        np.random.set_state(rng["numpy"])
        self.epoch, self.gradient_step, self.evaluations = state["epoch"], state["gradient_step"], state["evaluations"]
        self.evaluation_to_redo = state.get("evaluation_in_flight")
        self.rollouts = state.get("rollouts", [])  # checkpoints written before rollouts were recorded: from here on
        self.seconds_before_session = state.get("seconds", 0.0)  # older checkpoints: from here on
        # checkpoints written before the code (or the machine) was recorded: its epochs so far ran on unrecorded ones
        self.code_versions = state.get("code_versions") or [{"code": "unrecorded", "from_epoch": 1}]

    # ------------------------------------------------------------------ training
    def rollout(self) -> None:
        cfg = self.cfg.rollout
        rows = torch.randint(
            len(self.real), (cfg.batch_size,), device=self.real.observations.device, generator=self.sample_gen
        )
        actor = self.algo.actor
        with torch.no_grad():
            stats = self.engine.rollout(
                self.real.observations[rows], lambda o: sample_action(actor, o)[0], self.model_buffer
            )
        step = self.gradient_step
        self.writer.add_scalar("rollout/mean_length", stats.mean_length, step)
        self.writer.add_scalar("rollout/transitions", stats.transitions, step)
        self.writer.add_scalar("rollout/reward_mean", stats.reward_mean, step)
        self.writer.add_scalar("rollout/penalty_mean", stats.penalty_mean, step)
        self.writer.add_scalar("rollout/truncation_rate", stats.stopped / max(stats.start_states, 1), step)
        self.writer.add_scalar("rollout/termination_rate", stats.terminated / max(stats.start_states, 1), step)
        self.writer.add_scalar("rollout/divergence_rate", stats.diverged / max(stats.start_states, 1), step)
        for key, value in stats.selector.items():
            self.writer.add_scalar(f"rollout/{key}", value, step)
        starts = max(stats.start_states, 1)
        self.rollouts.append(
            {
                "mean_length": stats.mean_length,
                "transitions": stats.transitions,
                "truncation_rate": stats.stopped / starts,
                "termination_rate": stats.terminated / starts,
                "divergence_rate": stats.diverged / starts,  # rows the model diverged on, ended unwritten
                "reward_mean": stats.reward_mean,
                "model_buffer_size": len(self.model_buffer),
            }
        )
        if len(self.rollouts) == 1:
            self._warn_if_the_filter_ends_almost_every_rollout(self.rollouts[0])

    def _warn_if_the_filter_ends_almost_every_rollout(self, first: dict[str, float]) -> None:
        """A filter that cuts nearly every rollout short with ``truncate_as: terminal`` fills the model
        data with fake terminals, and the critic learns a horizon of a few steps: on HalfCheetah and
        Hopper medium-replay that made MOPO + MOREC fail (docs/morec_learning). Cuts written as ``stop``
        did not. Said once, at the first rollout."""
        if (
            not self.cfg.morec
            or self.cfg.filter.truncate_as != "terminal"
            or first["truncation_rate"] < self.TRUNCATION_WARNING_RATE
        ):
            return
        warnings.warn(
            f"the MOREC filter (filter.threshold={self.cfg.filter.threshold}) cut {first['truncation_rate']:.0%} of "
            f"the first rollout's start states short (mean length {first['mean_length']:.1f} of "
            f"{self.cfg.rollout.horizon}) and marked each cut a terminal; if the learner stalls, use "
            "filter.truncate_as=stop (the recommended MOREC configs do) or filter.threshold=auto",
            stacklevel=2,
        )

    def steps(
        self, on_evaluation: Callable[[dict[str, Any]], None] | None = None
    ) -> Generator[UpdateRequest, ModelBasedStats, dict]:
        """The run, top to bottom: epochs of gradient steps, a model rollout every ``rollout.freq``
        steps, scalars every ``train.log_every``, and per epoch the evaluation (when due) and the
        checkpoint. It yields an :class:`UpdateRequest` where a gradient step is due, is sent that
        step's stats back, and returns the summary. :meth:`run` performs the steps with the run's
        own learner; :func:`morec.training.seeds.train_seeds` drives several runs' steps in lockstep, one
        stacked update for all of them if it likes. ``on_evaluation(record)`` is called after each
        evaluation once a checkpoint holding it is written (a sweep reports the score there)."""
        cfg, steps_per_epoch = self.cfg.train, self.cfg.train.steps_per_epoch
        self._start_session()
        while self.epoch < cfg.epochs:
            for _ in range(steps_per_epoch):
                if self.gradient_step % self.cfg.rollout.freq == 0:
                    self.rollout()
                after = self.gradient_step + 1  # what the run reads of its learner before its next request:
                reads = (
                    "learner"
                    if after % steps_per_epoch == 0 or after % self.cfg.rollout.freq == 0  # epoch end, rollout
                    else "schedule"
                    if after % cfg.log_every == 0
                    else None
                )  # a logged learning rate
                stats = yield UpdateRequest(self.sampler, cfg.batch_size, reads)
                self.gradient_step = after
                self._window_steps += 1
                self.bar.update(1)
                if after % cfg.log_every == 0:
                    self._log_training(stats)
            if self.gradient_step % cfg.log_every:  # the epoch's last step was not logged, so not checked
                self._stop_if_diverged(stats)  # before the epoch's evaluation and checkpoint
            self._end_epoch(on_evaluation)
        return self._finish(on_evaluation)

    def run(self, on_evaluation: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Train to the end with this run's learner and return the summary (see :meth:`steps`).
        Releases the run directory."""
        try:
            steps = self.steps(on_evaluation)
            request = next(steps)
            while True:
                with policy_within_training_step(self.algo.policy):
                    stats = self.algo.update(request.sampler, request.batch_size)
                request = steps.send(stats)
        except StopIteration as finished:
            return finished.value
        finally:
            self.close()

    def close(self) -> None:
        """Stop the evaluation process, if any, and release the run directory."""
        self.evaluator.close()
        self.run_directory.close()

    def _start_session(self) -> None:
        """This session's clock, progress bar and throughput window; an evaluation a resumed
        checkpoint had in flight started again (its actor is the checkpoint's)."""
        self.session_start = time.perf_counter()
        total = self.cfg.train.epochs * self.cfg.train.steps_per_epoch
        self.bar = progress_bar(
            self.progress,
            total=total,
            initial=self.gradient_step,
            desc=self.cfg.name,
            unit="step",
            line_every=None,
            position=self.bar_position,
        )
        self._window_start, self._window_steps = time.perf_counter(), 0
        if self.evaluation_to_redo is not None:
            redo, self.evaluation_to_redo = self.evaluation_to_redo, None
            self._start_evaluation(redo)

    def _end_epoch(self, on_evaluation: Callable[[dict[str, Any]], None] | None) -> None:
        self.epoch += 1
        recorded = self._record_evaluation_in_flight()
        if self.epoch % self.cfg.train.eval_every == 0 or self.epoch == self.cfg.train.epochs:
            self._start_evaluation({"epoch": self.epoch, "gradient_step": self.gradient_step})
            if not self.evaluator.in_background:
                recorded = self._record_evaluation_in_flight()
        self._save_checkpoint()
        if recorded is not None and on_evaluation is not None:
            on_evaluation(recorded)
        self._window_start, self._window_steps = time.perf_counter(), 0  # evaluations are not training time

    def _finish(self, on_evaluation: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Record the last evaluation, write the summary and the final policy; return the summary."""
        recorded = self._record_evaluation_in_flight()
        if recorded is not None and on_evaluation is not None:
            on_evaluation(recorded)
        self.bar.close()
        summary = self._summary(time.perf_counter() - self.session_start)
        export_actor_mode(self.algo.actor, self.dataset.obs_dim, self.run_directory.policy)
        atomic_write(self.run_directory.summary, lambda tmp: tmp.write_text(json.dumps(summary, indent=2)))
        self.writer.close()
        return summary

    def _log_training(self, stats: ModelBasedStats) -> None:
        """The update's scalars (reading them waits for the device) and the steps/s since the last
        log: measured after that wait, so queued device work is counted where it runs ahead."""
        step = self.gradient_step
        values = {key: float(getattr(stats, key)) for key in ModelBasedStats.SCALARS}  # the only read of the device
        for key, value in values.items():
            self.writer.add_scalar(f"train/{key}", value, step)
        self._stop_if_diverged(stats, values)
        now = time.perf_counter()
        self.writer.add_scalar("perf/gradient_steps_per_s", self._window_steps / (now - self._window_start), step)
        self.writer.add_scalar("train/actor_lr", float(self.algo.lr_schedulers[0].get_last_lr()[0]), step)
        self._window_start, self._window_steps = now, 0

    def _stop_if_diverged(self, stats: ModelBasedStats, values: dict[str, float] | None = None) -> None:
        """Stop with :class:`TrainingDiverged` once the update's scalars are not finite (``values``:
        already read; else read now, once an epoch). The checkpoint on disk is the last finite epoch's."""
        if values is None:
            values = {key: float(getattr(stats, key)) for key in ModelBasedStats.SCALARS}
        bad = [f"train/{key}" for key, value in values.items() if not math.isfinite(value)]
        if not bad:
            return
        last = self.rollouts[-1].get("reward_mean") if self.rollouts else None  # older checkpoints: not recorded
        rollout = (
            ""
            if last is None
            else f"; the last model rollout's mean reward was {last:.3g} (the data's "
            f"{float(self.real.rewards.mean()):.3g})"
        )
        raise TrainingDiverged(
            f"training diverged by gradient step {self.gradient_step}: {', '.join(bad)} not finite{rollout}. "
            f"Model rollouts that run far from the data do this: clip them with rollout.candidate_clip (the "
            f"released MOREC code clips at 25 on D4RL) or shorten rollout.horizon "
            f"(now {self.cfg.rollout.horizon}). The checkpoint of epoch {self.epoch} is kept."
        )

    def _start_evaluation(self, tag: dict[str, int]) -> None:
        """Evaluate the policy as it is now, for the epoch and step in ``tag`` (at once, or in the
        background process)."""
        self.evaluator.submit(self.algo.policy, self.cfg.train.eval_episodes, self.cfg.seed + 1000 * tag["epoch"], tag)

    def _record_evaluation_in_flight(self) -> dict[str, Any] | None:
        """The evaluation started last, once finished, in ``evaluations`` and TensorBoard (against
        its own gradient step); ``None`` if there is none."""
        if self.evaluator.pending is None:
            return None
        tag, scores = self.evaluator.wait()
        record = {**tag, **scores}
        self.evaluations.append(record)
        for key in ("return_mean", "return_std", "normalized_score", "normalized_score_std"):
            self.writer.add_scalar(f"eval/{key}", record[key], record["gradient_step"])
        self.writer.flush()
        self.bar.set_postfix(score=f"{record['normalized_score']:.1f}")
        if not draws_bar(self.progress):  # a log file: one line per evaluation instead of a bar
            self._print_evaluation(time.perf_counter() - self.session_start)
        return record

    def _print_evaluation(self, seconds: float) -> None:
        record, best = self.evaluations[-1], max(e["normalized_score"] for e in self.evaluations)
        print(
            f"epoch {record['epoch']}/{self.cfg.train.epochs} (step {record['gradient_step']}): "
            f"score {record['normalized_score']:.1f} (best {best:.1f}), return {record['return_mean']:.1f}, "
            f"{seconds:.0f} s this session",
            file=sys.stderr,
            flush=True,
        )

    def _summary(self, seconds: float) -> dict[str, Any]:
        scores = [e["normalized_score"] for e in self.evaluations]
        return {
            "task": self.cfg.task,
            "algorithm": self.cfg.algorithm,
            "morec": self.cfg.morec,
            "seed": self.cfg.seed,
            "gradient_steps": self.gradient_step,
            "epochs": self.epoch,
            "last_score": scores[-1] if scores else None,
            "last10_mean_score": float(np.mean(scores[-10:])) if scores else None,
            "best_score": max(scores) if scores else None,
            "last_return": self.evaluations[-1]["return_mean"] if scores else None,
            "dataset_mean_return": float(self.dataset.returns().mean()),
            "shaping": self.shaping.summary(),
            "rollouts": rollout_summary(self.rollouts),
            "models": self.components.model_dirs,
            "stacked_with_seeds": self.stacked_with_seeds,
            "policy": self.run_directory.policy.name,
            "wall_seconds_this_session": round(seconds, 1),
            "wall_seconds": round(self.seconds_before_session + seconds, 1),
            "code_versions": self.code_versions,
            "evaluations": self.evaluations,
        }


def rollout_summary(rollouts: list[dict[str, float]]) -> dict[str, float | int | None]:
    """Means over a run's model rollouts (``mean_length``: transitions per start state;
    ``truncation_rate``: rollouts the filter cut; ``termination_rate``: ended by the task's
    termination; ``divergence_rate``: ended where the model's prediction was not finite) and the
    model buffer's size after the last one."""
    if not rollouts:
        return {
            "count": 0,
            "mean_length": None,
            "transitions": None,
            "truncation_rate": None,
            "termination_rate": None,
            "divergence_rate": None,
            "model_buffer_size": None,
        }
    means = {
        k: float(np.mean([r.get(k, 0.0) for r in rollouts]))  # .get: records of older runs lack divergence_rate
        for k in ("mean_length", "transitions", "truncation_rate", "termination_rate", "divergence_rate")
    }
    return {"count": len(rollouts), **means, "model_buffer_size": int(rollouts[-1]["model_buffer_size"])}
