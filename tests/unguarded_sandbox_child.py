"""Test-only sandbox child with the static gate switched off: full builtins, real imports.

It runs the real child loop (:func:`morec.credit.sandbox._serve`) and therefore the real jail, so
tests can check what the jail alone contains when the gate misses something. Loaded by path like
the real child; never used by the library."""

import builtins
import importlib.util
import json  # noqa: F401  # preloaded: the jail refuses opening module files later
import os
import resource  # noqa: F401
import signal  # noqa: F401
import socket  # noqa: F401
import struct  # noqa: F401
import subprocess  # noqa: F401
import sys
import time  # noqa: F401

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "morec", "credit", "sandbox.py")
spec = importlib.util.spec_from_file_location("unguarded_sandbox", path)
sandbox = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = sandbox  # dataclasses look their module up
spec.loader.exec_module(sandbox)

sandbox.validate_source = lambda source, entry_point=sandbox.ENTRY_POINT: __import__("ast").parse(source)
sandbox.SAFE_BUILTIN_NAMES = [name for name in dir(builtins) if not name.startswith("__")]
sandbox._numpy_only_import = builtins.__import__
sandbox._serve(sys.argv[1:])
