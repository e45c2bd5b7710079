"""Run untrusted (LLM-written) factor code: static validation, then a separate, jailed process.

The code must define ``def compute_factors(obs, act):`` (exactly two positional parameters) that
maps ``obs [N, O]`` and ``act [N, A]`` (float64 arrays) to ``[N, K]`` numbers, either one 2-D
array, a 1-D array (``K = 1``) or a list/tuple of ``K`` arrays shaped ``[N]`` or ``[N, 1]``.
``np`` (a reduced numpy) and ``math`` are pre-injected; nothing else is importable.

Two independent layers: the static check is the gate, and the jail (:mod:`morec.credit.jail`)
contains whatever the gate misses.

1. :func:`validate_source` (``ast``, before anything runs). Allow-lists, not deny-lists:

   - statements: ``def`` (no decorators), assignment, augmented/annotated assignment, ``return``,
     ``if``/``for``/``while``/``break``/``continue``/``pass``, ``with`` (for ``np.errstate``),
     ``try``/``except``, ``raise``, ``assert``, expression statements. Refused: ``import``,
     ``from ... import``, ``class``, ``global``/``nonlocal``, ``del``, ``async``/``await``,
     ``yield``, ``match``, decorators. At module level only ``def``, assignments and a docstring.
     Nesting deeper than :data:`MAX_NESTING` is refused (deep expressions would exhaust the
     compiler's recursion).
   - names: any name starting with ``_`` is refused, and so are :data:`DENIED_NAMES` (``exec``,
     ``eval``, ``open``, ``getattr``, ``type``, ``object``, ...). ``np`` and ``math`` can neither be
     rebound nor used bare.
   - ``np``/``math``: the dotted path (``np.linalg.norm``) must be in :data:`NUMPY_NAMES` or be a
     public ``math`` function. Functions may only be *called* (``f = np.zeros`` is refused), so
     every call of them is visible to the checks below. The ``np.ndarray`` constructor, raw-memory
     routes (``frombuffer``, ``lib.stride_tricks``, ``ctypeslib``, ``memmap``), files, processes
     and randomness are not in the list.
   - dtypes: wherever a dtype can go (``dtype=``, the positional dtype slot of the numpy function
     or :data:`METHOD_DTYPE_SLOTS` method) only :data:`DTYPE_NAMES` (``np.float64``, ``float``,
     ...) or a string naming a plain numeric dtype (``"float32"``, ``"f8"``) is accepted: no
     object, void, structured, string or computed dtype. ``*args`` and ``**kwargs`` in calls are
     refused (they would hide a dtype slot).
   - attributes of anything else: read-only properties in :data:`VALUE_PROPERTIES` and methods in
     :data:`VALUE_METHODS`, the latter only called. Attributes are never assigned. This refuses
     every dunder, frame internals, ``view``, ``data``, ``ctypes``, ``base``, ``tofile`` and
     ``str.format``.

2. :class:`SandboxWorker` (at run time): the code is compiled and executed in a fresh
   ``python -I`` child with an empty environment except single-threaded BLAS, working directory
   ``/`` and stderr discarded. The child loads numpy, then jails itself (death with its parent,
   resource limits, network and IPC namespaces, uid ``nobody`` when started as root, a seccomp
   filter refusing files, processes, sockets and signals), then reads the code: builtins reduced to
   :data:`SAFE_BUILTIN_NAMES` plus a no-op ``print``, ``np`` a namespace of :data:`NUMPY_NAMES`.
   The parent bounds every write and read with the timeout and kills the child's process group
   when it expires; it never unpickles anything from the child, parses its replies defensively,
   checks the announced shape before reading any payload (so a lying reply costs no memory) and
   re-checks every value. Error text from the child is redacted before anyone sees it.

Failures come back as :class:`SandboxError` with ``kind`` one of :data:`ERROR_KINDS`:
``refused`` (validation), ``unjailed`` (no jail on this system, see below), ``timeout``,
``memory`` (``MemoryError`` under the address-space limit), ``exception`` (the code raised),
``bad_output`` (wrong type/shape/rows/column count, non-finite values) and ``crashed`` (the child
died or broke the protocol). After anything but ``refused``, ``exception`` and a value check the
child is replaced by a fresh one on the next call.

The jail needs Linux on x86-64 or AArch64. Elsewhere (macOS, Windows) untrusted code is refused
with ``unjailed`` unless ``SandboxLimits(allow_unjailed=True)`` (``morec relabel
--allow-unjailed-llm-code``) says to run it behind the static gate and resource limits alone.

Run as a script, this file is the child's runner.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
import math
import os
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Self

import numpy as np

if __package__:
    from . import jail
    from .redaction import redact
else:  # the child runs this file by path: `python -I` puts no package on the path
    import importlib.util

    def _sibling(name: str) -> Any:
        spec = importlib.util.spec_from_file_location(f"morec_sandbox_{name}", os.path.join(os.path.dirname(__file__), f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module

    jail = _sibling("jail")

ENTRY_POINT = "compute_factors"
ERROR_KINDS = ("refused", "unjailed", "timeout", "memory", "exception", "bad_output", "crashed")
MAX_SOURCE_CHARS = 50_000
MAX_NESTING = 100  # AST depth; CPython's compiler recurses once per level
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
NUMPY_DTYPES = frozenset("float32 float64 int32 int64 bool_".split())
NUMPY_CONSTANTS = frozenset("pi e inf nan newaxis".split())
NUMPY_FUNCTIONS = frozenset(
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
    errstate linalg.norm""".split()
)
NUMPY_NAMES = NUMPY_DTYPES | NUMPY_CONSTANTS | NUMPY_FUNCTIONS
MATH_NAMES = frozenset(n for n in dir(math) if not n.startswith("_"))
DTYPE_NAMES = frozenset({"float", "int", "bool"} | {f"np.{n}" for n in NUMPY_DTYPES})
VALUE_PROPERTIES = frozenset("shape ndim size dtype T real imag flat".split())
VALUE_METHODS = frozenset(
    """astype reshape ravel flatten squeeze transpose swapaxes copy clip round fill sum mean std var
    min max prod cumsum cumprod any all argmin argmax argsort sort nonzero dot trace diagonal conj
    conjugate item tolist repeat take
    append extend insert pop index count keys values items get update remove reverse setdefault""".split()
)
VALUE_ATTRIBUTES = VALUE_PROPERTIES | VALUE_METHODS
# positional index of the dtype parameter of array methods (numpy's C methods have no signature)
METHOD_DTYPE_SLOTS = {"astype": 0, "sum": 1, "mean": 1, "std": 1, "var": 1, "prod": 1, "cumsum": 1, "cumprod": 1, "trace": 3}
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


