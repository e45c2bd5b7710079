"""Several seeds of one config trained in one process: :func:`train_seeds` (``morec train --seeds``).

Each seed is a whole run of its own, in ``<run_root>/seed<N>``: its config (``seed: N``), data
sampling, rollouts, model buffer, evaluations, TensorBoard, checkpoints and resume, what
``morec train --set seed=N --run-dir <run_root>/seed<N>`` writes. Two ways to step them
(``train.stack_seeds``):

- **lockstep** (``off``; ``auto`` on the CPU): one gradient step of each seed in turn, each seeing
  only its own random state (the global generators, torch, CUDA and numpy, are swapped in around its
  work), so every seed's run is the separate run, bit for bit (tested on the CPU). One process
  instead of S, not a faster one: the seeds' steps run one after another.
- **stacked** (``on``; ``auto`` on CUDA): one update of all seeds as a
  :class:`~morec.learners.stacked.StackedSAC`, its parameters with a seed dimension, one batched
  product per layer, and on CUDA one captured graph for all seeds. Rollouts, evaluations and
  checkpoints stay each seed's own. The update's noise is drawn for all seeds at once in the first
  seed's random state, so a stack of one seed is that seed's run (to float rounding), and a stack
  of S seeds is S independent runs, not the S separate runs bit for bit. A stacked run resumes to
  the uninterrupted stacked run; if it was stopped between the seeds' checkpoints, the seeds left
  behind first train on their own up to the others (with a warning).

Whether seeds share a dynamics model and dynamics reward is the config's ``model_seed``, as for
separate runs: unset, each seed trains (or loads from the cache) its own (a stacked MOBILE penalty
then samples each seed's next states from its own ensemble); ``model_seed: 0`` makes them share
one, trained once. Each run's ``config.yaml`` and ``summary.json`` say which, and the summary's
``stacked_with_seeds`` names the seeds a run was stacked with. (Why the seeds' CUDA graphs do not
run on streams of their own: docs/cuda_check.md.)
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tianshou.utils.torch_utils import policy_within_training_step

from morec.learners.sac_step import ModelBasedStats
from morec.training.config import ConfigError, TrainConfig
from morec.training.loop import TrainingLoop, UpdateRequest
from morec.training.run_directory import RunDirectory


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``; a clear error for anything else."""
    seeds = []
    for part in text.split(","):
        try:
            seeds.append(int(part.strip()))
        except ValueError:
            raise ConfigError(
                f"--seeds: {part.strip()!r} is not an integer; give comma-separated integers, e.g. --seeds 0,1,2"
            ) from None
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise ConfigError(f"--seeds: {repeated} given more than once; each seed is one run directory")
    return seeds


class RunScope:
    """One run's global random state (torch, CUDA, numpy): entered around everything the run does,
    left with the state it reached."""

    def __init__(self, device: str):
        self.cuda = torch.device(device).type == "cuda"
        self.state = self._read()

    def _read(self) -> tuple:
        return torch.get_rng_state(), torch.cuda.get_rng_state_all() if self.cuda else None, np.random.get_state()

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        cpu, cuda, numpy_state = self.state
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
        np.random.set_state(numpy_state)
        try:
            yield
        finally:
            self.state = self._read()


class SeedRun:
    """One seed's run driven from outside: its :meth:`TrainingLoop.steps` advanced inside its own
    random state (:class:`RunScope`) from one update request to the next."""

    def __init__(self, loop: TrainingLoop, scope: RunScope):
        self.loop, self.scope, self._steps = loop, scope, loop.steps()
        self.request: UpdateRequest | None = None  # the step the run waits for; None once it has ended
        self.summary: dict[str, Any] | None = None

    def advance(self, stats: ModelBasedStats | None = None) -> None:
        """Send the last update's ``stats`` (``None`` to start) and run to the next request or the end."""
        with self.scope.entered():
            try:
                self.request = self._steps.send(stats)
            except StopIteration as finished:
                self.request, self.summary = None, finished.value

    def update_alone(self) -> None:
        """Perform the requested step with this run's own learner, then advance."""
        with self.scope.entered(), policy_within_training_step(self.loop.algo.policy):
            stats = self.loop.algo.update(self.request.sampler, self.request.batch_size)
        self.advance(stats)


