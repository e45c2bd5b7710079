"""The sandbox for LLM-written factor code: what it refuses, what it stops, and that the caller survives."""

from __future__ import annotations

import errno
import json
import os
import pickle
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from morec.credit import sandbox
from morec.credit.redaction import clean_untrusted_text, redact
from morec.credit.sandbox import (
    SandboxedEncoder,
    SandboxError,
    SandboxLimits,
    SandboxWorker,
    _safe_numpy,
    run_untrusted,
    validate_source,
)

RNG = np.random.default_rng(0)
OBS = RNG.normal(size=(32, 11))
ACT = RNG.uniform(-1, 1, size=(32, 3))
FAST = SandboxLimits(timeout_s=1.0, memory_mb=256)

GOOD = """
TARGET = 1.25

def helper(x):
    return np.abs(x - TARGET)

def compute_factors(obs, act):
    with np.errstate(divide="ignore"):
        speed = obs[:, 5]
    effort = np.linalg.norm(act, axis=1) ** 2
    return np.stack([helper(obs[:, 0]), speed, effort, np.tanh(obs[:, 1]) * math.pi], axis=1)
"""


def expected_good(obs: np.ndarray, act: np.ndarray) -> np.ndarray:
    return np.stack(
        [np.abs(obs[:, 0] - 1.25), obs[:, 5], np.linalg.norm(act, axis=1) ** 2, np.tanh(obs[:, 1]) * np.pi], axis=1
    )


def fn(body: str) -> str:
    """A compute_factors whose body is ``body`` (one or more lines)."""
    return "def compute_factors(obs, act):\n" + "".join(f"    {line}\n" for line in body.splitlines())


def test_good_code_runs_and_returns_factors():
    res = run_untrusted(GOOD, OBS, ACT, FAST)
    assert res.ok, res.error
    np.testing.assert_allclose(res.factors, expected_good(OBS, ACT))


@pytest.mark.parametrize(
    "body, shape",
    [
        ("return [obs[:, 0], act[:, 1:2]]", (32, 2)),  # LaRe's list of [N] / [N, 1] factors
        ("return obs[:, 0] > 1.0", (32, 1)),  # one [N] factor, booleans become floats
        ("print('debug', obs.shape)\nreturn obs[:, :3]", (32, 3)),  # print is a harmless no-op
    ],
)
def test_accepted_output_forms(body, shape):
    res = run_untrusted(fn(body), OBS, ACT, FAST)
    assert res.ok, res.error
    assert res.factors.shape == shape and res.factors.dtype == np.float64