def _numpy_object(path: str) -> Any:
    obj: Any = np
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _dtype_slots() -> dict[str, int | None]:
    """For each allowed numpy function, the positional index of its ``dtype`` parameter (``None``
    when dtype is keyword-only or absent). A function whose parameters cannot be read is left out
    of the allow-list (fail closed)."""
    slots: dict[str, int | None] = {}
    for path in sorted(NUMPY_FUNCTIONS):
        func = _numpy_object(path)
        if isinstance(func, (np.ufunc, type)):  # ufuncs take dtype by keyword only; errstate has none
            slots[path] = None
            continue
        try:
            params = list(inspect.signature(func).parameters.values())
        except (TypeError, ValueError):
            continue
        positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        slots[path] = positional.index("dtype") if "dtype" in positional else None
    return slots


NUMPY_DTYPE_SLOTS = _dtype_slots()


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
    the code may add on top of the bare interpreter with numpy; ``cpu_s``: CPU seconds one child
    may use in its life (the parent replaces it at half of that); ``allow_unjailed``: run on a
    system without the jail (static gate and resource limits only) instead of refusing."""

    timeout_s: float = 5.0
    memory_mb: int = 1024
    cpu_s: int = 600
    allow_unjailed: bool = False

    def __post_init__(self) -> None:
        if self.timeout_s <= 0 or self.memory_mb <= 0 or self.cpu_s <= 0:
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
    ``SandboxError("refused", ...)`` naming the first offending line, and nothing else."""
    if not isinstance(source, str) or not source.strip():
        raise SandboxError("refused", "the source is empty")
    if len(source) > MAX_SOURCE_CHARS:
        raise SandboxError("refused", f"the source has {len(source)} characters; the limit is {MAX_SOURCE_CHARS}")
    try:
        tree = ast.parse(source, filename="<llm-factors>")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as err:
        raise SandboxError("refused", f"the source does not parse: {err}") from None
    _check_nesting(tree)
    try:
        _Checker().visit(tree)
    except RecursionError:
        raise SandboxError("refused", "the code is nested too deeply to check") from None
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


