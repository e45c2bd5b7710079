"""Scheduling a suite's runs on a backend, with progress and a final report.

Backends (one job each: start runs, say which finished):
- ``RayBackend``: every run is a Ray task with explicit resources (``num_cpus``, a GPU fraction
  where the cluster has GPUs); a local Ray instance is started in-process unless ``address``
  joins a running cluster (``auto`` or ``ray://host:port``).
- ``PoolBackend``: a local pool of ``max_parallel`` runs, for machines without Ray.

Both run :func:`execute_run`, so they give identical results. At most ``capacity`` runs are
handed to the backend at a time; "running" in the progress line counts those.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, replace
from typing import Any

from tqdm.auto import tqdm

from morec.errors import UserError
from morec.io import atomic_write, plain
from morec.runs.suite.plan import RunSpec, SuiteConfig, plan_runs
from morec.runs.suite.report import write_curves, write_table
from morec.runs.suite.worker import Children, RunOutcome, execute_run, is_finished

# Ray's GPU share for one run where the cluster has GPUs: 8 runs per GPU (why: docs/cuda_check.md,
# scripts/bench_shared_device.py).
DEFAULT_GPUS_PER_RUN = 0.125


def gpu_share(requested: float | None, cluster_gpus: float, overrides: list[str]) -> tuple[float, list[str]]:
    """The GPU fraction per run (``requested``, else the default where the cluster has GPUs) and
    ``overrides`` with ``device=cuda`` added when runs get a GPU and no device was set."""
    gpus = requested if requested is not None else (DEFAULT_GPUS_PER_RUN if cluster_gpus > 0 else 0.0)
    needs_device = gpus > 0 and not any(o.startswith("device=") for o in overrides)
    return gpus, (["device=cuda"] if needs_device else []) + list(overrides)


class PoolBackend:
    name = "pool"

    def __init__(self, cfg: SuiteConfig, max_parallel: int | None):
        self.cfg = cfg
        self.capacity = max(1, max_parallel or 1)
        self.pool = ThreadPoolExecutor(max_workers=self.capacity)  # each thread supervises one child process
        self.startup_seconds = 0.0
        self.children = Children()

    def submit(self, run: RunSpec) -> Future:
        return self.pool.submit(execute_run, run, self.cfg, self.children)

    def wait(self, handles: list[Future]) -> list[tuple[Future, RunOutcome | BaseException]]:
        done, _ = wait(handles, return_when=FIRST_COMPLETED)
        return [(f, f.exception() or f.result()) for f in done]

    def close(self) -> None:
        self.children.stop()  # none are left unless the suite was interrupted
        self.pool.shutdown(wait=True, cancel_futures=True)


class RayBackend:
    name = "ray"

    def __init__(
        self,
        cfg: SuiteConfig,
        max_parallel: int | None,
        address: str | None,
        cpus_per_run: float,
        gpus_per_run: float | None,
    ):
        try:
            import ray
        except ImportError:
            raise SystemExit("the Ray backend needs Ray: pip install 'morec[ray]' (or use --backend pool)") from None
        self.ray = ray
        start = time.perf_counter()
        if address:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        else:
            ray.init(include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
        self.startup_seconds = time.perf_counter() - start
        resources = ray.cluster_resources()
        gpus_per_run, overrides = gpu_share(gpus_per_run, resources.get("GPU", 0), cfg.overrides)
        self.cfg = replace(cfg, overrides=overrides)
        self.resources = {"num_cpus": cpus_per_run, "num_gpus": gpus_per_run}
        slots = int(resources.get("CPU", 1) // cpus_per_run)
        if gpus_per_run > 0:
            slots = min(slots, int(resources.get("GPU", 0) // gpus_per_run))
        self.capacity = max(1, max_parallel or slots)
        # Ray retries a task whose worker died (node lost, out of memory); execute_run retries failed runs itself
        self.task = ray.remote(execute_run).options(max_retries=cfg.retries, **self.resources)

    def submit(self, run: RunSpec):
        return self.task.remote(run, self.cfg)

    def wait(self, handles: list) -> list[tuple[Any, RunOutcome | BaseException]]:
        done, _ = self.ray.wait(handles, num_returns=1)
        out = []
        for ref in done:
            try:
                out.append((ref, self.ray.get(ref)))
            except Exception as err:  # the worker itself died: report, do not drop
                out.append((ref, err))
        return out

    def close(self) -> None:
        self.ray.shutdown()


class Progress:
    """One line per finished run with the live count; a bar as well on a terminal."""

    def __init__(self, total: int, queued: int):
        self.total, self.done, self.failed, self.running, self.queued = total, total - queued, 0, 0, queued
        self.bar = tqdm(total=total, initial=self.done, desc="suite", unit="run", disable=not sys.stderr.isatty())

    def counts(self) -> str:
        return f"{self.done}/{self.total} done, {self.running} running, {self.failed} failed, {self.queued} queued"

    def started(self) -> None:
        self.running, self.queued = self.running + 1, self.queued - 1
        self.bar.set_postfix_str(self.counts())

    def finished(self, outcome: RunOutcome) -> None:
        self.running -= 1
        if outcome.ok:
            self.done += 1
            status = f"ok, score {outcome.score:.1f}"
        else:
            self.failed += 1
            status = "FAILED: " + (outcome.error or "").splitlines()[0]
        retried = f" after {outcome.attempts} attempts" if outcome.attempts > 1 else ""
        self.bar.update(1)
        self.bar.set_postfix_str(self.counts())
        tqdm.write(
            f"[{self.counts()}] {outcome.run.label}: {status} in {outcome.seconds:.0f} s{retried}", file=sys.stdout
        )
        sys.stdout.flush()

    def close(self) -> None:
        self.bar.close()


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _schedule(
    backend, todo: list[RunSpec], progress: Progress, on_finished: Callable[[list[RunOutcome]], None]
) -> list[RunOutcome]:
    """Keep ``backend`` full from ``todo``; after each run ends, ``on_finished(outcomes so far)``."""
    queue, pending, outcomes = deque(todo), {}, []
    while queue or pending:
        while queue and len(pending) < backend.capacity:
            run = queue.popleft()
            pending[backend.submit(run)] = run
            progress.started()
        for handle, result in backend.wait(list(pending)):
            run = pending.pop(handle)
            if isinstance(result, BaseException):
                result = RunOutcome(run, False, 0.0, 1, error=f"{type(result).__name__}: {result}")
            outcomes.append(result)
            progress.finished(result)
            on_finished(outcomes)
    return outcomes


def run_suite(
    cfg: SuiteConfig,
    backend: str = "ray",
    max_parallel: int | None = None,
    address: str | None = None,
    cpus_per_run: float = 1.0,
    gpus_per_run: float | None = None,
    table_only: bool = False,
) -> int:
    """Run what is not finished (``table.md``/``table.csv`` written again as each run ends), then
    write the table, curves and ``suite.json``.
    Returns the number of runs that failed (0: everything finished)."""
    if not cpus_per_run > 0:  # Ray's slots are the cluster's CPUs / cpus_per_run
        raise UserError(f"cpus_per_run (--cpus-per-run) must be positive, got {cpus_per_run}")
    cfg.check()
    cfg.results.mkdir(parents=True, exist_ok=True)
    runs = plan_runs(cfg)
    unfinished = [r for r in runs if not is_finished(r, cfg.results)]
    todo = [] if table_only else unfinished
    print(f"{len(runs)} runs, {len(runs) - len(unfinished)} already finished; results in {cfg.results}", flush=True)
    outcomes: list[RunOutcome] = []
    start, startup, backend_name = time.perf_counter(), 0.0, "none"
    if todo:
        executor = (
            RayBackend(cfg, max_parallel, address, cpus_per_run, gpus_per_run)
            if backend == "ray"
            else PoolBackend(cfg, max_parallel)
        )
        backend_name, startup = executor.name, executor.startup_seconds
        print(
            f"{backend_name}: {executor.capacity} run(s) at a time"
            + (f", started in {startup:.1f} s" if startup else ""),
            flush=True,
        )
        progress = Progress(len(runs), len(todo))
        in_main_thread = threading.current_thread() is threading.main_thread()
        if in_main_thread:  # `kill` stops the workers too, as Ctrl-C does
            previous_handler = signal.signal(signal.SIGTERM, _interrupt)
        try:
            outcomes = _schedule(  # the table as results arrive: a suite of hours shows its finished runs
                executor,
                todo,
                progress,
                lambda done: write_table(runs, cfg.results, [o for o in done if not o.ok], echo=False),
            )
        except KeyboardInterrupt:
            print(
                "\ninterrupted: finished runs are kept; re-run the same command to run the rest (interrupted runs "
                "resume)",
                flush=True,
            )
            raise
        finally:
            if in_main_thread:
                signal.signal(signal.SIGTERM, previous_handler)
            progress.close()
            executor.close()
    failures = [o for o in outcomes if not o.ok]
    write_table(runs, cfg.results, failures)
    write_curves(cfg.results, [r.task for r in runs])
    record = {
        "backend": backend_name,
        "startup_seconds": round(startup, 2),
        "wall_seconds": round(time.perf_counter() - start, 2),
        "runs": len(runs),
        "ran": len(outcomes),
        "failed": len(failures),
        "config": plain(asdict(cfg)),
        "outcomes": [
            {
                **asdict(o.run),
                "ok": o.ok,
                "seconds": round(o.seconds, 1),
                "attempts": o.attempts,
                "score": o.score,
                "error": o.error,
            }
            for o in outcomes
        ],
    }
    atomic_write(cfg.results / "suite.json", lambda tmp: tmp.write_text(json.dumps(record, indent=2)))
    print(
        f"suite: {len(outcomes) - len(failures)} run(s) finished, {len(failures)} failed in "
        f"{record['wall_seconds']:.0f} s "
        f"({backend_name}{f', start-up {startup:.1f} s' if startup else ''})",
        flush=True,
    )
    return len(failures)