REFUSED = {
    "import os": "import os\n" + fn("return obs"),
    "from-import": "from os import system\n" + fn("return obs"),
    "import inside": fn("import subprocess\nreturn obs"),
    "__import__": fn("os = __import__('os')\nreturn obs"),
    "open()": fn("open('/etc/passwd').read()\nreturn obs"),
    "dunder escape": fn("classes = ().__class__.__bases__[0].__subclasses__()\nreturn obs"),
    "function globals": fn("g = compute_factors.__globals__\nreturn obs"),
    "__builtins__": fn("b = __builtins__\nreturn obs"),
    "getattr trick": fn("f = getattr(obs, 'tofile')\nreturn obs"),
    "getattr on np": fn("load = getattr(np, 'load')\nreturn obs"),
    "setattr": fn("setattr(np, 'x', 1)\nreturn obs"),
    "np.load": fn("x = np.load('/tmp/x.npy')\nreturn obs"),
    "np.save": fn("np.save('/tmp/x.npy', obs)\nreturn obs"),
    "np.fromfile": fn("return np.fromfile('/etc/passwd')"),
    "np.memmap": fn("return np.memmap('/tmp/x', mode='w+', shape=(3,))"),
    "np.ctypeslib": fn("lib = np.ctypeslib.load_library('libc', '/lib')\nreturn obs"),
    "np.lib": fn("x = np.lib.format.open_memmap('/tmp/x')\nreturn obs"),
    "np.random": fn("return np.random.rand(len(obs), 2)"),
    "np aliased": fn("m = np\nreturn m.load('/tmp/x')"),
    "np rebound": fn("np = None\nreturn obs"),
    "np attribute assigned": fn("np.sqrt = abs\nreturn obs"),
    "np hidden in a list": fn("return [np][0].load('/tmp/x')"),
    "array.tofile": fn("obs.tofile('/tmp/x')\nreturn obs"),
    "array.ctypes": fn("p = obs.ctypes.data\nreturn obs"),
    "str.format attribute read": fn("s = '{0.__class__}'.format(obs)\nreturn obs"),
    "generator frame": fn("g = (x for x in obs)\nf = g.gi_frame.f_back\nreturn obs"),
    "eval": fn("return eval('obs')"),
    "exec": fn("exec('import os')\nreturn obs"),
    "compile": fn("c = compile('1', 'x', 'eval')\nreturn obs"),
    "globals()": fn("g = globals()\nreturn obs"),
    "vars()": fn("v = vars()\nreturn obs"),
    "breakpoint": fn("breakpoint()\nreturn obs"),
    "type()": fn("t = type(obs)\nreturn obs"),
    "class": "class A:\n    pass\n" + fn("return obs"),
    "decorator": "@np.vectorize\ndef compute_factors(obs, act):\n    return obs\n",
    "global": fn("global np\nreturn obs"),
    "module-level loop": "while True:\n    pass\n" + fn("return obs"),
    "yield": fn("yield obs"),
    "no entry point": "def factors(obs, act):\n    return obs\n",
    "wrong signature": "def compute_factors(obs):\n    return obs\n",
    "syntax error": fn("return obs[:"),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_before_running(name, monkeypatch):
    with pytest.raises(SandboxError) as info:
        validate_source(REFUSED[name])
    assert info.value.kind == "refused"

    def no_process(*args, **kwargs):
        raise AssertionError("a refused source must not start a process")

    monkeypatch.setattr(sandbox.subprocess, "Popen", no_process)
    res = run_untrusted(REFUSED[name], OBS, ACT, FAST)
    assert res.error is not None and res.error.kind == "refused"


def test_runtime_namespace_has_no_escape_routes():
    safe = _safe_numpy()
    for name in ("load", "save", "fromfile", "memmap", "ctypeslib", "lib", "random", "testing", "frombuffer"):
        assert not hasattr(safe, name)
    assert safe.linalg.norm(OBS) == np.linalg.norm(OBS) and not hasattr(safe.linalg, "inv")


@pytest.mark.parametrize(
    "body, kind, text",
    [
        ("return obs[:, 99]", "exception", "IndexError (line 2)"),
        ("return np.log(obs[:, :2] - 100.0)", "bad_output", "non-finite"),
        ("return obs[:3]", "bad_output", "rows"),
        ("return {0: obs}", "bad_output", "dtype"),
        ("return []", "bad_output", "empty"),
        ("return [obs[:, 0], obs[:2, 1]]", "bad_output", "factor 1"),
    ],
)
def test_failures_are_reported_not_raised(body, kind, text):
    res = run_untrusted(fn(body), OBS, ACT, FAST)
    assert res.error is not None and res.error.kind == kind and text in res.error.message, res.error
    with pytest.raises(SandboxError):
        res.unwrap()


def test_infinite_loop_is_stopped_and_the_worker_recovers():
    code = fn("while obs[0, 0] > 0:\n    pass\nreturn obs[:, :2]")
    looping, fine = np.abs(OBS), -np.abs(OBS)
    with SandboxWorker(code, FAST) as worker:
        start = time.monotonic()
        res = worker.run(looping, ACT)
        assert res.error is not None and res.error.kind == "timeout"
        assert time.monotonic() - start < 4.0
        again = worker.run(fine, ACT)  # a fresh process replaced the killed one
        assert again.ok, again.error
        np.testing.assert_array_equal(again.factors, fine[:, :2])
    assert os.getpid() > 0 and np.ones(3).sum() == 3.0  # the caller is untouched


@pytest.mark.parametrize(
    "body",
    [
        "big = np.ones((100000, 100000))\nreturn obs",  # 80 GB at once
        "return [0] * (10 ** 10)",  # a Python list of 10 billion entries
        "keep = []\nfor i in range(1000):\n    keep.append(np.ones(10 ** 6))\nreturn obs",  # 8 MB at a time
    ],
)
def test_memory_bomb_is_stopped(body):
    limits = SandboxLimits(timeout_s=20.0, memory_mb=96)
    res = run_untrusted(fn(body), OBS, ACT, limits)
    assert res.error is not None and res.error.kind == "memory", res.error
    assert res.seconds < 15.0
    ok = run_untrusted(GOOD, OBS, ACT, FAST)  # the caller keeps working, and so do new sandboxes
    assert ok.ok and np.zeros((1000, 1000)).sum() == 0.0


def test_encoder_chunks_pickles_and_raises():
    obs, act = RNG.normal(size=(20, 11)), RNG.uniform(-1, 1, size=(20, 3))
    enc = SandboxedEncoder(GOOD, "demo", FAST, n_factors=4, max_rows=7)
    try:
        assert (enc.name, enc.source, enc.n_factors) == ("demo", "llm", 4)
        np.testing.assert_allclose(enc(obs, act), expected_good(obs, act))
        clone = pickle.loads(pickle.dumps(enc))
        np.testing.assert_allclose(clone(obs, act), expected_good(obs, act))
        clone.close()
    finally:
        enc.close()
    broken = SandboxedEncoder(fn("return obs[:, 50]"), "broken", FAST)
    with pytest.raises(SandboxError, match="IndexError"):
        broken(obs, act)
    broken.close()
    with pytest.raises(ValueError, match="same N"):
        enc(obs, act[:3])


# ---------------------------------------------------------------------------------- issue 12: the escape and its
# defences
# V1: np.ndarray over raw integer memory with an object dtype forged pointers to the real builtins.
OBJECT_OVER_MEMORY = fn("ints = np.zeros(4, np.int64)\nobjs = np.ndarray((4,), 'O', buffer=ints)\nreturn obs")

DTYPE_ESCAPES = {
    "ndarray constructor": OBJECT_OVER_MEMORY,
    "ndarray by keyword": fn("objs = np.ndarray(shape=(4,), dtype=np.float64, buffer=obs)\nreturn obs"),
    "object dtype string": fn("return np.array(obs, 'O')"),
    "object dtype keyword": fn("return np.zeros(3, dtype='O')"),
    "void dtype": fn("return np.zeros(3, dtype='V40')"),
    "structured dtype string": fn("return np.full(3, 1.0, 'i4,O')"),
    "structured dtype list": fn("return np.asarray(obs, dtype=[('a', 'O')])"),
    "bytes dtype": fn("return np.arange(3, dtype='S3')"),
    "unicode astype": fn("return obs.astype('U4')"),
    "object astype": fn("return obs.astype('object')"),
    "computed dtype": fn("return np.zeros(3, obs.dtype)"),
    "dtype in a variable": fn("d = 'O'\nreturn np.zeros(3, d)"),
    "dtype slot of np.sum": fn("return np.sum(obs, 0, 'O')"),
    "dtype slot of a method": fn("return obs.sum(0, 'O')"),
    "dtype slot of linspace": fn("return np.linspace(0, 1, 5, True, False, 'O')"),
    "**kwargs hides dtype": fn("return np.zeros(3, **{'dtype': 'O'})"),
    "*args hides dtype": fn("return np.zeros(*(3, 'O'))"),
    "numpy function as a value": fn("f = np.zeros\nreturn f(3, 'O')"),
    "numpy function passed": fn("return list(map(np.zeros, [3]))"),
    "method as a value": fn("f = obs.astype\nreturn f('O')"),
    "view": fn("return obs.view('O')"),
    "data buffer": fn("b = obs.data\nreturn obs"),
    "frombuffer": fn("return np.frombuffer(b'12345678', 'O')"),
    "stride tricks": fn("return np.lib.stride_tricks.as_strided(obs, (10 ** 9,), (8,))"),
    "attribute store": fn("obs.shape = (-1,)\nreturn obs"),
    "dtype store": fn("obs.dtype = np.float32\nreturn obs"),
    "augmented attribute store": fn("obs.shape += (1,)\nreturn obs"),
    "ndarray in isinstance": fn("assert isinstance(obs, np.ndarray)\nreturn obs"),
}


@pytest.mark.parametrize("name", sorted(DTYPE_ESCAPES))
def test_raw_memory_and_object_dtype_routes_are_refused(name):
    with pytest.raises(SandboxError) as info:
        validate_source(DTYPE_ESCAPES[name])
    assert info.value.kind == "refused"


# ---------------------------------------------------------------------------------- issue 29: the gate's dtype rule,
# bypassed
STRING_CRASH = "t = np.array(['A' * 40, 'b' * 30, 'z' * 50], dtype=float)\nnp.add(t[::-1], t, out=t)\nreturn obs[:, 0]"
GATE_BYPASSES = {
    "assignment": fn("float = 'T'\n" + STRING_CRASH),
    "module level": "float = 'V8'\ndef compute_factors(obs, act):\n    return obs[:, 0].astype(float)\n",
    "parameter": "def helper(int):\n    return np.zeros(2, dtype=int)\n"
    "def compute_factors(obs, act):\n    return helper('O')\n",
    "lambda parameter": fn("make = lambda bool: np.zeros(2, dtype=bool)\nreturn make('O')"),
    "for target": fn("for float in ['O']:\n    x = np.zeros(2, dtype=float)\nreturn obs"),
    "comprehension target": fn("xs = [np.zeros(2, dtype=float) for float in ['O']]\nreturn obs"),
    "walrus": fn("(float := 'T')\nreturn np.array(['a'], dtype=float)"),
    "tuple unpacking": fn("float, y = 'O', 1\nreturn np.zeros(2, dtype=float)"),
    "annotated assignment": fn("float: str = 'O'\nreturn np.zeros(2, dtype=float)"),
    "except name": fn("try:\n    x = 1\nexcept ValueError as int:\n    pass\nreturn obs"),
    "a builtin rebound": fn("len = 3\nreturn obs"),
    "a nested function named like a builtin": fn("def abs(x):\n    return x\nreturn obs"),
    "arange's fourth positional": fn("return np.arange(0, 3, 1, 'O')"),
    "ufunc signature": fn("return np.add(obs, 1.0, signature=(None, None, 'O'))"),
    "ufunc sig": fn("return np.add(obs, 1.0, sig='OO->O')"),
    "ufunc dtype": fn("return np.add(obs, 1.0, dtype='T')"),
    "fancy-index string assignment": fn(
        "float = 'T'\na = np.array(['v0', 'v1', 'v2', 'v3'], dtype=float).reshape(2, 2)\n"
        "a[[0, 1], [0, 1]] = np.array('Z' * 20, dtype=float)\nreturn obs"
    ),
}


@pytest.mark.parametrize("name", sorted(GATE_BYPASSES))
def test_the_gate_bypasses_of_the_red_team_are_refused(name):
    with pytest.raises(SandboxError) as info:
        validate_source(GATE_BYPASSES[name])
    assert info.value.kind == "refused"


def test_the_string_dtype_crash_is_refused_not_run():
    res = run_untrusted(GATE_BYPASSES["assignment"], OBS, ACT, FAST)
    assert res.error is not None and res.error.kind == "refused" and "cannot be rebound" in res.error.message


@pytest.mark.parametrize(
    "call",
    [
        lambda np_: np_.array(["A" * 40, "b" * 30], dtype="T"),  # StringDType
        lambda np_: np_.arange(0, 3, 1, "O"),  # the positional slot numpy's C code reads
        lambda np_: np_.add(OBS, 1.0, signature=(None, None, "O")),
        lambda np_: np_.add(OBS, 1.0, dtype="M8[s]"),
        lambda np_: np_.zeros(2, dtype=[("a", "f8")]),
        lambda np_: np_.array([len, None]),  # an object array made without naming a dtype
        lambda np_: np_.full(3, "x"),
        lambda np_: np_.concatenate([np.array(["x"]), np.array(["y"])]),  # a string array as input
        lambda np_: np_.add(OBS, 1.0, out=np.zeros(OBS.shape, "U8")),
    ],
)
def test_the_runtime_numpy_refuses_what_the_gate_might_miss(call):
    with pytest.raises(TypeError, match="allowed|numeric|positional"):
        call(_safe_numpy())


def test_the_runtime_numpy_keeps_numeric_work_as_it_was():
    safe = _safe_numpy()
    np.testing.assert_array_equal(safe.einsum("i,i", OBS[0], OBS[0]), np.einsum("i,i", OBS[0], OBS[0]))  # not a dtype
    np.testing.assert_array_equal(safe.percentile(OBS, 75, axis=0, method="linear"), np.percentile(OBS, 75, axis=0))
    np.testing.assert_array_equal(safe.arange(0, 3, 1, dtype="f8"), np.arange(3.0))
    assert safe.add(OBS, 1, dtype=float).dtype == np.float64 and safe.sqrt.__name__ == "sqrt"


# Operators act on arrays without the numbers-only np: text or None as an operand made a string or
# object array there
OPERAND_BYPASSES = {
    "None in a list operand": fn("return obs[:0] + [None]"),
    "strings in a list operand": fn("return np.arange(2) * ['ab', 'c']"),
    "None as an operand": fn("return obs[:0] + None"),
    "a string through a name": fn("s = 'ab'\nreturn np.arange(2) * s"),
    "a string at module level": "S = 'ab'\n" + fn("return np.arange(2) * S"),
    "bytes": fn("return np.arange(2) * [b'ab']"),
    "str()": fn("return np.arange(2) * [str(1), str(2)]"),
    "repr()": fn("return np.arange(2) * [repr(obs)]"),
    "an f-string": fn("return np.arange(2) * [f'{1}']"),
    "joined text": fn("return np.arange(2) * ('a' + str(1))"),
    "text left of an operator": fn("return 'ab' * obs"),
    "a dict's string keys": fn("d = {'ab': 1, 'c': 2}\nreturn np.arange(2) * list(d)"),
    "a string subscript": fn("d = {}\nreturn d['x']"),
    "np.newaxis in a list": fn("return obs[:0] + [np.newaxis]"),
    "Ellipsis in a list": fn("return obs[:0] + [...]"),
    "a data keyword of numpy": fn("return np.outer(np.arange(2), b=['ab', 'c'])"),
    "a data keyword holding text": fn("return np.full(3, fill_value='x')"),
    "an option keyword of a helper": "def f(a, mode):\n    return a * mode\n" + fn("return f(obs, mode='ab')"),
    "an option keyword of a dict method": fn("d = {}\nd.update(order='ab')\nreturn obs"),
    "a string default": "def f(a, b='ab'):\n    return a * b\n" + fn("return f(obs)"),
    "a None default": "def f(a, b=None):\n    return a + b\n" + fn("return f(obs[:0])"),
    "None returned": "def f():\n    return None\n" + fn("return obs[:0] + [f()]"),
    "None compared by ==": fn("return obs == None"),
    "dot with None": fn("return obs[:0].dot(None)"),
    "text passed to a helper": "def f(a, b):\n    return a * b\n" + fn("return f(np.arange(2), 'ab')"),
    "print rebound": "def print(a, b):\n    return a * b\n" + fn("return print(np.arange(2), 'ab')"),
    "an operand inside an exception's arguments": fn("raise ValueError(np.arange(2) * ['ab'])"),
    "a complex number": fn("return obs * 1j"),
    "str passed around": fn("f = str\nreturn np.arange(2) * [f(1)]"),
    "str mapped": fn("return np.arange(2) * list(map(str, range(2)))"),
    "keyword names as dict keys": fn("return np.arange(2) * list(dict(ab=1, c=2))"),
    "keyword names through update": fn("d = {}\nd.update(ab=1)\nreturn np.arange(2) * list(d)"),
    "a dtype keyword of a helper": "def f(a, dtype):\n    return a * dtype\n" + fn("return f(obs, dtype='f8')"),
    "keyword names through **kwargs": "def f(**kw):\n    return list(kw)\n" + fn("return np.arange(2) * f(ab=1)"),
}


@pytest.mark.parametrize("name", sorted(OPERAND_BYPASSES))
def test_text_and_none_cannot_become_operands(name):
    with pytest.raises(SandboxError) as info:
        validate_source(OPERAND_BYPASSES[name])
    assert info.value.kind == "refused"


TEXT_AND_NONE_AS_OPTIONS = '''
"""Factors for a test."""

def compute_factors(obs, act):
    """Docstrings and text as statements stay."""
    print(f"shapes {obs.shape!r:>10} and {act.shape}", "x" + str(1), repr(act), sep="", end=None)
    assert obs is not None and act.ndim == 2, "two-dimensional actions, got " + str(act.ndim)
    big = min(float("inf"), int("7"), 1e9 + bool("x"))
    if obs.shape[1] < 0:
        raise ValueError(f"bad width {obs.shape[1]}", None)
    with np.errstate(divide="ignore", invalid="ignore", all=None):
        ratio = np.clip(obs[:, 0] / (np.abs(obs[:, 1]) + 1.0), None, 10.0)
    pairs = np.einsum("ij,ij->i", act, act)
    fro = np.linalg.norm(act[:, :, None], "fro", (1, 2))
    middle = np.percentile(obs[:, :3], 50, axis=1, method="nearest")
    first = np.take(obs[:, 0], np.arange(len(obs)), 0, None, "clip")
    order = np.argsort(obs[:, 2], kind="stable")
    ranked = np.sort(obs[:, 2], None, "stable")[np.argsort(order)]
    cols = obs[..., None, 3:5][:, 0, :].astype("float32").astype(float, order="C", casting="same_kind")
    total = obs.sum(1, None, None, True)[:, 0] + obs[None, :, 0][0] + obs[None:, 0]
    return np.stack([ratio, pairs, fro, middle, first, ranked, cols[:, 0], total + big - 7], axis=1)
'''


def test_text_and_none_stay_allowed_where_numpy_reads_them_as_options():
    res = run_untrusted(TEXT_AND_NONE_AS_OPTIONS, OBS, ACT, FAST)
    assert res.ok, res.error
    np.testing.assert_allclose(res.factors[:, 1], (ACT**2).sum(1))
    np.testing.assert_allclose(res.factors[:, 2], np.sqrt((ACT**2).sum(1)))
    np.testing.assert_allclose(res.factors[:, 5], OBS[:, 2])
    np.testing.assert_allclose(res.factors[:, 7], OBS.sum(1) + 2 * OBS[:, 0])


def test_with_the_gate_off_the_facade_still_stops_the_string_dtype_crash(monkeypatch):
    monkeypatch.setattr(sandbox, "validate_source", lambda source, entry_point=sandbox.ENTRY_POINT: None)

    class Gateless(SandboxWorker):
        def _child_argv(self) -> list[str]:
            argv = super()._child_argv()
            return [argv[0], "-I", str(Path(__file__).with_name("gateless_sandbox_child.py")), *argv[3:]]

    with Gateless(GATE_BYPASSES["assignment"], FAST) as worker:
        res = worker.run(OBS, ACT)
    assert res.error is not None and res.error.kind == "exception" and "not allowed" in res.error.message, res.error


def test_the_runtime_namespace_has_no_array_constructor():
    assert not hasattr(_safe_numpy(), "ndarray") and not hasattr(_safe_numpy(), "frombuffer")


@pytest.mark.parametrize(
    "body, expected",
    [
        ("return np.zeros((len(obs), 2), np.float64) + obs[:, :2]", OBS[:, :2]),
        ("return obs[:, :2].astype('float32').astype(float)", OBS[:, :2].astype(np.float32).astype(float)),
        ("return np.array(obs[:, :2], dtype=float)", OBS[:, :2]),
        ("return np.sum(obs, 1, 'f8')", OBS.sum(1)[:, None]),
        ("return obs.sum(1, np.float64, None, True)", OBS.sum(1, keepdims=True)),
        ("return np.ones(len(obs), None) * obs[:, 0]", OBS[:, :1]),
        ("return (obs[:, 0] > 0).astype(np.int64)", (OBS[:, :1] > 0).astype(float)),
    ],
)
def test_numeric_dtypes_stay_allowed(body, expected):
    res = run_untrusted(fn(body), OBS, ACT, FAST)
    assert res.ok, res.error
    np.testing.assert_allclose(res.factors, expected, rtol=1e-6)


# V3: a deep but valid expression made the checker raise RecursionError
@pytest.mark.parametrize(
    "body",
    [
        "x = obs" + " + obs" * 400 + "\nreturn x",
        "x = obs" + ".T" * 600 + "\nreturn x",
        "x = " + "np.abs(" * 150 + "obs" + ")" * 150 + "\nreturn x",
    ],
)
def test_deep_nesting_is_refused_not_raised(body):
    with pytest.raises(SandboxError) as info:
        validate_source(fn(body))
    assert info.value.kind == "refused" and "nested" in info.value.message


# V4: code that returns few factors on the probes and 1024 columns on a large batch
FACTOR_COUNT_LIE = fn("if len(obs) > 256:\n    return np.zeros((len(obs), 1024)) + obs[:, :1]\nreturn obs[:, :3]")


def test_a_factor_count_lie_is_refused_before_its_values_are_read(monkeypatch):
    requested = []
    real_read = SandboxWorker._read

    def spy(self, proc, n, deadline):
        requested.append(n)
        return real_read(self, proc, n, deadline)

    monkeypatch.setattr(SandboxWorker, "_read", spy)
    obs, act = RNG.normal(size=(20_000, 11)), RNG.uniform(-1, 1, size=(20_000, 3))
    enc = SandboxedEncoder(
        FACTOR_COUNT_LIE, "liar", SandboxLimits(timeout_s=20.0, memory_mb=1024), n_factors=3, max_rows=20_000
    )
    try:
        np.testing.assert_allclose(enc(obs[:100], act[:100]), obs[:100, :3])
        requested.clear()
        with pytest.raises(SandboxError, match="returned 1024 factors on 20000 rows") as info:
            enc(obs, act)
        assert info.value.kind == "bad_output"
        assert max(requested) < 1 << 16  # the 164 MB payload was never read, only its header
        np.testing.assert_allclose(enc(obs[:100], act[:100]), obs[:100, :3])  # a fresh child took over
    finally:
        enc.close()


def test_without_a_declared_count_the_first_chunk_sets_it():
    code = fn("if obs[0, 0] > 100.0:\n    return obs[:, :5]\nreturn obs[:, :3]")
    obs = RNG.normal(size=(20, 11))
    obs[10, 0] = 1000.0  # the second chunk starts here
    enc = SandboxedEncoder(code, "shifty", FAST, max_rows=10)
    try:
        with pytest.raises(SandboxError, match="returned 5 factors on 10 rows; expected between 1 and 3"):
            enc(obs, RNG.normal(size=(20, 3)))
    finally:
        enc.close()


def test_redaction_of_paths_environment_values_and_secrets():
    text = (
        "IndexError (line 3): /home/alice/.config/key.txt holds sk-live-0123456789abcdef and "
        "Bearer abc.def-ghi, token=hunter2hunter2, value s3cr3t-value, index 99 / size 11"
    )
    out = redact(text, environ={"SOME_SECRET": "s3cr3t-value", "SHORT": "11"})
    for secret in ("/home/alice", "key.txt", "sk-live", "abc.def", "hunter2", "s3cr3t"):
        assert secret not in out, out
    assert out.startswith("IndexError (line 3): <path> holds <redacted>") and "index 99 / size 11" in out


def test_error_text_from_the_child_is_cleaned_without_confirming_a_guess(monkeypatch):
    monkeypatch.setenv("MOREC_TEST_SECRET", "tell-nobody-42")
    code = fn("raise ValueError('tell-nobody-42 | not-a-secret at /etc/shadow sk-live-0123456789abcdef')")
    res = run_untrusted(code, OBS, ACT, FAST)
    assert res.error.kind == "exception"
    # paths and secret shapes go; a guessed environment value is treated as any other text, so the
    # reply does not tell its author which guess was right (the child never sees the environment)
    assert res.error.message.endswith("ValueError (line 2): tell-nobody-42 | not-a-secret at <path> <redacted>")


# bidi overrides and isolates, zero-width characters, line and paragraph separators, a soft hyphen,
# a BOM and a Unicode tag character: format characters that reorder or hide text in a log or prompt
FORMAT_CHARACTERS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200b\u200c\u200d\u200e\u200f"
FORMAT_CHARACTERS += "\u2028\u2029\u00ad\u2060\ufeff\U000e0041"


@pytest.mark.parametrize(
    "body, gone",
    [
        ("raise ValueError('\\x1b]0;title\\x07\\x1b[2Jcleared\\x9b1m')", ("\x1b", "\x07", "\x9b")),
        (f"raise ValueError({'ok ' + FORMAT_CHARACTERS + ' fine'!a})", tuple(FORMAT_CHARACTERS)),
    ],
)
def test_control_and_format_characters_never_leave_the_child(body, gone):
    res = run_untrusted(fn(body), OBS, ACT, FAST)
    assert res.error.kind == "exception" and not any(g in res.error.message for g in gone), res.error.message


def test_addresses_never_leave_the_child():
    res = run_untrusted(fn("raise ValueError(repr(compute_factors))"), OBS, ACT, FAST)
    assert res.error.kind == "exception" and "<address>" in res.error.message, res.error.message
    assert re.search(r"0x[0-9a-fA-F]{6,}", res.error.message) is None, res.error.message


def test_cleaning_keeps_ordinary_whitespace_and_text():
    text = "line one\n\tindented, non-breaking\u00a0space, caf\u00e9, \u4e2d\u6587, \U0001f600"
    assert clean_untrusted_text(text) == text
    lone_surrogate = "\ud800"
    assert clean_untrusted_text(f"a\u202eb\u200bc\u2028d\u2029e\x00f\x85g{lone_surrogate}h") == "abcdefgh"


@pytest.mark.parametrize(
    "body", ["raise ValueError(10 ** 5000)", "a = []\nfor i in range(100000):\n    a = [a]\nraise ValueError(a)"]
)
def test_an_error_whose_text_cannot_be_formed_is_reported_by_its_type(body):
    res = run_untrusted(fn(body), OBS, ACT, SandboxLimits(timeout_s=5.0, memory_mb=256))
    assert (
        res.error.kind == "exception"
        and "ValueError (line" in res.error.message
        and "could not be formatted" in res.error.message
    )


def test_a_parent_holding_more_than_1024_descriptors_still_runs_code():
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"the descriptor limit ({hard}) is below 1,200")
    resource.setrlimit(
        resource.RLIMIT_NOFILE,
        (max(soft, 1200) if hard == resource.RLIM_INFINITY else min(max(soft, 1200), hard), hard),
    )
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        res = run_untrusted(fn("return obs[:, 0]"), OBS, ACT, FAST)
        assert res.ok, res.error
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_without_a_jail_code_is_refused_unless_the_caller_opts_out(monkeypatch):
    monkeypatch.setattr(sandbox.jail.sys, "platform", "darwin")
    assert "needs Linux" in sandbox.jail.unsupported_reason()

    def no_process(*args, **kwargs):
        raise AssertionError("unjailed code must not start a process")

    with monkeypatch.context() as m:
        m.setattr(sandbox.subprocess, "Popen", no_process)
        res = run_untrusted(GOOD, OBS, ACT, FAST)
    assert res.error.kind == "unjailed" and "allow_unjailed=True" in res.error.message
    monkeypatch.undo()
    opted_out = run_untrusted(GOOD, OBS, ACT, SandboxLimits(timeout_s=1.0, memory_mb=256, allow_unjailed=True))
    assert opted_out.ok, opted_out.error  # on Linux the child still jails itself


