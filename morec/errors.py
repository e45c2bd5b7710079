"""`UserError`: the base of every mistake a user can fix (a missing file, a bad config key, a
malformed dataset). The ``morec`` command prints such an error as one line with the fix and exits 2;
everything else is a bug and keeps its traceback. `InputWarning` is the same for things that still
run: the command prints it as one line."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class UserError(Exception):
    """A mistake in what the user gave (arguments, files, config); the message names it and the fix."""


class InputWarning(UserWarning):
    """Something in the user's input limits what a command can do (it says what to pass)."""


@contextmanager
def as_user_error(*types: type[BaseException]) -> Iterator[None]:
    """Re-raise ``types`` raised inside the block as :class:`UserError` with the same message, for
    library code that raises plain exceptions."""
    try:
        yield
    except types as err:
        raise UserError(message_of(err)) from err


def message_of(err: BaseException) -> str:
    """The text of ``err`` as written (``str(KeyError("x"))`` would add quotes around it)."""
    return str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
