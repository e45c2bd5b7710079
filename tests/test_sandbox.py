"""The sandbox for LLM-written factor code: what it refuses, what it stops, and that the caller survives."""

from __future__ import annotations

import os
import pickle
import time

import numpy as np
import pytest

from morec.credit import sandbox
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
    return np.stack([np.abs(obs[:, 0] - 1.25), obs[:, 5], np.linalg.norm(act, axis=1) ** 2, np.tanh(obs[:, 1]) * np.pi], axis=1)


def fn(body: str) -> str:
    """A compute_factors whose body is ``body`` (one or more lines)."""
    return "def compute_factors(obs, act):\n" + "".join(f"    {line}\n" for line in body.splitlines())


def test_good_code_runs_and_returns_factors():
    res = run_untrusted(GOOD, OBS, ACT, FAST)
    assert res.ok, res.error
    np.testing.assert_allclose(res.factors, expected_good(OBS, ACT))


@pytest.mark.parametrize("body, shape", [
    ("return [obs[:, 0], act[:, 1:2]]", (32, 2)),  # LaRe's list of [N] / [N, 1] factors
    ("return obs[:, 0] > 1.0", (32, 1)),  # one [N] factor, booleans become floats
    ("print('debug', obs.shape)\nreturn obs[:, :3]", (32, 3)),  # print is a harmless no-op
])
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
    assert safe.linalg.norm is np.linalg.norm and not hasattr(safe.linalg, "inv")


@pytest.mark.parametrize("body, kind, text", [
    ("return obs[:, 99]", "exception", "IndexError (line 2)"),
    ("return np.log(obs[:, :2] - 100.0)", "bad_output", "non-finite"),
    ("return obs[:3]", "bad_output", "rows"),
    ("return 'abc'", "bad_output", "dtype"),
    ("return []", "bad_output", "empty"),
    ("return [obs[:, 0], obs[:2, 1]]", "bad_output", "factor 1"),
])
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


@pytest.mark.parametrize("body", [
    "big = np.ones((100000, 100000))\nreturn obs",  # 80 GB at once
    "return [0] * (10 ** 10)",  # a Python list of 10 billion entries
    "keep = []\nfor i in range(1000):\n    keep.append(np.ones(10 ** 6))\nreturn obs",  # 8 MB at a time
])
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