# ---------------------------------------------------------------------------------- the jail, with the gate bypassed
UNGUARDED_CHILD = Path(__file__).with_name("unguarded_sandbox_child.py")


class UnguardedWorker(SandboxWorker):
    """Runs code with the static gate off (test-only child), so only the jail stands in the way."""

    def _child_argv(self) -> list[str]:
        argv = super()._child_argv()
        return [argv[0], "-I", str(UNGUARDED_CHILD), *argv[3:]]


@pytest.fixture
def unguarded(monkeypatch):
    monkeypatch.setattr(sandbox, "validate_source", lambda source, entry_point=sandbox.ENTRY_POINT: None)
    workers = []

    def make(code: str, limits: SandboxLimits = FAST) -> UnguardedWorker:
        workers.append(UnguardedWorker(code, limits))
        return workers[-1]

    yield make
    for worker in workers:
        worker.close()


ATTACKS = (
    "read_canary",
    "list_directory",
    "read_parent_environ",
    "connect_loopback",
    "run_shell",
    "fork",
    "write_file",
    "make_directory",
    "symlink",
    "rename",
    "truncate",
    "signal_parent",
    "secrets_in_environment",
    "close_stderr_then_open",
)
HOSTILE = """
import os, socket, subprocess

def attempt(action):
    try:
        return 1.0 if action() is not False else 0.0
    except BaseException:
        return 0.0

def read_canary():
    with open(CANARY) as f:
        return f.read() == "canary"

def list_directory():
    return len(os.listdir(os.path.dirname(CANARY))) > 0

def read_parent_environ():
    with open(f"/proc/{os.getppid()}/environ", "rb") as f:
        return len(f.read()) > 0

def connect_loopback():
    socket.create_connection(("127.0.0.1", PORT), timeout=1.0).close()

def run_shell():
    subprocess.run(["/bin/sh", "-c", "true"], check=True)

def fork():
    if os.fork() == 0:
        os._exit(0)

def write_file():
    with open(os.path.join(os.path.dirname(CANARY), "written"), "w") as f:
        f.write("x")

def make_directory():
    os.mkdir(os.path.join(os.path.dirname(CANARY), "made"))

def symlink():
    os.symlink("/etc/passwd", os.path.join(os.path.dirname(CANARY), "link"))

def rename():
    os.rename(CANARY, CANARY + ".moved")

def truncate():
    os.truncate(CANARY, 0)

def signal_parent():
    os.kill(os.getppid(), 0)

def close_stderr_then_open():
    os.close(2)
    return read_canary()

def secrets_in_environment():
    return any(k.startswith("MOREC") for k in os.environ)

def compute_factors(obs, act):
    import resource
    flags = [attempt(globals()[name]) for name in ATTACKS]
    flags += [float(os.geteuid()), float(resource.getrlimit(resource.RLIMIT_CPU)[0])]
    return np.tile(np.array(flags), (len(obs), 1))
"""


