"""Row blocks: inference over many rows, a cache-sized block of rows at a time, on the CPU.

A network run over all rows at once writes every hidden layer's activations to memory before the
next layer reads them (50,000 rows of a 200-wide layer for 5 ensemble members: 200 MB per layer).
Run a block of 1,024 rows through all the layers instead and the activations stay in the core's
cache: on one thread the dynamics ensemble's 50,000-row prediction ran 1.26x as fast, the
dynamics reward's scoring 1.29x and whole MOPO runs 1.24x, with bit-identical checkpoints
(``docs/speed.md``); MOBILE's penalty pass, in larger blocks
(:data:`morec.learners.mobile.PENALTY_BLOCK_ROWS`), 1.14x per gradient step. A GPU gains nothing
from it, so callers block only CPU tensors.
"""

from __future__ import annotations

CPU_BLOCK_ROWS = 1024  # [1024, 256] float32 activations: 1 MiB


def row_blocks(num_rows: int, block_rows: int = CPU_BLOCK_ROWS) -> list[slice]:
    """``num_rows`` rows as consecutive slices of ``block_rows`` (one empty slice for no rows). A
    one-row remainder joins the slice before it: MKL multiplies a single row by another kernel,
    whose rounding differs, and joined the blocked results equal the whole batch's bit for bit on
    the CPU measured (``docs/speed.md``)."""
    starts = list(range(0, max(num_rows, 1), block_rows))
    if len(starts) > 1 and num_rows - starts[-1] == 1:
        starts.pop()
    return [slice(start, end) for start, end in zip(starts, [*starts[1:], num_rows])]
