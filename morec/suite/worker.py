"""One run of a suite: a `morec train` child process, resumed from its checkpoint when there is
one, retried a bounded number of times, its output appended to ``<run_dir>/stdout.log``.

The same function runs in a local thread (process-pool backend) and in a Ray task, so both
backends launch identical commands and produce identical results.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from morec.suite.plan import RunSpec, SuiteConfig

ERROR_TAIL_LINES = 20

# children started by this process, so a local pool can stop them when the suite is interrupted
_live_children: set[subprocess.Popen] = set()
_stopping = threading.Event()


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
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) and summary.get("last_score") is not None else None


def is_finished(run: RunSpec, results: Path) -> bool:
    """A run is finished when it left a valid summary.json."""
    return read_summary(run.run_dir(results)) is not None


def train_command(run: RunSpec, cfg: SuiteConfig) -> list[str]:
    run_dir = run.run_dir(cfg.results)
    cmd = [sys.executable, "-m", "morec.cli", "train", "--config", str(cfg.config_path(run)), "--run-dir", str(run_dir),
           "--no-progress", "--set", f"cache_dir={cfg.results / 'cache'}", "--set", f"seed={run.seed}"]
    if cfg.dataset:
        cmd += ["--dataset", cfg.dataset]
    for assignment in cfg.overrides:
        cmd += ["--set", assignment]
    if (run_dir / "checkpoint.pt").exists():
        cmd.append("--resume")
    return cmd


def _die_with_parent() -> None:
    """In the child: get SIGKILL when the worker that started it dies (Linux), so a killed suite
    leaves no training process behind."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return  # no glibc prctl (not Linux): the suite's own shutdown still stops its children


def _describe_failure(code: int, log_path: Path, offset: int) -> str:
    with open(log_path, "rb") as fh:
        fh.seek(offset)
        lines = [line for line in fh.read().decode(errors="replace").splitlines() if line.strip()][1:]  # minus the header
    cause = lines[-1] if lines else "no output"
    if code < 0:
        cause = f"killed by signal {-code}; last output: {cause}"
    return f"{cause}\n(exit code {code}; full log {log_path})\n" + "\n".join(lines[-ERROR_TAIL_LINES:])


def execute_run(run: RunSpec, cfg: SuiteConfig) -> RunOutcome:
    """Train ``run`` to the end (up to ``1 + cfg.retries`` attempts); never raises for a failed run.
    A run that another suite finished after this one was planned is not started (0 attempts)."""
    run_dir = run.run_dir(cfg.results)
    finished = read_summary(run_dir)
    if finished is not None:
        return RunOutcome(run, True, 0.0, 0, score=finished["last_score"])
    run_dir.mkdir(parents=True, exist_ok=True)
    log_path = run_dir / "stdout.log"
    env = {**os.environ, **cfg.env, "PYTHONUNBUFFERED": "1"}
    start, error = time.perf_counter(), None
    for attempt in range(1, cfg.retries + 2):
        if _stopping.is_set():
            return RunOutcome(run, False, time.perf_counter() - start, attempt - 1, error="the suite was interrupted")
        cmd = train_command(run, cfg)
        with open(log_path, "ab") as log:
            offset = log.tell()
            log.write(f"\n=== attempt {attempt}: {' '.join(cmd)}\n".encode())
            log.flush()
            child = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=_die_with_parent)
            _live_children.add(child)
            try:
                code = child.wait()
            finally:
                _live_children.discard(child)
        summary = read_summary(run_dir)
        if code == 0 and summary is not None:
            return RunOutcome(run, True, time.perf_counter() - start, attempt, score=summary["last_score"])
        error = _describe_failure(code, log_path, offset)
    return RunOutcome(run, False, time.perf_counter() - start, cfg.retries + 1, error=error)


def allow_children() -> None:
    """Undo :func:`stop_children` (a new suite in the same process)."""
    _stopping.clear()


def stop_children() -> None:
    """Terminate the training processes this process started (their checkpoints stay valid:
    every write is atomic), and start no more attempts."""
    _stopping.set()
    for child in list(_live_children):
        child.terminate()