def test_the_jail_contains_code_that_passed_the_gate(unguarded, monkeypatch):
    monkeypatch.setenv("MOREC_LLM_API_KEY", "sk-must-not-leak-0123456789")
    directory = Path(tempfile.mkdtemp())
    try:
        directory.chmod(0o777)  # file permissions alone would let any user in: only the jail stands in the way
        canary = directory / "canary.txt"
        canary.write_text("canary")
        canary.chmod(0o666)
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            listener.setblocking(False)
            code = f"CANARY = {str(canary)!r}\nPORT = {listener.getsockname()[1]}\nATTACKS = {ATTACKS!r}\n" + HOSTILE
            worker = unguarded(code, SandboxLimits(timeout_s=10.0, memory_mb=256, cpu_s=77))
            res = worker.run(OBS[:2], ACT[:2])
            assert res.ok, res.error
            try:
                listener.accept()[0].close()
                reached = ["reach_the_listener"]
            except BlockingIOError:
                reached = []
        escaped = [name for name, flag in zip(ATTACKS, res.factors[0]) if flag] + reached
        assert escaped == [], f"the jailed child could {escaped}"
        uid, cpu_limit = res.factors[0, len(ATTACKS) :]
        assert cpu_limit == 77
        own_uid = sandbox.jail.CHILD_UID_BASE + worker._proc.pid  # as root: a uid of the child's own
        assert uid == worker.jail["uid"] == (own_uid if os.geteuid() == 0 else os.geteuid())
        assert worker.jail["seccomp"] is True
        assert sorted(p.name for p in directory.iterdir()) == ["canary.txt"] and canary.read_text() == "canary"
    finally:
        shutil.rmtree(directory)


