"""Run untrusted (LLM-written) factor code: static validation, then a separate, limited process.

The code must define ``def compute_factors(obs, act):`` (exactly two positional parameters) that
maps ``obs [N, O]`` and ``act [N, A]`` (float64 arrays) to ``[N, K]`` numbers, either one 2-D
array, a 1-D array (``K = 1``) or a list/tuple of ``K`` arrays shaped ``[N]`` or ``[N, 1]``.
``np`` (a reduced numpy) and ``math`` are pre-injected; nothing else is importable.

Two layers. The static check is the gate; the process limits bound the damage if the gate ever
missed something (no new file or socket, no file growth, bounded memory and time), but when the
caller runs as root they do not stop process creation on their own.

1. :func:`validate_source` (``ast``, before anything runs). Allow-lists, not deny-lists:

   - statements: ``def`` (no decorators), assignment, augmented/annotated assignment, ``return``,
     ``if``/``for``/``while``/``break``/``continue``/``pass``, ``with`` (for ``np.errstate``),
     ``try``/``except``, ``raise``, ``assert``, expression statements. Refused: ``import``,
     ``from ... import``, ``class`` (metaclass and dunder tricks), ``global``/``nonlocal``, ``del``,
     ``async``/``await``, ``yield`` (generator frames), ``match``, decorators. At module level only
     ``def``, assignments and a docstring.
   - names: any name starting with ``_`` is refused (``__import__``, ``__builtins__``, ...), and so
     are the escape hatches :data:`DENIED_NAMES` (``exec``, ``eval``, ``compile``, ``open``,
     ``input``, ``getattr``, ``setattr``, ``delattr``, ``globals``, ``locals``, ``vars``,
     ``breakpoint``, ``type``, ``object``, ...). ``np`` and ``math`` can neither be rebound nor used
     bare (``m = np`` would hide later attribute access from this check).
   - attributes of ``np``/``math``: the full dotted path (``np.linalg.norm``) must be in
     :data:`NUMPY_NAMES` (array maths, reductions, ``linalg.norm``, dtypes, ``errstate``) or be a
     public ``math`` function. Everything else (``np.load``, ``np.save``, ``np.fromfile``,
     ``np.memmap``, ``np.ctypeslib``, ``np.lib``, ``np.random``, ``np.testing``, ...) is refused:
     those are the file, raw-memory, process and nondeterminism routes through numpy.
   - attributes of anything else: only names in :data:`VALUE_ATTRIBUTES` (array and container
     methods such as ``shape``, ``sum``, ``reshape``, ``append``). This refuses every dunder
     (``().__class__.__bases__``), frame/generator internals (``gi_frame``, ``f_globals``), array
     escapes (``tofile``, ``dump``, ``ctypes``, ``base``) and ``str.format`` (whose field syntax
     reads attributes).

2. :class:`SandboxWorker` (at run time): the code is compiled and executed in a fresh
   ``python -I`` child (no user site, no ``PYTHON*`` variables, script directory not on the path)
   with an empty environment except single-threaded BLAS (API keys in the caller's environment
   never reach it), working directory ``/`` and stderr discarded. Before the untrusted code runs:
   builtins reduced to :data:`SAFE_BUILTIN_NAMES` plus a no-op ``print`` and an ``__import__``
   that only hands out numpy modules (numpy's C methods such as ``ndarray.mean`` import helpers
   through the caller's builtins; the code itself cannot name it); ``np`` replaced by a namespace
   holding only :data:`NUMPY_NAMES`; ``RLIMIT_AS`` = the interpreter's current address space +
   ``memory_mb``; ``RLIMIT_NOFILE`` = 3 (no new file, socket or pipe); ``RLIMIT_FSIZE`` = 0;
   ``RLIMIT_NPROC`` = 0 (no fork, for non-root users); ``RLIMIT_CORE`` = 0. The parent enforces a
   wall-clock timeout per call and kills the child (SIGKILL) when it expires. Arrays travel as raw
   float64 bytes behind a JSON header; the parent never unpickles anything from the child and
   re-checks every reply (shape, size, finiteness).

Failures come back as :class:`SandboxError` with ``kind`` one of :data:`ERROR_KINDS`:
``refused`` (validation), ``timeout``, ``memory`` (``MemoryError`` under the address-space limit),
``exception`` (the code raised), ``bad_output`` (wrong type/shape/rows, non-finite values) and
``crashed`` (the child died or broke the protocol). After ``timeout``, ``memory`` or ``crashed`` the
child is replaced by a fresh one on the next call.

Linux only (``resource`` limits, ``/proc``). Run as a script, this file is the child's runner.
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import os
import select
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Self

import numpy as np

ENTRY_POINT = "compute_factors"
ERROR_KINDS = ("refused", "timeout", "memory", "exception", "bad_output", "crashed")
MAX_SOURCE_CHARS = 50_000
MAX_COLUMNS = 1024  # hard cap on K in a reply; callers apply their own, smaller range

DENIED_NAMES = frozenset(
    "exec eval compile open input getattr setattr delattr hasattr globals locals vars dir "
    "breakpoint help type object super memoryview classmethod staticmethod property exit quit "
    "__import__".split()
)
SAFE_BUILTIN_NAMES = (
    "abs all any bool dict divmod enumerate filter float int isinstance iter len list map max min next pow "
    "range repr reversed round set slice sorted str sum tuple zip "
    "ArithmeticError Exception FloatingPointError IndexError KeyError ValueError ZeroDivisionError"
).split()
NUMPY_NAMES = frozenset(
    """array asarray zeros zeros_like ones ones_like full full_like arange linspace eye identity
    concatenate stack hstack vstack column_stack expand_dims squeeze reshape ravel transpose moveaxis
    swapaxes atleast_1d atleast_2d broadcast_to tile repeat where select clip take take_along_axis
    abs absolute sign sqrt square cbrt exp expm1 exp2 log log1p log2 log10 power sin cos tan arcsin
    arccos arctan arctan2 sinh cosh tanh arcsinh arccosh arctanh hypot deg2rad rad2deg degrees
    radians floor ceil round rint trunc mod fmod remainder divide true_divide floor_divide multiply
    add subtract negative reciprocal maximum minimum fmax fmin heaviside sinc interp digitize
    searchsorted sum mean std var min max amin amax prod cumsum cumprod diff median percentile
    quantile average ptp count_nonzero all any nansum nanmean nanmax nanmin argmax argmin argsort
    sort dot matmul inner outer einsum cross vdot isfinite isnan isinf nan_to_num logical_and
    logical_or logical_not logical_xor greater less equal not_equal greater_equal less_equal isclose
    pi e inf nan newaxis float32 float64 int32 int64 bool_ ndarray errstate linalg.norm""".split()
)
MATH_NAMES = frozenset(n for n in dir(math) if not n.startswith("_"))
VALUE_ATTRIBUTES = frozenset(
    """shape ndim size dtype T real imag flat astype reshape ravel flatten squeeze transpose swapaxes
    copy clip round fill sum mean std var min max prod cumsum cumprod any all argmin argmax argsort
    sort nonzero dot trace diagonal conj conjugate item tolist repeat take
    append extend insert pop index count keys values items get update remove reverse setdefault""".split()
)
_MODULES = ("np", "math")
_ALLOWED_NODES = (
    ast.Module, ast.FunctionDef, ast.arguments, ast.arg, ast.Return, ast.Assign, ast.AugAssign,
    ast.AnnAssign, ast.For, ast.While, ast.If, ast.With, ast.withitem, ast.Raise, ast.Try,
    ast.ExceptHandler, ast.Assert, ast.Pass, ast.Break, ast.Continue, ast.Expr, ast.BoolOp,
    ast.NamedExpr, ast.BinOp, ast.UnaryOp, ast.Lambda, ast.IfExp, ast.Dict, ast.Set, ast.ListComp,
    ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.comprehension, ast.Compare, ast.Call,
    ast.keyword, ast.FormattedValue, ast.JoinedStr, ast.Constant, ast.Attribute, ast.Subscript,
    ast.Starred, ast.Name, ast.List, ast.Tuple, ast.Slice,
    ast.expr_context, ast.boolop, ast.operator, ast.unaryop, ast.cmpop,
)


class SandboxError(RuntimeError):
    """Untrusted code was refused or failed. ``kind`` is one of :data:`ERROR_KINDS`."""

    def __init__(self, kind: str, message: str):
        if kind not in ERROR_KINDS:
            raise ValueError(f"unknown sandbox error kind {kind!r}")
        super().__init__(f"[{kind}] {message}")
        self.kind = kind
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "message": self.message}


@dataclass(frozen=True)
class SandboxLimits:
    """``timeout_s``: wall clock per call (and for loading the code); ``memory_mb``: address space
    the code may add on top of the bare interpreter with numpy."""

    timeout_s: float = 5.0
    memory_mb: int = 1024

    def __post_init__(self) -> None:
        if self.timeout_s <= 0 or self.memory_mb <= 0:
            raise ValueError(f"sandbox limits must be positive, got {self}")


@dataclass(frozen=True)
class SandboxResult:
    """One call: ``factors [N, K]`` float64 or ``error``; ``seconds`` of wall clock."""

    factors: np.ndarray | None
    error: SandboxError | None
    seconds: float

    @property
    def ok(self) -> bool:
        return self.error is None

    def unwrap(self) -> np.ndarray:
        if self.error is not None:
            raise self.error
        assert self.factors is not None
        return self.factors


# ---------------------------------------------------------------------------------- validation
def validate_source(source: str, entry_point: str = ENTRY_POINT) -> ast.Module:
    """Parse and check ``source`` against the rules in the module docstring; raise
    ``SandboxError("refused", ...)`` naming the first offending line."""
    if not isinstance(source, str) or not source.strip():
        raise SandboxError("refused", "the source is empty")
    if len(source) > MAX_SOURCE_CHARS:
        raise SandboxError("refused", f"the source has {len(source)} characters; the limit is {MAX_SOURCE_CHARS}")
    try:
        tree = ast.parse(source, filename="<llm-factors>")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as err:
        raise SandboxError("refused", f"the source does not parse: {err}") from None
    _Checker().visit(tree)
    for stmt in tree.body:
        docstring = isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
        if not (docstring or isinstance(stmt, (ast.FunctionDef, ast.Assign, ast.AnnAssign))):
            _refuse(stmt, f"only function definitions and assignments may appear at module level, not {type(stmt).__name__}")
    entries = [s for s in tree.body if isinstance(s, ast.FunctionDef) and s.name == entry_point]
    if not entries:
        raise SandboxError("refused", f"no top-level function `def {entry_point}(obs, act):` is defined")
    args = entries[-1].args
    if len(args.posonlyargs) + len(args.args) != 2 or args.vararg or args.kwarg or args.kwonlyargs:
        _refuse(entries[-1], f"`{entry_point}` must take exactly two positional parameters (obs, act)")
    return tree


def _refuse(node: ast.AST, why: str) -> None:
    raise SandboxError("refused", f"line {getattr(node, 'lineno', '?')}: {why}")


def _attribute_path(node: ast.Attribute) -> tuple[ast.expr, list[str]]:
    parts = []
    base: ast.expr = node
    while isinstance(base, ast.Attribute):
        parts.append(base.attr)
        base = base.value
    return base, parts[::-1]


class _Checker(ast.NodeVisitor):
    def generic_visit(self, node: ast.AST) -> None:
        if not isinstance(node, _ALLOWED_NODES):
            _refuse(node, f"`{type(node).__name__}` is not allowed (imports, classes, global, del, yield, async and match are refused)")
        super().generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        if node.decorator_list:
            _refuse(node, "decorators are not allowed")
        self._check_binding(node, node.name)
        self.generic_visit(node)

    def visit_arg(self, node: ast.arg) -> None:
        self._check_binding(node, node.arg)
        self.generic_visit(node)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self._check_binding(node, node.name)
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        self._check_name(node, node.id)
        if node.id in _MODULES:
            if not isinstance(node.ctx, ast.Load):
                _refuse(node, f"`{node.id}` cannot be rebound")
            _refuse(node, f"`{node.id}` may only be used as `{node.id}.<function>`")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        base, parts = _attribute_path(node)
        if isinstance(base, ast.Name) and base.id in _MODULES:
            path = ".".join(parts)
            allowed = NUMPY_NAMES if base.id == "np" else MATH_NAMES
            if not isinstance(node.ctx, ast.Load):
                _refuse(node, f"`{base.id}.{path}` cannot be assigned")
            if path not in allowed:
                _refuse(node, f"`{base.id}.{path}` is not available: only array maths, no file, memory, process or random access")
            return
        if node.attr.startswith("_"):
            _refuse(node, f"attribute `{node.attr}` is refused (names starting with `_`)")
        if node.attr not in VALUE_ATTRIBUTES:
            _refuse(node, f"attribute `.{node.attr}` is not allowed; allowed: {', '.join(sorted(VALUE_ATTRIBUTES))}")
        self.visit(node.value)

    def _check_binding(self, node: ast.AST, name: str) -> None:
        self._check_name(node, name)
        if name in _MODULES:
            _refuse(node, f"`{name}` cannot be rebound")

    @staticmethod
    def _check_name(node: ast.AST, name: str) -> None:
        if name.startswith("_"):
            _refuse(node, f"name `{name}` is refused (names starting with `_`)")
        if name in DENIED_NAMES:
            _refuse(node, f"`{name}` is refused (no exec/eval/compile, file access or reflection)")


def code_digest(source: str) -> str:
    """Short stable hash of a source text, for naming encoders and files."""
    return hashlib.sha256(source.encode()).hexdigest()[:12]


# ---------------------------------------------------------------------------------- wire format
# A message is: 4-byte big-endian header length, the JSON header, then header["payload"] raw bytes.
def _frame(header: dict[str, Any], payload: bytes = b"") -> bytes:
    head = json.dumps({**header, "payload": len(payload)}).encode()
    return struct.pack(">I", len(head)) + head + payload


def _to_bytes(*arrays: np.ndarray) -> bytes:
    return b"".join(np.ascontiguousarray(a, dtype=np.float64).tobytes() for a in arrays)


# ---------------------------------------------------------------------------------- parent side
class SandboxWorker:
    """One child process holding one compiled ``compute_factors``; started lazily, replaced after a
    timeout, memory error or crash. Thread-safe; use as a context manager or call :meth:`close`."""

    _MAX_HEADER = 1 << 20
    _STARTUP_S = 30.0  # interpreter + numpy import, before any untrusted code runs

    def __init__(self, code: str, limits: SandboxLimits = SandboxLimits()):
        validate_source(code)
        self.code = code
        self.limits = limits
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def run(self, obs: np.ndarray, act: np.ndarray) -> SandboxResult:
        """Compute the factors of ``obs [N, O]``, ``act [N, A]``; never raises for the code's faults."""
        obs, act = _as_batch(obs, act)
        start = time.monotonic()
        with self._lock:
            try:
                factors = self._call(obs, act)
                return SandboxResult(factors, None, time.monotonic() - start)
            except SandboxError as err:
                if err.kind in ("timeout", "memory", "crashed"):
                    self._kill()
                return SandboxResult(None, err, time.monotonic() - start)

    def close(self) -> None:
        with self._lock:
            self._kill()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self._kill()

    # -- internals
    def _call(self, obs: np.ndarray, act: np.ndarray) -> np.ndarray:
        proc = self._proc if self._proc is not None and self._proc.poll() is None else self._start()
        header = {"op": "call", "obs_shape": list(obs.shape), "act_shape": list(act.shape)}
        reply, payload = self._exchange(proc, _frame(header, _to_bytes(obs, act)), max_payload=8 * len(obs) * MAX_COLUMNS)
        shape = reply.get("shape")
        if not (isinstance(shape, list) and len(shape) == 2 and all(isinstance(s, int) for s in shape)):
            raise SandboxError("crashed", f"the sandbox replied without a valid shape: {reply!r:.200}")
        if shape[0] != len(obs) or not 1 <= shape[1] <= MAX_COLUMNS or len(payload) != 8 * shape[0] * shape[1]:
            raise SandboxError("crashed", f"the sandbox reply has an inconsistent shape {shape} or size")
        factors = np.frombuffer(payload, dtype=np.float64).reshape(shape).copy()
        bad = int(np.size(factors) - np.isfinite(factors).sum())
        if bad:
            cols = sorted(set(np.nonzero(~np.isfinite(factors))[1].tolist()))
            raise SandboxError("bad_output", f"{bad} non-finite values (NaN/inf) in factor column(s) {cols}; "
                                             "guard divisions, logs and square roots")
        return factors

    def _start(self) -> subprocess.Popen:
        self._kill()
        env = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "LC_ALL": "C"}
        proc = subprocess.Popen(
            [sys.executable, "-I", os.path.abspath(__file__)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, cwd="/", close_fds=True, start_new_session=True,
        )
        self._proc = proc
        self._receive(proc, time.monotonic() + self._STARTUP_S)  # interpreter and numpy are up
        msg = {"op": "load", "source": self.code, "entry_point": ENTRY_POINT, "memory_mb": self.limits.memory_mb}
        self._exchange(proc, _frame(msg))
        return proc

    def _exchange(self, proc: subprocess.Popen, message: bytes, max_payload: int = 0) -> tuple[dict, bytes]:
        deadline = time.monotonic() + self.limits.timeout_s
        try:
            assert proc.stdin is not None
            proc.stdin.write(message)
            proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise SandboxError("crashed", self._death_note(proc)) from None
        return self._receive(proc, deadline, max_payload)

    def _receive(self, proc: subprocess.Popen, deadline: float, max_payload: int = 0) -> tuple[dict, bytes]:
        (size,) = struct.unpack(">I", self._read(proc, 4, deadline))
        if size > self._MAX_HEADER:
            raise SandboxError("crashed", "the sandbox broke the protocol (oversized header)")
        try:
            reply = json.loads(self._read(proc, size, deadline))
            n_payload = int(reply["payload"])
        except (ValueError, KeyError, TypeError):
            raise SandboxError("crashed", "the sandbox broke the protocol (unreadable header)") from None
        if not 0 <= n_payload <= max_payload:
            raise SandboxError("crashed", f"the sandbox broke the protocol (announced {n_payload} bytes)")
        payload = self._read(proc, n_payload, deadline) if n_payload else b""
        if not reply.get("ok"):
            kind = reply.get("kind") if reply.get("kind") in ERROR_KINDS else "crashed"
            raise SandboxError(kind, str(reply.get("message", "no message"))[:2000])
        return reply, payload

    def _read(self, proc: subprocess.Popen, n: int, deadline: float) -> bytes:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        chunks, got = [], 0
        while got < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise SandboxError("timeout", f"no answer within {self.limits.timeout_s:g} s; the code was stopped "
                                              "(avoid unbounded loops and per-row Python loops over large batches)")
            chunk = os.read(fd, min(n - got, 1 << 20))
            if not chunk:
                raise SandboxError("crashed", self._death_note(proc))
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    @staticmethod
    def _death_note(proc: subprocess.Popen) -> str:
        try:
            code = proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            return "the sandbox process stopped answering"
        detail = ""
        if proc.stderr is not None:
            detail = proc.stderr.read().decode(errors="replace").strip()[-500:]
        how = f"signal {-code}" if code < 0 else f"exit code {code}"
        return f"the sandbox process died ({how})" + (f": {detail}" if detail else "")

    def _kill(self) -> None:
        proc, self._proc = getattr(self, "_proc", None), None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        try:
            proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            pass
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass


def _as_batch(obs: Any, act: Any) -> tuple[np.ndarray, np.ndarray]:
    obs = np.ascontiguousarray(obs, dtype=np.float64)
    act = np.ascontiguousarray(act, dtype=np.float64)
    if obs.ndim != 2 or act.ndim != 2 or len(obs) != len(act) or len(obs) == 0:
        raise ValueError(f"expected obs [N, O] and act [N, A] with the same N > 0, got {obs.shape} and {act.shape}")
    return obs, act


def run_untrusted(source: str, obs: np.ndarray, act: np.ndarray, limits: SandboxLimits = SandboxLimits()) -> SandboxResult:
    """Validate ``source`` and run it once in a fresh child; refusals come back as a result too."""
    start = time.monotonic()
    try:
        worker = SandboxWorker(source, limits)
    except SandboxError as err:
        return SandboxResult(None, err, time.monotonic() - start)
    with worker:
        return worker.run(obs, act)


class SandboxedEncoder:
    """A factor encoder ``(obs [N, O], act [N, A]) -> [N, K]`` running untrusted code in a
    :class:`SandboxWorker`; large batches go in chunks of ``max_rows`` (each with the full timeout).
    Raises :class:`SandboxError` when the code fails."""

    source = "llm"

    def __init__(self, code: str, name: str, limits: SandboxLimits = SandboxLimits(), *,
                 n_factors: int | None = None, max_rows: int = 65_536):
        if max_rows < 1:
            raise ValueError(f"max_rows must be positive, got {max_rows}")
        self.code = code
        self.name = name
        self.n_factors = n_factors
        self.limits = limits
        self.max_rows = max_rows
        self._worker = SandboxWorker(code, limits)

    def __call__(self, obs: np.ndarray, act: np.ndarray) -> np.ndarray:
        obs, act = _as_batch(obs, act)
        parts = [self._worker.run(obs[i:i + self.max_rows], act[i:i + self.max_rows]).unwrap()
                 for i in range(0, len(obs), self.max_rows)]
        out = np.concatenate(parts)
        if self.n_factors is not None and out.shape[1] != self.n_factors:
            raise SandboxError("bad_output", f"{self.name} returned {out.shape[1]} factors, expected {self.n_factors}")
        return out

    def close(self) -> None:
        self._worker.close()

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_worker"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._worker = SandboxWorker(self.code, self.limits)

    def __repr__(self) -> str:
        return f"SandboxedEncoder(name={self.name!r}, n_factors={self.n_factors}, source={self.source!r})"


# ---------------------------------------------------------------------------------- child side
def _safe_numpy() -> Any:
    import types

    ns = types.SimpleNamespace(**{n: getattr(np, n) for n in NUMPY_NAMES if "." not in n})
    ns.linalg = types.SimpleNamespace(norm=np.linalg.norm)
    return ns


def _numpy_only_import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
    """``__import__`` for the sandbox: numpy's C functions (``ndarray.mean`` ...) import their
    helper modules through the *calling* frame's builtins. Only numpy modules, already loaded
    (no file can be opened any more); the validated code cannot name it (leading underscore)."""
    if level == 0 and (name == "numpy" or name.startswith("numpy.")):
        return __import__(name, globals, locals, fromlist, level)
    raise ImportError(f"import of {name!r} is not allowed in the sandbox")


def _limit_process(memory_mb: int) -> None:
    import resource

    import numpy.ma  # noqa: F401  # median/percentile load it lazily; no file can be opened later

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    with open("/proc/self/status") as status:
        vm_kb = next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))
    address_space = vm_kb * 1024 + memory_mb * (1 << 20)
    for limit, value in ((resource.RLIMIT_AS, address_space), (resource.RLIMIT_NOFILE, 3),
                         (resource.RLIMIT_FSIZE, 0), (resource.RLIMIT_CORE, 0), (resource.RLIMIT_NPROC, 0)):
        resource.setrlimit(limit, (value, value))


