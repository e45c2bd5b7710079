"""Test-only sandbox child with only the static gate switched off: the reduced builtins, the
numbers-only ``np`` facade and the jail stay, so tests can check what the facade alone stops
when the gate misses something. Loaded by path like the real child; never used by the library."""

import ast
import importlib.util
import os
import sys

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "morec", "credit", "sandbox.py")
spec = importlib.util.spec_from_file_location("gateless_sandbox", path)
sandbox = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = sandbox  # dataclasses look their module up
spec.loader.exec_module(sandbox)

sandbox.validate_source = lambda source, entry_point=sandbox.ENTRY_POINT: ast.parse(source)
sandbox._serve(sys.argv[1:])