def _check_nesting(tree: ast.AST) -> None:
    """Refuse trees deeper than :data:`MAX_NESTING` (iteratively, so the check cannot overflow)."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING:
            _refuse(node, f"the code is nested more than {MAX_NESTING} levels deep (split long expressions into steps)")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def _attribute_path(node: ast.Attribute) -> tuple[ast.expr, list[str]]:
    parts = []
    base: ast.expr = node
    while isinstance(base, ast.Attribute):
        parts.append(base.attr)
        base = base.value
    return base, parts[::-1]


def _module_path(node: ast.expr) -> tuple[str, str] | None:
    """``("np", "linalg.norm")`` for ``np.linalg.norm``; ``None`` for anything not on a module."""
    if not isinstance(node, ast.Attribute):
        return None
    base, parts = _attribute_path(node)
    if isinstance(base, ast.Name) and base.id in _MODULES:
        return base.id, ".".join(parts)
    return None


def _is_numeric_dtype(node: ast.expr) -> bool:
    """Whether ``node`` is an allowed dtype: ``None``, a name in :data:`DTYPE_NAMES` or a string
    naming a plain numeric (bool, integer, float) dtype."""
    if isinstance(node, ast.Constant):
        if node.value is None:
            return True
        if not isinstance(node.value, str) or len(node.value) > 16:
            return False
        try:
            dtype = np.dtype(node.value)
        except (TypeError, ValueError, SyntaxError):
            return False
        return dtype.kind in "biuf" and dtype.fields is None and dtype.subdtype is None
    if isinstance(node, ast.Name):
        return node.id in DTYPE_NAMES
    module = _module_path(node)
    return module is not None and f"{module[0]}.{module[1]}" in DTYPE_NAMES


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

    def visit_Call(self, node: ast.Call) -> None:
        if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
            _refuse(node, "`*args` and `**kwargs` in calls are not allowed; pass arguments one by one")
        slot = self._dtype_slot(node.func)
        dtypes = [k.value for k in node.keywords if k.arg == "dtype"]
        if slot is not None and slot < len(node.args):
            dtypes.append(node.args[slot])
        for dtype in dtypes:
            if not _is_numeric_dtype(dtype):
                _refuse(dtype, f"dtype must be one of {', '.join(sorted(DTYPE_NAMES))} or a numeric dtype string such as "
                               "'float64' (no object, void, structured or computed dtypes)")
        if isinstance(node.func, ast.Attribute):
            self._check_attribute(node.func, called=True)
        else:
            self.visit(node.func)
        for child in [*node.args, *node.keywords]:
            self.visit(child)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self._check_attribute(node, called=False)

    @staticmethod
    def _dtype_slot(func: ast.expr) -> int | None:
        module = _module_path(func)
        if module is not None:
            return NUMPY_DTYPE_SLOTS.get(module[1]) if module[0] == "np" else None
        if isinstance(func, ast.Attribute):
            return METHOD_DTYPE_SLOTS.get(func.attr)
        return None

    def _check_attribute(self, node: ast.Attribute, called: bool) -> None:
        if not isinstance(node.ctx, ast.Load):
            _refuse(node, f"attributes cannot be assigned (`.{node.attr} = ...`)")
        module = _module_path(node)
        if module is not None:
            name, path = module
            if name == "np":
                if path not in NUMPY_NAMES or (path in NUMPY_FUNCTIONS and path not in NUMPY_DTYPE_SLOTS):
                    _refuse(node, f"`np.{path}` is not available: only array maths, no file, memory, process or random access")
                if path in NUMPY_FUNCTIONS and not called:
                    _refuse(node, f"`np.{path}` may only be called, not passed around or stored")
            elif path not in MATH_NAMES:
                _refuse(node, f"`math.{path}` is not available")
            return
        if node.attr.startswith("_"):
            _refuse(node, f"attribute `{node.attr}` is refused (names starting with `_`)")
        if node.attr in VALUE_METHODS:
            if not called:
                _refuse(node, f"method `.{node.attr}` may only be called, not passed around or stored")
        elif node.attr not in VALUE_PROPERTIES:
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
    """One jailed child process holding one compiled ``compute_factors``; started lazily, replaced
    after a timeout, memory error, crash or protocol breach. Thread-safe; use as a context manager
    or call :meth:`close`. The child dies with the thread that started it (``PR_SET_PDEATHSIG``):
    if that thread ends first, the next call starts a new child. ``jail`` holds what the last
    child reported of its jail (``None`` before the first start)."""

    _MAX_HEADER = 1 << 16
    _STARTUP_S = 30.0  # interpreter + numpy import, before any untrusted code runs

    def __init__(self, code: str, limits: SandboxLimits = SandboxLimits()):
        validate_source(code)
        _require_jail(limits)
        self.code = code
        self.limits = limits
        self.jail: dict[str, Any] | None = None
        self._proc: subprocess.Popen | None = None
        self._in_sync = True  # False while a message or reply is half-way through the pipes
        self._lock = threading.Lock()

    def run(self, obs: np.ndarray, act: np.ndarray, max_columns: int = MAX_COLUMNS) -> SandboxResult:
        """Compute the factors of ``obs [N, O]``, ``act [N, A]``; a reply announcing more than
        ``max_columns`` columns is refused before its payload is read. Never raises for the
        code's faults."""
        obs, act = _as_batch(obs, act)
        start = time.monotonic()
        with self._lock:
            try:
                factors = self._call(obs, act, max_columns)
                return SandboxResult(factors, None, time.monotonic() - start)
            except SandboxError as err:
                if err.kind in ("timeout", "memory", "crashed") or not self._in_sync:
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
    def _call(self, obs: np.ndarray, act: np.ndarray, max_columns: int) -> np.ndarray:
        proc = self._proc if self._proc is not None and self._proc.poll() is None else None
        if proc is None or _cpu_seconds(proc.pid) > self.limits.cpu_s / 2:
            proc = self._start()
        header = {"op": "call", "obs_shape": list(obs.shape), "act_shape": list(act.shape)}
        deadline = time.monotonic() + self.limits.timeout_s
        self._in_sync = False
        self._write(proc, _frame(header, _to_bytes(obs, act)), deadline)
        reply = self._receive_header(proc, deadline)
        shape = reply.get("shape")
        if not (isinstance(shape, list) and len(shape) == 2 and all(type(s) is int for s in shape)):
            raise SandboxError("crashed", "the sandbox replied without a valid shape")
        if shape[0] != len(obs) or reply.get("payload") != 8 * shape[0] * shape[1]:
            raise SandboxError("crashed", f"the sandbox reply has an inconsistent shape {shape} or size")
        if not 1 <= shape[1] <= max_columns:
            raise SandboxError("bad_output", f"the code returned {shape[1]} factors on {shape[0]} rows; "
                                             f"expected between 1 and {max_columns}")
        payload = self._read(proc, reply["payload"], deadline)
        self._in_sync = True
        factors = np.frombuffer(payload, dtype=np.float64).reshape(shape).copy()
        bad = int(np.size(factors) - np.isfinite(factors).sum())
        if bad:
            cols = sorted(set(np.nonzero(~np.isfinite(factors))[1].tolist()))
            raise SandboxError("bad_output", f"{bad} non-finite values (NaN/inf) in factor column(s) {cols}; "
                                             "guard divisions, logs and square roots")
        return factors

    def _child_argv(self) -> list[str]:
        """The child's command line: this file as a script, with its limits and our pid."""
        limits = self.limits
        return [sys.executable, "-I", os.path.abspath(__file__), str(limits.memory_mb), str(limits.cpu_s),
                str(os.getpid()), "allow-unjailed" if limits.allow_unjailed else "jailed"]

    def _start(self) -> subprocess.Popen:
        self._kill()
        env = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "LC_ALL": "C"}
        proc = subprocess.Popen(
            self._child_argv(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=env, cwd="/", close_fds=True, start_new_session=True,
        )
        os.set_blocking(proc.stdin.fileno(), False)
        self._proc = proc
        self._in_sync = False
        try:
            started = self._receive_header(proc, time.monotonic() + self._STARTUP_S)
            self.jail = started.get("jail") if isinstance(started.get("jail"), dict) else None
            deadline = time.monotonic() + self.limits.timeout_s
            self._write(proc, _frame({"op": "load", "source": self.code, "entry_point": ENTRY_POINT}), deadline)
            self._receive_header(proc, deadline)
        except SandboxError:
            self._kill()  # a child that failed to start or load has exited or is of no further use
            raise
        self._in_sync = True
        return proc

    def _write(self, proc: subprocess.Popen, message: bytes, deadline: float) -> None:
        assert proc.stdin is not None
        fd, view = proc.stdin.fileno(), memoryview(message)
        while view:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([], [fd], [], left)[1]:
                raise SandboxError("timeout", f"the sandbox did not take its input within {self.limits.timeout_s:g} s; "
                                              "the code was stopped")
            try:
                view = view[os.write(fd, view[: 1 << 16]):]
            except BlockingIOError:
                continue
            except OSError:
                raise SandboxError("crashed", self._death_note(proc)) from None

    def _receive_header(self, proc: subprocess.Popen, deadline: float) -> dict[str, Any]:
        """The next reply's header; an error reply (``ok`` false, no payload) is raised."""
        (size,) = struct.unpack(">I", self._read(proc, 4, deadline))
        if size > self._MAX_HEADER:
            raise SandboxError("crashed", "the sandbox broke the protocol (oversized header)")
        try:
            reply = json.loads(self._read(proc, size, deadline))
        except (ValueError, RecursionError):
            raise SandboxError("crashed", "the sandbox broke the protocol (unreadable header)") from None
        if not isinstance(reply, dict) or type(reply.get("payload")) is not int or reply["payload"] < 0:
            raise SandboxError("crashed", "the sandbox broke the protocol (malformed header)")
        if reply.get("ok") is not True:
            kind = reply.get("kind") if reply.get("kind") in ERROR_KINDS else "crashed"
            if reply["payload"]:
                raise SandboxError("crashed", "the sandbox broke the protocol (an error with a payload)")
            self._in_sync = True
            raise SandboxError(kind, redact(str(reply.get("message", "no message"))[:2000]))
        return reply

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
        if code < 0:
            name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
            return f"the sandbox process was killed by {name}" + (" (CPU limit)" if name == "SIGXCPU" else "")
        return f"the sandbox process died (exit code {code})"

    def _kill(self) -> None:
        proc, self._proc = getattr(self, "_proc", None), None
        self._in_sync = True
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the child leads its own session and group
            except (ProcessLookupError, PermissionError):
                proc.kill()
        try:
            proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            pass
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass


def _require_jail(limits: SandboxLimits) -> None:
    reason = jail.unsupported_reason()
    if reason and not limits.allow_unjailed:
        raise SandboxError("unjailed", f"{reason}. LLM-written code is not run without the jail; to run it behind the static "
                                       "check and resource limits alone, pass SandboxLimits(allow_unjailed=True) "
                                       "(morec relabel --allow-unjailed-llm-code)")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (0 where ``/proc`` cannot tell)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


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
    Every chunk must return ``n_factors`` columns (when not given, the first chunk's count); a
    chunk that does not is refused before its values are read. Raises :class:`SandboxError` when
    the code fails."""

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
        expected = self.n_factors
        parts = []
        for i in range(0, len(obs), self.max_rows):
            part = self._worker.run(obs[i:i + self.max_rows], act[i:i + self.max_rows], max_columns=expected or MAX_COLUMNS).unwrap()
            if expected is not None and part.shape[1] != expected:
                raise SandboxError("bad_output", f"{self.name} returned {part.shape[1]} factors, expected {expected}")
            expected = part.shape[1]
            parts.append(part)
        return np.concatenate(parts)

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

    ns = types.SimpleNamespace(**{n: _numpy_object(n) for n in NUMPY_NAMES if "." not in n})
    ns.linalg = types.SimpleNamespace(norm=np.linalg.norm)
    return ns


def _numpy_only_import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
    """``__import__`` for the sandbox: numpy's C functions (``ndarray.mean`` ...) import their
    helper modules through the *calling* frame's builtins. Only numpy modules, already loaded
    (the jail refuses opening files); the validated code cannot name it (leading underscore)."""
    if level == 0 and (name == "numpy" or name.startswith("numpy.")):
        return __import__(name, globals, locals, fromlist, level)
    raise ImportError(f"import of {name!r} is not allowed in the sandbox")


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


def _serve(argv: list[str]) -> None:  # pragma: no cover - runs in the child process
    import builtins
    import warnings

    import numpy.linalg  # noqa: F401  # everything the code may reach is loaded before the jail
    import numpy.ma  # noqa: F401  # median/percentile load it lazily

    memory_mb, cpu_s, parent_pid = int(argv[0]), int(argv[1]), int(argv[2])
    allow_unjailed = argv[3] == "allow-unjailed"
    warnings.simplefilter("ignore")
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # stderr is /dev/null: stray prints cannot corrupt the protocol

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

    safe_builtins = {n: getattr(builtins, n) for n in SAFE_BUILTIN_NAMES}
    safe_builtins["print"] = lambda *args, **kwargs: None
    safe_builtins["__import__"] = _numpy_only_import  # numpy's C code imports through the caller's builtins
    namespace: dict[str, Any] = {"__builtins__": safe_builtins, "np": _safe_numpy(), "math": math, "__name__": "llm_factors"}
    try:
        report = jail.confine(memory_mb, cpu_s, parent_pid)
    except (jail.JailError, OSError) as err:
        if not allow_unjailed:
            return fail("unjailed", f"the sandbox jail could not be set up: {err}")
        report = {"error": str(err)}
    send({"ok": True, "jail": report})
    header, _ = receive()
    try:
        tree = validate_source(header["source"], header["entry_point"])
        code = compile(tree, "<llm-factors>", "exec")
        exec(code, namespace)  # noqa: S102  # validated source, jailed process, reduced builtins
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
    _serve(sys.argv[1:])