# Calls the red team (issue 29) made from jailed code against other processes of the child's uid,
# the parent and the kernel; each must answer EPERM (x86-64 syscall numbers).
OTHER_PROCESS_ATTACKS = """
import ctypes, os, struct
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
BUF = ctypes.create_string_buffer(4096)

def errno_of(result):
    return 0.0 if result not in (-1, ctypes.c_void_p(-1).value) else float(ctypes.get_errno())

def call(nr, *args):
    ctypes.set_errno(0)
    return errno_of(libc.syscall(nr, *[ctypes.c_long(a) if isinstance(a, int) else a for a in args]))

def compute_factors(obs, act):
    ppid, flags = os.getppid(), libc.fcntl(0, 3)
    out = [
        call(72, 0, 8, ppid),                  # fcntl F_SETOWN: signals to the parent
        call(72, 0, 10, 9),                    # fcntl F_SETSIG = SIGKILL
        call(72, 0, 4, flags | 0o20000),       # fcntl F_SETFL | O_ASYNC
        call(16, 0, 0x5452),                   # ioctl FIOASYNC
        call(302, ppid, 0, 0, BUF),            # prlimit64 of the parent
        call(141, 0, ppid, 19),                # setpriority of the parent
        call(203, ppid, 128, BUF),             # sched_setaffinity of the parent
        call(144, ppid, 5, BUF),               # sched_setscheduler(SCHED_IDLE) of the parent
        call(251, 1, ppid, 7),                 # ioprio_set of the parent
        call(274, ppid, BUF, BUF),             # get_robust_list of the parent
        call(157, 1, 0, 0, 0, 0),              # prctl PR_SET_PDEATHSIG = 0: outlive the parent
        call(70, 0, BUF, 64, 0, 0o4000),       # msgrcv
        call(69, 0, BUF, 8, 0o4000),           # msgsnd
        call(71, 0, 13, BUF),                  # msgctl MSG_STAT_ANY
        call(65, 0, BUF, 1),                   # semop
        call(66, 0, 0, 2, BUF),                # semctl
        call(31, 0, 2, BUF),                   # shmctl
        call(191, b"/", b"user.secret", BUF, 64),  # getxattr
        call(194, b"/", BUF, 64),              # listxattr
        call(139, 3),                          # sysfs
        call(458, BUF, BUF, 8, 0),             # listmount
        call(4, b"/", BUF),                    # stat
        call(9, 0, 4096, 7, 0x22, -1, 0),      # mmap with PROT_EXEC
    ]
    allowed = [call(302, 0, 0, 0, BUF), call(72, 0, 4, flags), call(204, 0, 128, BUF)]  # the child itself, no O_ASYNC
    return np.tile(np.array(out + allowed), (len(obs), 1))
"""
ATTACK_NAMES = (
    "F_SETOWN",
    "F_SETSIG",
    "O_ASYNC",
    "FIOASYNC",
    "prlimit64",
    "setpriority",
    "sched_setaffinity",
    "sched_setscheduler",
    "ioprio_set",
    "get_robust_list",
    "PR_SET_PDEATHSIG",
    "msgrcv",
    "msgsnd",
    "msgctl",
    "semop",
    "semctl",
    "shmctl",
    "getxattr",
    "listxattr",
    "sysfs",
    "listmount",
    "stat",
    "mmap PROT_EXEC",
)


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the attacks use x86-64 syscall numbers")
def test_the_jail_keeps_the_child_away_from_other_processes_and_the_kernel(unguarded):
    worker = unguarded(OTHER_PROCESS_ATTACKS, SandboxLimits(timeout_s=10.0, memory_mb=256))
    res = worker.run(OBS[:2], ACT[:2])
    assert res.ok, res.error
    errnos = res.factors[0]
    let_through = [name for name, err in zip(ATTACK_NAMES, errnos) if err != errno.EPERM]
    assert let_through == [], f"the jail let these through: {let_through}"
    assert list(errnos[len(ATTACK_NAMES) :]) == [0, 0, 0]  # limits, flags and affinity of the child itself stay allowed
    assert worker.run(OBS[:2], ACT[:2]).ok  # the parent is alive and the child still serves


