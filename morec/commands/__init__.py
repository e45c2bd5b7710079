"""The ``morec`` subcommands, one module each. A command module parses its flags, calls library
functions with typed values and prints; the work itself lives in the library's concept folders.

This package is the top layer: nothing in the library imports it (the layers, bottom to top, are
checked by tests/test_layers.py).

Each module defines ``NAME`` (the subcommand), ``HELP`` (its line in ``morec --help``),
``add_arguments(parser)`` and ``run(args) -> exit status``. Importing one loads nothing heavy:
torch, tianshou and the models load inside ``run``, so ``morec --help`` answers at once.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# in the order `morec --help` lists them
COMMANDS = (
    "collect",
    "quickstart",
    "train_dynamics",
    "train_reward",
    "distil_reward",
    "eval_model",
    "relabel",
    "train",
    "suite",
    "sweep",
    "credit_training",
    "generalisation",
)


def command_modules() -> list[ModuleType]:
    return [importlib.import_module(f"{__name__}.{name}") for name in COMMANDS]