def _describe(err: BaseException) -> str:
    tb, line = err.__traceback__, None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<llm-factors>":
            line = tb.tb_lineno
        tb = tb.tb_next
    where = f" (line {line})" if line else ""
    return f"{type(err).__name__}{where}: {err}"[:1000]


def _as_factor_matrix(out: Any, n: int) -> np.ndarray:
    """The code's return value as ``[n, K]`` float64, or ``SandboxError("bad_output")``."""

    def numeric(value: Any, what: str) -> np.ndarray:
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError) as err:
            raise SandboxError("bad_output", f"{what} is not an array: {err}") from None
        if arr.dtype.kind not in "biuf":
            raise SandboxError("bad_output", f"{what} has dtype {arr.dtype}; return real numbers")
        return arr

    if isinstance(out, (list, tuple)):
        if not out:
            raise SandboxError("bad_output", "the function returned an empty list")
        cols = []
        for i, part in enumerate(out):
            arr = numeric(part, f"factor {i}")
            if arr.shape not in ((n,), (n, 1)):
                raise SandboxError("bad_output", f"factor {i} has shape {arr.shape}; each factor in a list must be [N] or [N, 1] with N = {n}")
            cols.append(arr.reshape(n, 1))
        mat = np.concatenate(cols, axis=1)
    else:
        mat = numeric(out, "the output")
        if mat.shape == (n,):
            mat = mat[:, None]
    if mat.ndim != 2 or mat.shape[0] != n:
        raise SandboxError("bad_output", f"the output has shape {mat.shape}; return [N, K] with N = {n} rows (one per input row)")
    if not 1 <= mat.shape[1] <= MAX_COLUMNS:
        raise SandboxError("bad_output", f"the output has {mat.shape[1]} columns; return between 1 and {MAX_COLUMNS}")
    return np.ascontiguousarray(mat, dtype=np.float64)


