"""The ``morec`` command: one subcommand per module of :mod:`morec.commands`.

Parsing imports nothing heavy (torch and tianshou load inside the subcommands), so ``--help`` and
argument errors answer at once. Mistakes in what the user gave (:class:`~morec.errors.UserError`,
a missing file) print one ``morec: error:`` line and exit 2; ``--debug`` or ``MOREC_DEBUG=1``
shows the traceback instead. Warnings print as one ``morec: warning:`` line each.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

from tqdm import tqdm

from morec.allocator import keep_freed_memory
from morec.commands import command_modules
from morec.errors import InputWarning, UserError

DEBUG_ENV = "MOREC_DEBUG"
SCRIPTS = (
    "In a source checkout, scripts/ adds tools that are no subcommands: references (bc_baseline.py), plots "
    "(plot_curves.py), the configs' generator (make_configs.py), the evidence runners behind docs/ and the "
    "bench_*.py benchmarks."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="morec",
        description="Offline model-based RL with MOREC dynamics rewards",
        epilog=f"Mistakes print one line; --debug (or {DEBUG_ENV}=1) shows the traceback. {SCRIPTS}",
    )
    parser.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    # the same flag after the subcommand; SUPPRESS keeps it from resetting a --debug given before it
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show the Python traceback of an error"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for command in command_modules():
        p = sub.add_parser(command.NAME, parents=[debug], help=command.HELP, description=command.HELP)
        command.add_arguments(p)
        p.set_defaults(func=command.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    keep_freed_memory()  # training steps reuse their freed activations instead of faulting in fresh pages
    debug = args.debug or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            return args.func(args)
        except (UserError, FileNotFoundError) as err:
            if debug:
                raise
            print(f"morec: error: {_one_line(err)}", file=sys.stderr)
            return 2
        except SystemExit as err:
            if debug or not isinstance(err.code, str):
                raise
            print(f"morec: error: {err.code}", file=sys.stderr)  # a subcommand's own refusal, e.g. a missing option
            return 2
        except KeyboardInterrupt:
            print("morec: interrupted", file=sys.stderr)
            return 130


PACKAGE = Path(__file__).resolve().parent  # morec/


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Every warning as one ``morec: warning:`` line, printed above a progress bar rather than
    through it: morec's own as they are, another library's with its category and name."""
    text = " ".join(str(message).split())
    path = Path(filename).resolve()
    if not (issubclass(category, InputWarning) or PACKAGE in path.parents):
        parts = path.parts
        source = parts[parts.index("site-packages") + 1] if "site-packages" in parts[:-1] else path.name
        text = f"{category.__name__} from {source}: {text}"
    tqdm.write(f"morec: warning: {text}", file=sys.stderr)


def _one_line(err: BaseException) -> str:
    if isinstance(err, FileNotFoundError) and err.filename:
        return f"{err.filename}: no such file or directory"
    return " ".join(str(err).split()) or type(err).__name__


if __name__ == "__main__":
    sys.exit(main())
