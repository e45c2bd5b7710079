"""Flush denormal floats to zero on the CPU.

A float32 below 1.2e-38 in magnitude is stored "denormal", and x86 CPUs take a slow path for every
arithmetic operation that reads or writes one. A dynamics ensemble trained long with weight decay
holds some (Hopper's on 1,000,000 transitions: 623 of its 898,992 weights), and its swish
activations make more: its model rollouts ran at half speed (29.1 s against 14.7 s for five
50,000-row predictions on one thread). Treating them as zero changes no result we have seen: a
MOPO run on that model gave bit-identical checkpoints with and without it (``docs/speed.md``).
"""

from __future__ import annotations


def flush_denormals() -> bool:
    """Flush denormals to zero in this process's torch CPU arithmetic (``torch.set_flush_denormal``:
    the x86 FTZ/DAZ flags of the calling thread, where all of it runs at one torch thread, as
    morec's training does); ``False`` where the CPU does not support it (nothing changed). Training
    and the model jobs of :mod:`morec.runs.jobs` call it; it does nothing to CUDA arithmetic."""
    import torch

    return bool(torch.set_flush_denormal(True))
