"""Which code and which machine produced a result: the commit of the morec checkout that is running,
and the processor it ran on, for runs and tables that must name them (a long run resumed across
sessions may have run on several of each; floating-point results differ between processors whose
kernels differ, so a run is reproducible bit for bit only on the same kind)."""

from __future__ import annotations

import platform
import subprocess
from functools import cache
from pathlib import Path

import torch

import morec
from morec.cpu_features import cpuinfo_field

PACKAGE_DIR = Path(morec.__file__).resolve().parent


@cache
def code_version() -> str:
    """``git describe --always --dirty`` of the checkout this package runs from (e.g. ``960f30d``,
    ``960f30d-dirty``); ``morec <version>`` for an installed copy, which no checkout holds."""
    installed = f"morec {morec.__version__}"
    try:
        top = _git("rev-parse", "--show-toplevel")
        if top is None or (Path(top) / "morec").resolve() != PACKAGE_DIR:
            return installed  # not a checkout, or the checkout of something else (a venv inside a repository)
        return _git("describe", "--always", "--dirty") or installed
    except (OSError, subprocess.SubprocessError):  # no git on this machine, or it hung
        return installed


def _git(*args: str) -> str | None:
    proc = subprocess.run(["git", "-C", str(PACKAGE_DIR), *args], capture_output=True, text=True, timeout=30)
    return (proc.stdout.strip() or None) if proc.returncode == 0 else None


def machine(device: torch.device | str = "cpu") -> str:
    """The processor ``device`` computes on: the CPU's model and the instruction set torch's kernels
    use there (``"AMD EPYC (AVX2)"``), or the GPU's name (``"NVIDIA H100 80GB HBM3"``)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{_cpu_model()} ({torch.backends.cpu.get_cpu_capability()})"


def _cpu_model() -> str:
    """``model name`` of /proc/cpuinfo on Linux, else what ``platform`` knows."""
    return cpuinfo_field("model name") or platform.processor() or platform.machine() or "unknown CPU"
