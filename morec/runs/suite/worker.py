"""One run of a suite: a training child process (``python -m morec.runs.suite``), resumed from
its checkpoint when there is one, retried a bounded number of times, its output appended to
``<run_dir>/stdout.log``.

The worker resolves the run's config (the variant's file, the suite's overrides, the dataset, the
shared cache and the seed set on the dataclass, never passed as command-line text) and writes it to
``<run_dir>/requested_config.yaml``; the child loads that file and calls
:func:`morec.training.pipeline.run_training`. The same function runs in a local thread
(process-pool backend) and in a Ray task, so both backends launch identical children and produce
identical results.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from morec.errors import UserError
from morec.runs.suite.plan import RunSpec, SuiteConfig
from morec.training.run_directory import CHECKPOINT_FILE, SUMMARY_FILE

if TYPE_CHECKING:
    from morec.training.config import TrainConfig

ERROR_TAIL_LINES = 20


class Children:
    """The training processes one suite started, so it can stop them (and start no more) when it is
    interrupted; several suites in one process each have their own."""

    def __init__(self) -> None:
        self.live: set[subprocess.Popen] = set()
        self.stopping = threading.Event()

    def stop(self) -> None:
        """Terminate the live children (their checkpoints stay valid: every write is atomic) and
        start no more attempts."""
        self.stopping.set()
        for child in list(self.live):
            child.terminate()


_RAY_TASK_CHILDREN = Children()  # a Ray task's process runs one run at a time


@dataclass
class RunOutcome:
    run: RunSpec
    ok: bool
    seconds: float
    attempts: int
    score: float | None = None  # the last normalised score
    error: str | None = None  # last failed attempt: its final log line (the exception), then the log's tail


def read_summary(run_dir: Path) -> dict | None:
    try:
        summary = json.loads((run_dir / SUMMARY_FILE).read_text())
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) and summary.get("last_score") is not None else None


def is_finished(run: RunSpec, results: Path) -> bool:
    """A run is finished when it left a valid summary.json."""
    return read_summary(run.run_dir(results)) is not None


REQUESTED_CONFIG = "requested_config.yaml"
CHILD_MODULE = "morec.runs.suite"  # its __main__ runs train_child


def run_config(run: RunSpec, cfg: SuiteConfig) -> TrainConfig:
    """The run's training config: its variant's file with the suite's overrides, then the dataset,
    the suite's shared model cache and the run's seed set on the dataclass."""
    from morec.training.config import load_config

    resolved = load_config(cfg.config_path(run), cfg.overrides, overlays=cfg.overlays)
    return replace(
        resolved, cache_dir=str(cfg.results / "cache"), seed=run.seed, dataset=cfg.dataset or resolved.dataset
    )


def train_command(run: RunSpec, cfg: SuiteConfig) -> list[str]:
    """The child's command line, after writing the run's resolved config for it."""
    from morec.io import atomic_write, plain

    run_dir = run.run_dir(cfg.results)
    text = yaml.safe_dump(plain(run_config(run, cfg).to_dict()), sort_keys=False)
    atomic_write(run_dir / REQUESTED_CONFIG, lambda tmp: tmp.write_text(text))
    return [
        sys.executable,
        "-m",
        CHILD_MODULE,
        str(run_dir / REQUESTED_CONFIG),
        str(run_dir),
        *(["--resume"] if (run_dir / CHECKPOINT_FILE).exists() else []),
    ]


def train_child(argv: list[str]) -> int:
    """The child: train the config file ``argv[0]`` in the run folder ``argv[1]`` (``--resume``:
    from its checkpoint), one line per evaluation; a mistake in the input is one ``morec: error:`` line, exit 2."""
    from morec.allocator import keep_freed_memory
    from morec.training.config import load_config
    from morec.training.pipeline import run_training

    keep_freed_memory()  # a process of its own, as `morec train` is: the same allocator settings
    config_file, run_dir, *flags = argv
    try:
        run_training(load_config(config_file), run_dir, resume="--resume" in flags, show_progress=False)
    except UserError as err:
        print(f"morec: error: {' '.join(str(err).split())}", file=sys.stderr, flush=True)
        return 2
    return 0


def _find_prctl():
    """glibc's ``prctl``, or ``None`` where there is none (not Linux): looked up once, here, because
    loading a library in a forked child (``preexec_fn``) can deadlock when other threads of the parent
    (the pool backend's) held the loader's lock at the fork."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl  # an instance of our own: its argtypes are ours
        prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
        prctl.restype = ctypes.c_int
        return prctl
    except (OSError, AttributeError):
        return None  # no glibc (e.g. musl): the suite's own shutdown still stops its children


_PRCTL = _find_prctl()
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child: get SIGKILL when the worker that started it dies (Linux), so a killed suite
    leaves no training process behind. Only calls the ``prctl`` resolved at import: no library is
    loaded between fork and exec."""
    _PRCTL(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


def _describe_failure(code: int, log_path: Path, offset: int) -> str:
    with open(log_path, "rb") as fh:
        fh.seek(offset)
        lines = [line for line in fh.read().decode(errors="replace").splitlines() if line.strip()][
            1:
        ]  # minus the header
    cause = lines[-1] if lines else "no output"
    if code < 0:
        cause = f"killed by signal {-code}; last output: {cause}"
    return f"{cause}\n(exit code {code}; full log {log_path})\n" + "\n".join(lines[-ERROR_TAIL_LINES:])


def execute_run(run: RunSpec, cfg: SuiteConfig, children: Children = _RAY_TASK_CHILDREN) -> RunOutcome:
    """Train ``run`` to the end (up to ``1 + cfg.retries`` attempts), its child process one of
    ``children``; never raises for a failed run (a mistake in its config fails it at once, with the
    one-line error, without retries). A run that another suite finished after this one was
    planned is not started (0 attempts)."""
    run_dir = run.run_dir(cfg.results)
    finished = read_summary(run_dir)
    if finished is not None:
        return RunOutcome(run, True, 0.0, 0, score=finished["last_score"])
    run_dir.mkdir(parents=True, exist_ok=True)
    log_path = run_dir / "stdout.log"
    env = {**os.environ, **cfg.env, "PYTHONUNBUFFERED": "1"}
    start, error = time.perf_counter(), None
    for attempt in range(1, cfg.retries + 2):
        if children.stopping.is_set():
            return RunOutcome(run, False, time.perf_counter() - start, attempt - 1, error="the suite was interrupted")
        try:
            cmd = train_command(run, cfg)
        except UserError as err:  # the run's config (its file, the suite's --set): every attempt would fail alike
            error = f"morec: error: {' '.join(str(err).split())}"
            with open(log_path, "ab") as log:
                log.write(f"\n=== attempt {attempt}: no child started\n{error}\n".encode())
            return RunOutcome(run, False, time.perf_counter() - start, attempt, error=error)
        with open(log_path, "ab") as log:
            offset = log.tell()
            log.write(f"\n=== attempt {attempt}: {' '.join(cmd)}\n".encode())
            log.flush()
            child = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                preexec_fn=_die_with_parent if _PRCTL is not None else None,
            )
            children.live.add(child)
            try:
                code = child.wait()
            finally:
                children.live.discard(child)
        summary = read_summary(run_dir)
        if code == 0 and summary is not None:
            return RunOutcome(run, True, time.perf_counter() - start, attempt, score=summary["last_score"])
        error = _describe_failure(code, log_path, offset)
    return RunOutcome(run, False, time.perf_counter() - start, cfg.retries + 1, error=error)
