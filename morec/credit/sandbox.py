"""Run untrusted (LLM-written) factor code: static validation, then a separate, jailed process.

The code must define ``def compute_factors(obs, act):`` (exactly two positional parameters) that
maps ``obs [N, O]`` and ``act [N, A]`` (float64 arrays) to ``[N, K]`` numbers, either one 2-D
array, a 1-D array (``K = 1``) or a list/tuple of ``K`` arrays shaped ``[N]`` or ``[N, 1]``.
``np`` (a reduced numpy) and ``math`` are pre-injected; nothing else is importable.

Two independent layers: the static check is the gate, and the jail (:mod:`morec.credit.jail`)
contains whatever the gate misses.

1. :func:`validate_source` (:mod:`.gate`; ``ast``, before anything runs): allow-lists, not
   deny-lists, for statements, names, numpy and math, calls, dtypes, attributes, and where text
   and ``None`` may appear. The rules are listed once, in :mod:`.gate`'s docstring.

2. :class:`SandboxWorker` (at run time): the code is compiled and executed in a fresh
   ``python -I`` child with an empty environment except single-threaded BLAS, working directory
   ``/`` and stderr discarded. The child loads numpy, then jails itself (death with its parent,
   resource limits, network and IPC namespaces, a uid of its own when started as root, a seccomp
   allow-list refusing files, processes, sockets, signals and other processes' settings), then reads
   the code: builtins reduced to :data:`SAFE_BUILTIN_NAMES` plus a no-op ``print``, ``np`` a
   namespace of :data:`NUMPY_NAMES` whose functions refuse non-numeric dtypes, inputs and results
   (:func:`_numbers_only`). Operators and array methods act on arrays directly, not through ``np``:
   for them the gate's rules on text and ``None`` are the only check (see :mod:`.gate`).
   The parent bounds every write and read with the timeout and kills the child's process group
   when it expires; it never unpickles anything from the child, parses its replies defensively,
   checks the announced shape before reading any payload (so a lying reply costs no memory) and
   re-checks every value. Of the child's error replies it takes only the kinds that stage can
   have (``unjailed`` only before the code is read, ``refused`` only in reply to loading it): any
   other is ``crashed``. Error text from the child is cleaned (control and Unicode format
   characters, addresses, secret shapes, paths) before anyone sees it.

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

import hashlib
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
    from morec.credit import gate, jail
    from morec.credit.redaction import clean_untrusted_text
else:  # the child runs this file by path: `python -I` puts no package on the path
    import importlib.util

    def _sibling(name: str) -> Any:
        spec = importlib.util.spec_from_file_location(
            f"morec_sandbox_{name}", os.path.join(os.path.dirname(__file__), f"{name}.py")
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module

    gate, jail = _sibling("gate"), _sibling("jail")

ENTRY_POINT, ERROR_KINDS, NUMPY_NAMES = gate.ENTRY_POINT, gate.ERROR_KINDS, gate.NUMPY_NAMES
SandboxError, validate_source = gate.SandboxError, gate.validate_source

MAX_COLUMNS = 1024  # hard cap on K in a reply; callers apply their own, smaller range
# the error kinds the child reports in its first header (before it reads the code), in reply to
# loading the code (it validates the source again) and in reply to a call; any other is a breach
_START_ERRORS = ("unjailed",)
_LOAD_ERRORS = ("refused", "memory", "exception")
_CALL_ERRORS = ("memory", "exception", "bad_output")
SAFE_BUILTIN_NAMES = gate.SAFE_BUILTIN_NAMES


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
        reply = self._receive_header(proc, deadline, _CALL_ERRORS)
        shape = reply.get("shape")
        if not (isinstance(shape, list) and len(shape) == 2 and all(type(s) is int for s in shape)):
            raise SandboxError("crashed", "the sandbox replied without a valid shape")
        if shape[0] != len(obs) or reply.get("payload") != 8 * shape[0] * shape[1]:
            raise SandboxError("crashed", f"the sandbox reply has an inconsistent shape {shape} or size")
        if not 1 <= shape[1] <= max_columns:
            raise SandboxError(
                "bad_output",
                f"the code returned {shape[1]} factors on {shape[0]} rows; expected between 1 and {max_columns}",
            )
        payload = self._read(proc, reply["payload"], deadline)
        self._in_sync = True
        factors = np.frombuffer(payload, dtype=np.float64).reshape(shape).copy()
        bad = int(np.size(factors) - np.isfinite(factors).sum())
        if bad:
            cols = sorted(set(np.nonzero(~np.isfinite(factors))[1].tolist()))
            raise SandboxError(
                "bad_output",
                f"{bad} non-finite values (NaN/inf) in factor column(s) {cols}; guard divisions, logs and square roots",
            )
        return factors

    def _child_argv(self) -> list[str]:
        """The child's command line: this file as a script, with its limits and our pid."""
        limits = self.limits
        return [
            sys.executable,
            "-I",
            os.path.abspath(__file__),
            str(limits.memory_mb),
            str(limits.cpu_s),
            str(os.getpid()),
            "allow-unjailed" if limits.allow_unjailed else "jailed",
        ]

    def _start(self) -> subprocess.Popen:
        self._kill()
        env = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "LC_ALL": "C"}
        proc = subprocess.Popen(
            self._child_argv(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd="/",
            close_fds=True,
            start_new_session=True,
        )
        os.set_blocking(proc.stdin.fileno(), False)
        self._proc = proc
        self._in_sync = False
        try:
            started = self._receive_header(proc, time.monotonic() + self._STARTUP_S, _START_ERRORS)
            self.jail = started.get("jail") if isinstance(started.get("jail"), dict) else None
            deadline = time.monotonic() + self.limits.timeout_s
            self._write(proc, _frame({"op": "load", "source": self.code, "entry_point": ENTRY_POINT}), deadline)
            self._receive_header(proc, deadline, _LOAD_ERRORS)
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
            if left <= 0 or not _ready(fd, select.POLLOUT, left):
                raise SandboxError(
                    "timeout",
                    f"the sandbox did not take its input within {self.limits.timeout_s:g} s; the code was stopped",
                )
            try:
                view = view[os.write(fd, view[: 1 << 16]) :]
            except BlockingIOError:
                continue
            except OSError:
                raise SandboxError("crashed", self._death_note(proc)) from None

    def _receive_header(self, proc: subprocess.Popen, deadline: float, kinds: tuple[str, ...]) -> dict[str, Any]:
        """The next reply's header; an error reply (``ok`` false, no payload) is raised with its
        kind when that is one of ``kinds``, the errors the child can report at this stage, and as
        ``crashed`` otherwise: loaded code that took over the child could otherwise claim, say,
        ``unjailed`` (which stops a whole factor search) with a message of its choosing."""
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
            kind = reply.get("kind")
            if reply["payload"]:
                raise SandboxError("crashed", "the sandbox broke the protocol (an error with a payload)")
            if kind not in kinds:
                named = repr(kind) if kind in ERROR_KINDS else "unknown"
                raise SandboxError(
                    "crashed", f"the sandbox broke the protocol (an error of {named} kind at this stage)"
                )
            self._in_sync = True
            raise SandboxError(kind, clean_untrusted_text(str(reply.get("message", "no message"))[:2000]))
        return reply

    def _read(self, proc: subprocess.Popen, n: int, deadline: float) -> bytes:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        chunks, got = [], 0
        while got < n:
            left = deadline - time.monotonic()
            if left <= 0 or not _ready(fd, select.POLLIN, left):
                raise SandboxError(
                    "timeout",
                    f"no answer within {self.limits.timeout_s:g} s; the code was stopped "
                    "(avoid unbounded loops and per-row Python loops over large batches)",
                )
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


def _ready(fd: int, event: int, seconds: float) -> bool:
    """Whether ``fd`` is ready for ``event`` (or closed) within ``seconds``: ``poll``, which takes
    descriptors of any number (``select`` fails above 1,024)."""
    poller = select.poll()
    poller.register(fd, event)
    return bool(poller.poll(max(1, math.ceil(seconds * 1000))))


def _require_jail(limits: SandboxLimits) -> None:
    reason = jail.unsupported_reason()
    if reason and not limits.allow_unjailed:
        raise SandboxError(
            "unjailed",
            f"{reason}. LLM-written code is not run without the jail; to run it behind the static "
            "check and resource limits alone, pass SandboxLimits(allow_unjailed=True) "
            "(morec relabel --allow-unjailed-llm-code)",
        )


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


def run_untrusted(
    source: str, obs: np.ndarray, act: np.ndarray, limits: SandboxLimits = SandboxLimits()
) -> SandboxResult:
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

    def __init__(
        self,
        code: str,
        name: str,
        limits: SandboxLimits = SandboxLimits(),
        *,
        n_factors: int | None = None,
        max_rows: int = 65_536,
    ):
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
            part = self._worker.run(
                obs[i : i + self.max_rows], act[i : i + self.max_rows], max_columns=expected or MAX_COLUMNS
            ).unwrap()
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
    """The code's ``np``: the names of :data:`NUMPY_NAMES`, every function wrapped by
    :func:`_numbers_only`, which refuses non-numeric dtypes and arrays going into a numpy function
    and coming out of it, whatever the gate missed. Operators (``obs[:0] + [None]``) and array
    methods do not pass through here: they call numpy's C code directly, and only the gate's rules
    on text and ``None`` (:mod:`.gate`) keep non-numbers from them."""
    import types

    def entry(path: str) -> Any:
        value = gate._numpy_object(path)
        return _numbers_only(path, value) if path in gate.NUMPY_FUNCTIONS and not isinstance(value, type) else value

    ns = types.SimpleNamespace(**{n: entry(n) for n in NUMPY_NAMES if "." not in n})
    ns.linalg = types.SimpleNamespace(norm=entry("linalg.norm"))
    return ns


def _refuse_dtype(value: Any, where: str) -> None:
    """Raise ``TypeError`` unless ``value`` names a plain bool, integer or float dtype (or is None)."""
    if value is None:
        return
    try:
        dtype = np.dtype(value)
    except (TypeError, ValueError, SyntaxError):
        raise TypeError(
            f"{where}: {value!r} is not a numeric dtype; only bool, integer and float dtypes are allowed"
        ) from None
    if dtype.kind not in "biuf" or dtype.fields is not None or dtype.subdtype is not None:
        raise TypeError(f"{where}: dtype {dtype} is not allowed; only bool, integer and float dtypes")


def _refuse_non_numeric_arrays(value: Any, where: str, depth: int = 1) -> None:
    """Raise ``TypeError`` if ``value`` is (or, one level down, a list or tuple holds) an array or
    numpy scalar whose dtype is not bool, integer or float (object, string, void, datetime ...)."""
    if isinstance(value, np.ndarray | np.generic):
        kind = value.dtype.kind
        if kind not in "biuf" or value.dtype.fields is not None:
            raise TypeError(f"{where}: arrays of dtype {value.dtype} are not allowed; only bool, integer and float")
    elif depth and isinstance(value, list | tuple):
        for item in value:
            _refuse_non_numeric_arrays(item, where, depth - 1)


def _numbers_only(path: str, func: Any) -> Any:
    """``func`` (``np.<path>``) refusing, before it runs, a dtype argument, a positional argument
    past its signature or an input array that is not bool/int/float, and after it runs such a result."""
    slot, most = gate.NUMPY_DTYPE_SLOTS.get(path), gate.NUMPY_POSITIONAL_COUNTS.get(path)
    where = f"np.{path}"

    def numbers_only(*args: Any, **kwargs: Any) -> Any:
        if most is not None and len(args) > most:
            raise TypeError(f"{where} takes at most {most} positional argument(s)")
        if slot is not None and slot < len(args):
            _refuse_dtype(args[slot], where)
        for key in gate.DTYPE_KEYWORDS:
            if key in kwargs:
                value = kwargs[key]
                for item in value if isinstance(value, tuple) else (value,):
                    _refuse_dtype(item, f"{where}({key}=...)")
        for value in (*args, *kwargs.values()):
            _refuse_non_numeric_arrays(value, where)
        result = func(*args, **kwargs)
        _refuse_non_numeric_arrays(result, f"the result of {where}")
        return result

    numbers_only.__name__ = numbers_only.__qualname__ = path.rsplit(".", 1)[-1]
    return numbers_only


def _numpy_only_import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
    """``__import__`` for the sandbox: numpy's C functions (``ndarray.mean`` ...) import their
    helper modules through the *calling* frame's builtins. Only numpy modules, already loaded
    (the jail refuses opening files); the validated code cannot name it (leading underscore)."""
    if level == 0 and (name == "numpy" or name.startswith("numpy.")):
        return __import__(name, globals, locals, fromlist, level)
    raise ImportError(f"import of {name!r} is not allowed in the sandbox")


def _describe(err: BaseException) -> str:
    """``Type (line n): text`` of an error the code raised; just the type when its text cannot
    be formed (a 5,000-digit int, a list nested 100,000 deep)."""
    tb, line = err.__traceback__, None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<llm-factors>":
            line = tb.tb_lineno
        tb = tb.tb_next
    where = f" (line {line})" if line else ""
    try:
        text = str(err)[:1000]
    except BaseException:  # noqa: BLE001  # whatever formatting the code's value raises
        text = "(its message could not be formatted)"
    return f"{type(err).__name__}{where}: {text}"[:1000]


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
                raise SandboxError(
                    "bad_output",
                    f"factor {i} has shape {arr.shape}; each factor in a list must be [N] or [N, 1] with N = {n}",
                )
            cols.append(arr.reshape(n, 1))
        mat = np.concatenate(cols, axis=1)
    else:
        mat = numeric(out, "the output")
        if mat.shape == (n,):
            mat = mat[:, None]
    if mat.ndim != 2 or mat.shape[0] != n:
        raise SandboxError(
            "bad_output", f"the output has shape {mat.shape}; return [N, K] with N = {n} rows (one per input row)"
        )
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
    namespace: dict[str, Any] = {
        "__builtins__": safe_builtins,
        "np": _safe_numpy(),
        "math": math,
        "__name__": "llm_factors",
    }
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
            obs, act = flat[: n * o].reshape(n, o).copy(), flat[n * o :].reshape(n, a).copy()
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
