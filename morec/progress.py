"""Progress for long jobs: a tqdm bar on a terminal, one plain line at a time in a log file.

tqdm redraws its bar with carriage returns, which a redirected log (``> log 2>&1``, ``nohup``, a
suite's ``stdout.log``) keeps as one ever-growing line. :func:`progress_bar` gives the bar only
when stderr is a terminal, and otherwise a :class:`LineProgress` with the same ``update`` /
``set_postfix`` / ``close`` calls that prints one line every ``line_every`` units.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def on_terminal() -> bool:
    """Whether stderr, where progress goes, is a terminal."""
    return sys.stderr.isatty()


def draws_bar(show: bool) -> bool:
    """Whether progress asked for with ``show`` is a bar redrawn on a terminal; where it is not, a
    job that reports per evaluation prints a line instead (a log file, or progress turned off)."""
    return show and on_terminal()


class LineProgress:
    """tqdm's counting interface for a log file: ``desc: n/total unit, elapsed, postfix`` as one
    line every ``line_every`` units and at ``close`` (none when ``line_every`` is ``None``: the job
    prints its own lines, e.g. one per evaluation)."""

    def __init__(self, *, total: int | None, desc: str, unit: str = "it", initial: int = 0, line_every: int | None = 1):
        self.total, self.desc, self.unit, self.n, self.line_every = total, desc, unit, initial, line_every
        self.postfix: dict[str, Any] = {}
        self._printed_at, self._start = initial, time.perf_counter()

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.line_every is not None and self.n - self._printed_at >= self.line_every:
            self.print_line()

    def set_postfix(self, ordered_dict: dict[str, Any] | None = None, refresh: bool = True, **kwargs: Any) -> None:
        self.postfix = {**(ordered_dict or {}), **kwargs}

    def print_line(self) -> None:
        done = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        extra = "".join(f", {key} {value}" for key, value in self.postfix.items())
        print(
            f"{self.desc}: {done} {self.unit}, {time.perf_counter() - self._start:.0f} s{extra}",
            file=sys.stderr,
            flush=True,
        )
        self._printed_at = self.n

    def close(self) -> None:
        if self.line_every is not None and self.n != self._printed_at:
            self.print_line()


def progress_bar(
    show: bool,
    *,
    total: int | None,
    desc: str,
    unit: str = "it",
    initial: int = 0,
    line_every: int | None = 1,
    **tqdm_options: Any,
) -> tqdm | LineProgress:
    """A tqdm bar when ``show`` and stderr is a terminal; a :class:`LineProgress` printing a line
    every ``line_every`` units when ``show`` and stderr is a file; a silent bar without ``show``."""
    if show and not on_terminal():
        return LineProgress(total=total, desc=desc, unit=unit, initial=initial, line_every=line_every)
    return tqdm(total=total, desc=desc, unit=unit, initial=initial, disable=not show, **tqdm_options)


def progress_iter(
    show: bool,
    iterable: Iterable[T],
    *,
    total: int,
    desc: str,
    unit: str = "it",
    line_every: int | None = None,
    **tqdm_options: Any,
) -> Iterator[T]:
    """``iterable`` with :func:`progress_bar` progress; in a log file a line every ``line_every``
    items (default: every tenth of ``total``)."""
    bar = progress_bar(
        show, total=total, desc=desc, unit=unit, line_every=line_every or max(1, total // 10), **tqdm_options
    )
    try:
        for item in iterable:
            yield item
            bar.update(1)
    finally:
        bar.close()
