"""What the sandbox's jail costs: prints one JSON object.

    python scripts/bench_sandbox.py [--children 10] [--calls 20] [--large-calls 3]

For ``--children`` rounds, alternating, one child jailed as the library runs it and one the same
but with :func:`morec.credit.jail.confine` replaced by a no-op (a throwaway runner written to a
temporary folder): the wall time to start a child and answer its first call, a 256-row call and a
65,536-row call (medians), and the seconds ``confine`` itself took inside the jailed children.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from morec.credit import sandbox  # noqa: E402

CODE = "def compute_factors(obs, act):\n    return np.tanh(obs[:, :3] * act[:, :1]) + np.sqrt(np.abs(obs[:, 3:6]))\n"
UNCONFINED = """
import importlib.util, os, sys
spec = importlib.util.spec_from_file_location("bench_sandbox_child", {path!r})
child = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = child
spec.loader.exec_module(child)
child.jail.confine = lambda memory_mb, cpu_s, parent_pid: {{"seccomp": False}}
child._serve(sys.argv[1:])
"""


def measure(worker: sandbox.SandboxWorker, small: tuple, large: tuple, calls: int, large_calls: int) -> dict:
    start = time.perf_counter()
    assert worker.run(*small).ok
    first = time.perf_counter() - start
    small_times, large_times = [], []
    for _ in range(calls):
        start = time.perf_counter()
        assert worker.run(*small).ok
        small_times.append(time.perf_counter() - start)
    for _ in range(large_calls):
        start = time.perf_counter()
        assert worker.run(*large).ok
        large_times.append(time.perf_counter() - start)
    return {"first": first, "small": statistics.median(small_times), "large": statistics.median(large_times)}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--children", type=int, default=10)
    p.add_argument("--calls", type=int, default=20)
    p.add_argument("--large-calls", type=int, default=3)
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    small = (rng.normal(size=(256, 11)), rng.normal(size=(256, 3)))
    large = (rng.normal(size=(65_536, 11)), rng.normal(size=(65_536, 3)))
    with tempfile.TemporaryDirectory() as tmp:
        runner = Path(tmp) / "unconfined_child.py"
        runner.write_text(UNCONFINED.format(path=str(Path(sandbox.__file__).resolve())))

        class Unconfined(sandbox.SandboxWorker):
            def _child_argv(self) -> list[str]:
                argv = super()._child_argv()
                return [argv[0], "-I", str(runner), *argv[3:]]

        rows: dict[str, list[dict]] = {"jailed": [], "unjailed": []}
        confine_seconds = []
        for _ in range(args.children):
            for name, cls in (("jailed", sandbox.SandboxWorker), ("unjailed", Unconfined)):
                with cls(CODE, sandbox.SandboxLimits(timeout_s=30.0)) as worker:
                    rows[name].append(measure(worker, small, large, args.calls, args.large_calls))
                    if name == "jailed":
                        confine_seconds.append(worker.jail["seconds"])
    report = {
        "machine": platform.machine(),
        "children": args.children,
        "calls": args.calls,
        "large_calls": args.large_calls,
        "confine_ms": round(1000 * statistics.median(confine_seconds), 3),
    }
    for name, results in rows.items():
        report[name] = {
            f"{key}_ms": round(1000 * statistics.median(r[key] for r in results), 3)
            for key in ("first", "small", "large")
        }
    report["jailed_over_unjailed"] = {
        key: round(report["jailed"][key] / report["unjailed"][key], 3) for key in report["jailed"]
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
