"""Which code produced a result: the commit of the morec checkout that is running, for runs and tables
that must name it (a long run resumed across sessions may have run on several)."""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path

import morec

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
