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
  :class:`~algos.stacked_learner.StackedSAC`, its parameters with a seed dimension, one batched
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
``stacked_with_seeds`` names the seeds a run was stacked with.

Running the seeds' CUDA graphs side by side on CUDA streams of their own (lockstep) was tried and
ended in an illegal memory access with 8 seeds (2 passed); likely causes, both shared between the
seeds' graphs: cuBLAS's workspace and the CUDA generator's graph-side seed and offset.
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

from .config import ConfigError, TrainConfig
from .trainer import TrainingLoop


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``; a clear error for anything else."""
    seeds = []
    for part in text.split(","):
        try:
            seeds.append(int(part.strip()))
        except ValueError:
            raise ConfigError(f"--seeds: {part.strip()!r} is not an integer; give comma-separated integers, e.g. --seeds 0,1,2") from None
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


def train_seeds(cfg: TrainConfig, run_root: str | Path, seeds: Sequence[int], resume: bool = False,
                show_progress: bool = True) -> list[dict[str, Any]]:
    """Train ``cfg`` once per seed in ``run_root/seed<N>``, in lockstep in this process; return the
    summaries in the order of ``seeds``. ``resume=True`` continues each seed from its checkpoint; a
    seed stopped before its first checkpoint starts again. Where ``train.stack_seeds`` says, the
    seeds' updates run as one :class:`~algos.stacked_learner.StackedSAC`."""
    from .train import Trainer

    loops, scopes = [], []
    try:
        for seed in seeds:  # built one after another: each build seeds the global generators with its seed
            run_dir = Path(run_root) / f"seed{seed}"
            own_resume = resume and (run_dir / "checkpoint.pt").exists()
            loops.append(Trainer(replace(cfg, seed=seed), run_dir, resume=own_resume, show_progress=show_progress))
            scopes.append(RunScope(cfg.device))
        for position, (loop, scope) in enumerate(zip(loops, scopes)):
            with scope.entered():
                loop.begin(bar_position=position)
        if cfg.train.stacks_seeds(cfg.device):
            _catch_up(loops, scopes)
            _train_stacked(cfg, loops, scopes, list(seeds))
        while not all(loop.done for loop in loops):
            for loop, scope in zip(loops, scopes):
                if not loop.done:
                    with scope.entered():
                        loop.step()
        summaries = []
        for loop, scope in zip(loops, scopes):
            with scope.entered():
                summaries.append(loop.finish())
        return summaries
    finally:
        for loop in loops:
            loop.close()


def _catch_up(loops: Sequence[TrainingLoop], scopes: Sequence[RunScope]) -> None:
    """Bring seeds whose checkpoints are behind the others' (a run killed between the seeds'
    checkpoints) to the same gradient step, each on its own, so that the stack starts together."""
    target = max(loop.gradient_step for loop in loops)
    behind = [(loop, scope) for loop, scope in zip(loops, scopes) if loop.gradient_step < target]
    if not behind:
        return
    names = ", ".join(str(loop.cfg.seed) for loop, _ in behind)
    warnings.warn(f"seeds {names} resume behind the others (the run stopped between the seeds' checkpoints); they train "
                  f"on their own to step {target} before the stack resumes, so these seeds' runs differ from an "
                  "uninterrupted stacked run", stacklevel=3)
    for loop, scope in behind:
        with scope.entered():
            while loop.gradient_step < target:
                loop.step()


def _train_stacked(cfg: TrainConfig, loops: Sequence[TrainingLoop], scopes: Sequence[RunScope], seeds: list[int]) -> None:
    """Train all ``loops`` (at one gradient step) to the end with one stacked update per step. The
    update draws its noise in the first seed's scope (so a stack of one seed is that seed's run);
    rollouts, evaluations and checkpoints stay each seed's own, and read the seeds' own learners,
    which the stack writes into first."""
    from .stacked_learner import StackedSAC, StackedSampler

    stack = StackedSAC([loop.algo for loop in loops])
    sampler = StackedSampler([loop.sampler for loop in loops])
    if cfg.train.compiles(cfg.device) and torch.device(cfg.device).type == "cuda":
        stack.capture_cuda_graph(eager_on_failure=cfg.train.compile == "auto")
    for loop in loops:
        loop.stacked_with_seeds = seeds
    first = loops[0]
    while not first.done:
        if first.rollout_due:
            stack.write_to_seeds()
        for loop, scope in zip(loops, scopes):
            with scope.entered():
                loop.before_update()
        with scopes[0].entered():
            stats = stack.update(sampler, cfg.train.batch_size)
        if first.epoch_ends_after_update:
            stack.write_to_seeds()
        elif first.logs_after_update:
            stack.write_schedules_to_seeds()
        for index, (loop, scope) in enumerate(zip(loops, scopes)):
            with scope.entered():
                loop.after_update(StackedSAC.seed_stats(stats, index))
    stack.write_to_seeds()
