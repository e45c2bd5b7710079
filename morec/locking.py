"""Advisory file locks (``fcntl.flock``) so that processes sharing a results root or a model cache
on one machine or a shared mount do not train the same model twice or run the same run twice.

The lock belongs to an open file: it is released when the holder closes the file (or drops it and
it is garbage-collected) or dies, so a killed worker never leaves a stale lock behind. ``flock`` works on local file
systems and on
NFS mounts with lock support; where ``fcntl`` does not exist (Windows) locking is skipped.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Linux/macOS
    fcntl = None


class LockBusy(RuntimeError):
    """A non-blocking lock is held by another process."""


def acquire(path: str | Path, *, blocking: bool = True, waiting_message: str | None = None) -> IO:
    """Open ``path`` (created if missing) and lock it exclusively; closing the returned file
    releases the lock. ``blocking=False`` raises :class:`LockBusy` instead of waiting."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a")
    if fcntl is None:
        return handle
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        if not blocking:
            handle.close()
            raise LockBusy(f"{path} is locked by another process") from None
        if waiting_message:
            print(waiting_message, file=sys.stderr, flush=True)
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
    return handle


@contextlib.contextmanager
def exclusive_lock(path: str | Path, waiting_message: str | None = None) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` for the ``with`` block, waiting for other holders."""
    with acquire(path, waiting_message=waiting_message):
        yield