def train_seeds(
    cfg: TrainConfig, run_root: str | Path, seeds: Sequence[int], resume: bool = False, show_progress: bool = True
) -> list[dict[str, Any]]:
    """Train ``cfg`` once per seed in ``run_root/seed<N>``, in lockstep in this process; return the
    summaries in the order of ``seeds``. ``resume=True`` continues each seed from its checkpoint; a
    seed stopped before its first checkpoint starts again. Where ``train.stack_seeds`` says, the
    seeds' updates run as one :class:`~morec.learners.stacked.StackedSAC`."""
    from morec.training.pipeline import start_run

    runs: list[SeedRun] = []
    try:
        for position, seed in enumerate(
            seeds
        ):  # started one after another: each seeds the global generators with its seed
            run_dir = RunDirectory.of_seed(run_root, seed)
            own_resume = resume and RunDirectory(run_dir, lock=None).checkpoint.exists()
            loop = start_run(replace(cfg, seed=seed), run_dir, resume=own_resume, show_progress=show_progress)
            loop.bar_position = position
            runs.append(SeedRun(loop, RunScope(cfg.device)))
        for run in runs:
            run.advance()
        if cfg.train.stacks_seeds(cfg.device):
            _catch_up(runs)
            _train_stacked(cfg, runs, list(seeds))
        while any(run.request is not None for run in runs):
            for run in runs:
                if run.request is not None:
                    run.update_alone()
        return [run.summary for run in runs]
    finally:
        for run in runs:
            run.loop.close()


def _catch_up(runs: Sequence[SeedRun]) -> None:
    """Bring seeds whose checkpoints are behind the others' (a run killed between the seeds'
    checkpoints) to the same gradient step, each on its own, so that the stack starts together."""
    target = max(run.loop.gradient_step for run in runs)
    behind = [run for run in runs if run.loop.gradient_step < target]
    if not behind:
        return
    names = ", ".join(str(run.loop.cfg.seed) for run in behind)
    warnings.warn(
        f"seeds {names} resume behind the others (the run stopped between the seeds' checkpoints); they train "
        f"on their own to step {target} before the stack resumes, so these seeds' runs differ from an "
        "uninterrupted stacked run",
        stacklevel=3,
    )
    for run in behind:
        while run.loop.gradient_step < target:
            run.update_alone()


def _train_stacked(cfg: TrainConfig, runs: Sequence[SeedRun], seeds: list[int]) -> None:
    """Train all ``runs`` (at one gradient step) to the end with one stacked update per step. The
    update draws its noise in the first seed's scope (so a stack of one seed is that seed's run);
    rollouts, evaluations and checkpoints stay each seed's own and read the seeds' own learners,
    into which the stack writes what the request says they read."""
    from morec.learners.stacked import StackedSAC, StackedSampler

    stack = StackedSAC([run.loop.algo for run in runs])
    sampler = StackedSampler([run.request.sampler for run in runs])
    if cfg.train.compiles(cfg.device) and torch.device(cfg.device).type == "cuda":
        stack.capture_cuda_graph(eager_on_failure=cfg.train.compile == "auto")
    for run in runs:
        run.loop.stacked_with_seeds = seeds
    while runs[0].request is not None:
        with runs[0].scope.entered():
            stats = stack.update(sampler, cfg.train.batch_size)
        reads = runs[0].request.reads
        if reads == "learner":
            stack.write_to_seeds()
        elif reads == "schedule":
            stack.write_schedules_to_seeds()
        for index, run in enumerate(runs):
            run.advance(StackedSAC.seed_stats(stats, index))
