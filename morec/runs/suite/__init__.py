"""Benchmark suites: tasks x {MOPO, MOBILE} x {MOREC off, on} x seeds, each run a `morec train`
process, scheduled on Ray (a local instance or a cluster) or a local process pool, resumable, then
one table of normalised scores and learning-curve PNGs.

    morec suite d4rl --seeds 0,1,2                      # local Ray instance (pip install morec[ray])
    morec suite neorl --address auto --results /shared/runs/neorl
    morec suite d4rl --backend pool --max-parallel 2   # no Ray
"""

from morec.runs.suite.plan import BENCHMARK_TASKS, VARIANTS, RunSpec, SuiteConfig, plan_runs
from morec.runs.suite.report import write_curves, write_table
from morec.runs.suite.runner import run_suite
from morec.runs.suite.worker import RunOutcome, execute_run, is_finished

__all__ = [
    "BENCHMARK_TASKS",
    "VARIANTS",
    "RunOutcome",
    "RunSpec",
    "SuiteConfig",
    "execute_run",
    "is_finished",
    "plan_runs",
    "run_suite",
    "write_curves",
    "write_table",
]