AS_ORDINARY_USER = """
import json, sys
sys.path.insert(0, {repo!r})
import numpy as np
from morec.credit import sandbox

class Unguarded(sandbox.SandboxWorker):
    def _child_argv(self):
        argv = super()._child_argv()
        return [argv[0], "-I", {child!r}, *argv[3:]]

sandbox.validate_source = lambda source, entry_point=None: None
with Unguarded({code!r}, sandbox.SandboxLimits(timeout_s=10.0, memory_mb=256)) as worker:
    first = worker.run(np.zeros((2, 11)), np.zeros((2, 3)))
    second = worker.run(np.zeros((2, 11)), np.zeros((2, 3)))
print(json.dumps({{"errnos": first.factors[0].tolist() if first.ok else str(first.error), "again": second.ok,
                  "jail": worker.jail}}))
"""


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the attacks use x86-64 syscall numbers")
def test_as_an_ordinary_user_the_child_cannot_touch_its_parent():
    """The parent and the child share a uid here, so only the filter stands between them."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run the parent as an ordinary user")
    repo = Path(__file__).resolve().parents[1]
    script = AS_ORDINARY_USER.format(repo=str(repo), child=str(UNGUARDED_CHILD), code=OTHER_PROCESS_ATTACKS)
    proc = subprocess.run(
        ["setpriv", "--reuid", "4242", "--regid", "4242", "--clear-groups", sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
    )
    if proc.returncode != 0 and "Permission denied" in proc.stderr:
        pytest.skip(f"this interpreter cannot run as another user: {proc.stderr.strip().splitlines()[-1]}")
    assert proc.returncode == 0, proc.stderr  # the parent survived the child's F_SETOWN/F_SETSIG(SIGKILL)/O_ASYNC
    report = json.loads(proc.stdout)
    assert report["jail"]["uid"] == 4242 and report["again"] is True
    let_through = [name for name, err in zip(ATTACK_NAMES, report["errnos"]) if err != errno.EPERM]
    assert let_through == [], f"as an ordinary user the jail let these through: {let_through}"


def test_each_child_has_a_uid_of_its_own_when_started_as_root(unguarded):
    if os.geteuid() != 0:
        pytest.skip("only root can give the child another uid")
    code = "import os\ndef compute_factors(obs, act):\n    return obs[:, :1] * 0 + os.getuid()\n"
    first, second = unguarded(code), unguarded(code)
    uids = {int(first.run(OBS[:2], ACT[:2]).factors[0, 0]), int(second.run(OBS[:2], ACT[:2]).factors[0, 0])}
    assert uids == {sandbox.jail.CHILD_UID_BASE + first._proc.pid, sandbox.jail.CHILD_UID_BASE + second._proc.pid}


FAKE_SETUP_ERROR = """
import json, os, struct

