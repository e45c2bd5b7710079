"""The per-task training configs shipped with morec (``configs/<benchmark>/<task>/[paper/]<variant>.yaml``,
the ``configs/smoke.yaml`` budget and the ``configs/shaping/`` overlays).

A source checkout keeps them in ``configs/`` beside the packages; an installed morec (a wheel,
``pip install .``) carries the same tree as ``morec/configs/``. So ``morec train --config
d4rl/hopper-medium-v2/mobile_morec.yaml`` (or ``configs/d4rl/...``) finds a bundled config from
any directory, while a path that exists is always used as it is.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def configs_dir() -> Path | None:
    """The bundled ``configs/`` tree: inside the installed package, else a source checkout's."""
    for candidate in (_PACKAGE / "configs", _PACKAGE.parent / "configs"):
        if (candidate / "d4rl").is_dir():
            return candidate
    return None


def find_config(path: str | Path | None) -> str | None:
    """``path`` when it is ``None`` or exists; else the bundled config it names, with or without a
    leading ``configs/`` (``d4rl/hopper-medium-v2/mobile_morec.yaml``). A config found nowhere is
    returned as given, or as its bundled path when only the bundled tree has its folder, so that
    loading it reports the missing file next to the configs that are there."""
    if path is None or Path(path).exists():
        return None if path is None else str(path)
    root = configs_dir()
    relative = Path(path)
    parts = relative.parts[1:] if relative.parts[:1] == ("configs",) else relative.parts
    if root is None or relative.is_absolute() or not parts:
        return str(path)
    bundled = root.joinpath(*parts)
    if bundled.is_file() or (bundled.parent.is_dir() and not relative.parent.is_dir()):
        return str(bundled)
    return str(path)