def _serve() -> None:  # pragma: no cover - runs in the child process
    import builtins
    import warnings

    warnings.simplefilter("ignore")
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr

    def read_exact(n: int) -> bytes:
        data = stdin.read(n)
        if len(data) != n:
            raise SystemExit(0)  # the parent went away
        return data

    def receive() -> tuple[dict, bytes]:
        (size,) = struct.unpack(">I", read_exact(4))
        header = json.loads(read_exact(size))
        return header, read_exact(header["payload"]) if header["payload"] else b""

    def send(header: dict, payload: bytes = b"") -> None:
        stdout.write(_frame(header, payload))
        stdout.flush()

    def fail(kind: str, message: str) -> None:
        send({"ok": False, "kind": kind, "message": message})

    send({"ok": True})  # started
    header, _ = receive()
    safe_builtins = {n: getattr(builtins, n) for n in SAFE_BUILTIN_NAMES}
    safe_builtins["print"] = lambda *args, **kwargs: None
    safe_builtins["__import__"] = _numpy_only_import  # numpy's C code imports through the caller's builtins
    namespace: dict[str, Any] = {"__builtins__": safe_builtins, "np": _safe_numpy(), "math": math, "__name__": "llm_factors"}
    try:
        tree = validate_source(header["source"], header["entry_point"])
        code = compile(tree, "<llm-factors>", "exec")
        _limit_process(int(header["memory_mb"]))
        exec(code, namespace)  # noqa: S102  # validated source, limited process, reduced builtins
        func = namespace[header["entry_point"]]
    except SandboxError as err:
        return fail(err.kind, err.message)
    except MemoryError as err:
        return fail("memory", f"out of memory while loading the code: {_describe(err)}")
    except BaseException as err:  # noqa: BLE001  # report whatever the code raised
        return fail("exception", f"loading the code raised {_describe(err)}")
    send({"ok": True})
    while True:
        header, payload = receive()
        try:
            n, o = header["obs_shape"]
            a = header["act_shape"][1]
            flat = np.frombuffer(payload, dtype=np.float64)
            obs, act = flat[: n * o].reshape(n, o).copy(), flat[n * o:].reshape(n, a).copy()
            out = _as_factor_matrix(func(obs, act), n)
        except SandboxError as err:
            fail(err.kind, err.message)
            continue
        except MemoryError as err:
            fail("memory", f"the code exceeded the memory limit: {_describe(err)}")
            continue
        except BaseException as err:  # noqa: BLE001  # report whatever the code raised
            fail("exception", f"the code raised {_describe(err)}")
            continue
        send({"ok": True, "shape": list(out.shape)}, out.tobytes())


if __name__ == "__main__":
    _serve()