def fake(kind):
    head = json.dumps({"ok": False, "kind": kind, "message": "the sandbox jail could not be set up: pass "
                       "--allow-unjailed-llm-code", "payload": 0}).encode()
    os.write(1, struct.pack(">I", len(head)) + head)
    os._exit(0)

LOADED = fake(KIND) if STAGE == "load" else 0

def compute_factors(obs, act):
    return fake(KIND)
"""


@pytest.mark.parametrize(
    "stage, kind",
    [("load", "unjailed"), ("load", "timeout"), ("load", "no-such-kind")]
    + [("call", kind) for kind in ("unjailed", "refused", "timeout", "no-such-kind")],
)
def test_a_child_past_the_gate_cannot_fake_an_error_of_another_stage(unguarded, stage, kind):
    """``unjailed`` is the start header's alone (sent before the code is read), ``refused`` the load
    reply's (the child validates the source again): from loaded code either is a protocol breach,
    so it cannot stop a factor search or point the user at ``--allow-unjailed-llm-code``."""
    worker = unguarded(f"KIND = {kind!r}\nSTAGE = {stage!r}\n" + FAKE_SETUP_ERROR)
    res = worker.run(OBS, ACT)
    assert res.error is not None and res.error.kind == "crashed", res.error
    assert "broke the protocol" in res.error.message and "could not be set up" not in res.error.message
    assert "--allow" not in res.error.message  # the child's text is not passed on
    assert worker._proc is None  # replaced on the next call


def test_an_unreadable_reply_header_is_a_crash_not_a_parser_error(unguarded):
    code = """
