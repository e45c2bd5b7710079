"""Writing files safely: a file appears under its final name only once it is complete.

The one atomic writer of the project (checkpoints, datasets, configs, summaries); torch-free at
import time. :func:`plain` turns config-like values into what YAML and JSON write and read back.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(path: str | Path, write_fn: Callable[[Path], Any]) -> Path:
    """Call ``write_fn(tmp_path)`` on a temporary file beside ``path`` and move it to ``path`` only
    once it is complete (an interrupted write leaves the old file, or none)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write_fn(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """``torch.save(obj, path)`` through :func:`atomic_write`."""
    import torch

    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def plain(value: Any) -> Any:
    """``value`` as YAML/JSON-ready data: mappings and sequences recursively (tuples become lists),
    paths as strings, callables by qualified name, other objects by ``repr``; scalars unchanged."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if callable(value):
        return f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', type(value).__qualname__)}"
    return repr(value)
