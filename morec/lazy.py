"""Package names that load on first use, so importing a package stays cheap (the command line's
argument parsing imports neither torch nor tianshou)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def lazy_attributes(package: str, sources: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module's ``__getattr__`` and ``__dir__`` for ``package``: ``name`` is imported from the
    submodule ``sources[name]`` (relative, e.g. ``".rollout"``) when first asked for, and ``dir()``
    lists the lazy names beside the loaded ones (tab completion in IPython and Jupyter)."""

    def __getattr__(name: str) -> Any:
        if name in sources:
            return getattr(importlib.import_module(sources[name], package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(sources))

    return __getattr__, __dir__
