"""What this CPU computes natively, read from ``/proc/cpuinfo``: its model name, and whether it
multiplies bfloat16 in hardware (AVX512-BF16 or AMX). Where it does not, PyTorch emulates bfloat16
products, and the ``bfloat16`` options (``mobile.penalty_dtype``, ``filter.score_dtype``) run far
slower than float32: MOBILE's step with its penalty in bfloat16 was 20-23x slower than in float32
on an AMD EPYC with AVX2, and 1.7x faster on an Intel Xeon with AMX (docs/speed.md)."""

from __future__ import annotations

import warnings
from functools import cache
from pathlib import Path

import torch

from morec.errors import InputWarning

CPUINFO = Path("/proc/cpuinfo")
BFLOAT16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})  # either multiplies bfloat16 in hardware


class EmulatedBfloat16Warning(InputWarning):
    """A bfloat16 option on a CPU that emulates bfloat16: correct, but much slower than float32."""


@cache
def cpuinfo_field(name: str) -> str | None:
    """The first ``name`` line of ``/proc/cpuinfo`` (``"model name"``, ``"flags"``); ``None`` where
    there is no such file (not Linux) or no such field (``flags`` on ARM is ``Features``)."""
    try:
        lines = CPUINFO.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return None


def has_native_bfloat16() -> bool | None:
    """Whether the CPU multiplies bfloat16 in hardware; ``None`` where it cannot tell (no x86 flags)."""
    flags = cpuinfo_field("flags")
    return None if flags is None else bool(BFLOAT16_FLAGS & set(flags.split()))


def warn_if_bfloat16_is_emulated(setting: str, device: torch.device | str) -> None:
    """Warn that ``setting`` (e.g. ``"mobile.penalty_dtype=bfloat16"``) computes in bfloat16 on a
    CPU that emulates it; nothing on a GPU, on a CPU with bfloat16 hardware, or where it cannot tell."""
    if torch.device(device).type == "cpu" and has_native_bfloat16() is False:
        warnings.warn(
            f"{setting} on a CPU without AVX512-BF16 or AMX ({cpuinfo_field('model name') or 'this CPU'}): "
            "PyTorch emulates bfloat16 here, many times slower than float32; set it to float32",
            EmulatedBfloat16Warning,
            stacklevel=3,
        )