import os, struct
def compute_factors(obs, act):
    head = b"[" * 30000 + b"]" * 30000
    os.write(1, struct.pack(">I", len(head)) + head)
    return obs
"""
    res = unguarded(code).run(OBS, ACT)
    assert res.error is not None and res.error.kind == "crashed" and "unreadable header" in res.error.message


def test_a_child_that_stops_reading_cannot_block_the_parent(unguarded):
    code = """
import json, os, struct, time
def compute_factors(obs, act):
    head = json.dumps({"ok": True, "shape": [len(obs), 1], "payload": 8 * len(obs)}).encode()
    os.write(1, struct.pack(">I", len(head)) + head + obs[:, 0].tobytes())
    time.sleep(60)  # the reply is out; stdin is no longer read
"""
    worker = unguarded(code, SandboxLimits(timeout_s=1.0, memory_mb=256))
    first = worker.run(OBS, ACT)
    assert first.ok, first.error
    start = time.monotonic()
    second = worker.run(RNG.normal(size=(100_000, 11)), RNG.normal(size=(100_000, 3)))  # 11 MB into a full pipe
    assert second.error is not None and second.error.kind == "timeout" and "input" in second.error.message
    assert time.monotonic() - start < 4.0


ORPHAN_PARENT = """
import sys
import numpy as np
sys.path.insert(0, {repo!r})
from morec.credit.sandbox import SandboxLimits, SandboxWorker
worker = SandboxWorker("def compute_factors(obs, act):\\n    while obs[0, 0] > 0:\\n        pass\\n    return obs\\n",
                       SandboxLimits(timeout_s=600.0))
assert worker.run(-np.ones((2, 2)), np.zeros((2, 1))).ok
print(worker._proc.pid, flush=True)
worker.run(np.ones((2, 2)), np.zeros((2, 1)))  # loops until killed
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            return not any(line.startswith("State:") and "Z" in line for line in status)
    except FileNotFoundError:
        return False


def test_an_orphaned_child_dies_with_its_parent():
    repo = str(Path(__file__).resolve().parents[1])
    parent = subprocess.Popen(
        [sys.executable, "-c", ORPHAN_PARENT.format(repo=repo)], stdout=subprocess.PIPE, text=True
    )
    try:
        child = int(parent.stdout.readline())
        time.sleep(0.5)
        assert _alive(child)  # busy in its loop
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 5.0
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child), "the sandbox child outlived its parent"
    finally:
        parent.kill()
