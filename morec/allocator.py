"""Keep freed CPU memory in the process instead of handing it back to the OS after every step.

glibc serves each allocation of 128 KiB or more with a fresh ``mmap`` and returns it with ``munmap``
when freed. A MOBILE step allocates and frees tens of MB of activations ([12,800, 256] per layer
for its penalty), so every step pays page faults on fresh pages. Raising the mmap and trim
thresholds lets freed blocks be reused (what that gains: ``docs/speed.md``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # malloc.h
MMAP_THRESHOLD = 1 << 30  # blocks below 1 GiB come from the reusable heap
TRIM_THRESHOLD = (1 << 31) - 1  # keep up to 2 GiB of freed heap instead of trimming it


def keep_freed_memory() -> bool:
    """Set glibc's ``M_MMAP_THRESHOLD`` and ``M_TRIM_THRESHOLD`` for this whole process; ``False``
    (and nothing changed) where the C library is not glibc. The resident size then stays near its
    peak instead of shrinking between steps."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
