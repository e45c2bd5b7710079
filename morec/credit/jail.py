"""OS-level confinement of the sandbox child, so that a bug in the static gate is contained.

:func:`confine` runs inside the child after the interpreter and numpy are loaded and before any
untrusted code is read. In order:

1. Resource limits: address space (``memory_mb`` above the current size), CPU seconds
   (``cpu_s``), no file growth, no core files, 3 descriptors, no new processes for non-root users.
2. Namespaces, where the kernel allows them (defence in depth, not required): a new network
   namespace (no interface but a downed loopback: nothing on the host, ``127.0.0.1`` included, is
   reachable) and a new IPC namespace (no System V shared memory of other processes). As root
   directly, otherwise inside a new user namespace.
3. When started as root: supplementary groups cleared, gid and uid set to one of the child's own
   (:data:`CHILD_UID_BASE` + its pid), so every capability is gone, the parent's files and
   ``/proc/<pid>/environ`` are another user's, and no other process shares its uid.
4. ``PR_SET_PDEATHSIG`` = SIGKILL (after the uid change, which would clear it): the child dies
   with the thread that started it, and exits at once if that parent is already gone.
5. ``PR_SET_NO_NEW_PRIVS`` and a seccomp-BPF allow-list (a foreign architecture or x32 call kills
   the process; every syscall not listed answers ``EPERM``): :data:`ALLOWED_SYSCALLS` (pipe reads
   and writes, memory, futexes, own signal handling, clocks, exit), :data:`SELF_ONLY_SYSCALLS`
   (resource limits and scheduling of pid 0, the child itself), ``mmap``/``mprotect`` without
   ``PROT_EXEC``, and ``fcntl`` reading or setting descriptor flags without ``O_ASYNC``. So no
   path is opened or even looked up by ``stat``, no file changes, no program or process starts,
   no socket, signal, ``prctl``, ``ioctl``, ptrace, System V IPC, xattr or mount call reaches the
   kernel, and no other process's limits, priority or affinity can be changed.

Required (the child reports failure and the parent refuses to run code otherwise): the seccomp
filter, and the uid drop when running as root. Linux on x86-64 or AArch64 only: on any other
system the parent refuses LLM-written code unless the caller opts out explicitly
(``SandboxLimits(allow_unjailed=True)``).

This file is loaded by path into the child (``python -I`` has no package path); it imports only
the standard library.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import resource
import signal
import struct
import sys
import time
from typing import Any

# As root, each child takes a uid of its own (this base plus its pid; no real account uses these),
# so "a process with the same uid" is only the child itself.
CHILD_UID_BASE = 0x40000000

# The seccomp filter is an allow-list: the syscalls the child's loop (pipe reads and writes, numpy
# arithmetic, memory, clocks, exit) needs, measured with strace on the sandbox's workload; every
# other call answers EPERM, and a foreign architecture or an x32 call kills the process.
ALLOWED_SYSCALLS = (
    "read write readv writev close brk munmap mremap madvise mbind futex "
    "rt_sigaction rt_sigprocmask rt_sigreturn sigaltstack restart_syscall exit exit_group "
    "clock_gettime clock_getres clock_nanosleep nanosleep gettimeofday getrandom sched_yield "
    "getpid gettid getppid getuid geteuid getgid getegid"
).split()
# allowed only on the calling process itself (first argument, the pid, 0)
SELF_ONLY_SYSCALLS = "prlimit64 sched_getaffinity sched_setaffinity sched_getparam sched_getscheduler".split()
# allowed only without PROT_EXEC (third argument): no new executable memory
NO_EXEC_SYSCALLS = "mmap mprotect".split()
# fcntl: only reading and setting descriptor and status flags, and never O_ASYNC (which, with an
# F_SETOWN the filter refuses, would send signals to another process)
FCNTL_COMMANDS = {"F_GETFD": 1, "F_SETFD": 2, "F_GETFL": 3, "F_SETFL": 4}
_O_ASYNC, _PROT_EXEC = 0o20000, 0x4

# syscall numbers: x86-64 asm/unistd_64.h, AArch64 asm-generic/unistd.h
_X86_64 = dict(
    read=0,
    write=1,
    close=3,
    mmap=9,
    mprotect=10,
    munmap=11,
    brk=12,
    rt_sigaction=13,
    rt_sigprocmask=14,
    rt_sigreturn=15,
    readv=19,
    writev=20,
    sched_yield=24,
    mremap=25,
    madvise=28,
    nanosleep=35,
    getpid=39,
    exit=60,
    fcntl=72,
    gettimeofday=96,
    getuid=102,
    getgid=104,
    geteuid=107,
    getegid=108,
    getppid=110,
    sigaltstack=131,
    sched_getparam=143,
    sched_getscheduler=145,
    gettid=186,
    futex=202,
    sched_setaffinity=203,
    sched_getaffinity=204,
    restart_syscall=219,
    clock_gettime=228,
    clock_getres=229,
    clock_nanosleep=230,
    exit_group=231,
    mbind=237,
    prlimit64=302,
    getrandom=318,
)
_AARCH64 = dict(
    fcntl=25,
    close=57,
    read=63,
    write=64,
    readv=65,
    writev=66,
    exit=93,
    exit_group=94,
    futex=98,
    nanosleep=101,
    clock_gettime=113,
    clock_getres=114,
    clock_nanosleep=115,
    sched_getscheduler=120,
    sched_getparam=121,
    sched_setaffinity=122,
    sched_getaffinity=123,
    sched_yield=124,
    restart_syscall=128,
    sigaltstack=132,
    rt_sigaction=134,
    rt_sigprocmask=135,
    rt_sigreturn=139,
    gettimeofday=169,
    getpid=172,
    getppid=173,
    getuid=174,
    geteuid=175,
    getgid=176,
    getegid=177,
    gettid=178,
    brk=214,
    munmap=215,
    mremap=216,
    mmap=222,
    mprotect=226,
    madvise=233,
    mbind=235,
    prlimit64=261,
    getrandom=278,
)
# (audit architecture, syscall table)
_ARCHES: dict[str, tuple[int, dict[str, int]]] = {
    "x86_64": (0xC000003E, _X86_64),
    "aarch64": (0xC00000B7, _AARCH64),
}
_X32_BIT = 0x40000000

# prctl, seccomp and BPF constants (linux/prctl.h, linux/seccomp.h, linux/filter.h); struct
# seccomp_data: nr at 0, arch at 4, args at 16 + 8 i (the low 32 bits first on these little-endian CPUs)
_PR_SET_PDEATHSIG, _PR_SET_SECCOMP, _PR_SET_NO_NEW_PRIVS = 1, 22, 38
_SECCOMP_MODE_FILTER = 2
_RET_ALLOW, _RET_ERRNO, _RET_KILL_PROCESS = 0x7FFF0000, 0x00050000, 0x80000000
_LD_W_ABS, _JEQ_K, _JGE_K, _JSET_K, _RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
_NR, _ARCH = 0, 4
_CLONE_NEWIPC, _CLONE_NEWUSER, _CLONE_NEWNET = 0x08000000, 0x10000000, 0x40000000


def _arg(i: int) -> int:
    """Offset of the low 32 bits of syscall argument ``i`` in ``struct seccomp_data``."""
    return 16 + 8 * i


class JailError(RuntimeError):
    """A required layer of the jail could not be put in place."""


def unsupported_reason() -> str | None:
    """Why this system cannot jail the child (``None`` when it can)."""
    if sys.platform != "linux":
        return f"the sandbox jail needs Linux (seccomp); this is {sys.platform}"
    if platform.machine() not in _ARCHES:
        return f"the sandbox jail knows the syscalls of {', '.join(_ARCHES)}, not {platform.machine()}"
    return None


def seccomp_program(machine: str) -> bytes:
    """The classic-BPF filter for ``machine`` as packed ``struct sock_filter`` entries: the
    allow-list above, with the argument checks of the self-only, no-exec and fcntl calls."""
    arch, table = _ARCHES[machine]
    # (code, jump if true, jump if false, k); jumps name labels, resolved to offsets below
    prog: list[tuple[int, int | str, int | str, int]] = [
        (_LD_W_ABS, 0, 0, _ARCH),
        (_JEQ_K, 0, "kill", arch),
        (_LD_W_ABS, 0, 0, _NR),
        (_JGE_K, "kill", 0, _X32_BIT),
    ]
    prog += [(_JEQ_K, "allow", 0, table[name]) for name in ALLOWED_SYSCALLS]
    prog += [(_JEQ_K, "self_only", 0, table[name]) for name in SELF_ONLY_SYSCALLS]
    prog += [(_JEQ_K, "no_exec", 0, table[name]) for name in NO_EXEC_SYSCALLS]
    prog += [(_JEQ_K, "fcntl", "deny", table["fcntl"])]
    labels = {"self_only": len(prog)}
    prog += [(_LD_W_ABS, 0, 0, _arg(0)), (_JEQ_K, "allow", "deny", 0)]
    labels["no_exec"] = len(prog)
    prog += [(_LD_W_ABS, 0, 0, _arg(2)), (_JSET_K, "deny", "allow", _PROT_EXEC)]
    labels["fcntl"] = len(prog)
    prog += [(_LD_W_ABS, 0, 0, _arg(1))]
    prog += [(_JEQ_K, "allow", 0, FCNTL_COMMANDS[c]) for c in ("F_GETFD", "F_SETFD", "F_GETFL")]
    prog += [
        (_JEQ_K, 0, "deny", FCNTL_COMMANDS["F_SETFL"]),
        (_LD_W_ABS, 0, 0, _arg(2)),
        (_JSET_K, "deny", "allow", _O_ASYNC),
    ]
    for label, ret in (("allow", _RET_ALLOW), ("deny", _RET_ERRNO | errno.EPERM), ("kill", _RET_KILL_PROCESS)):
        labels[label] = len(prog)
        prog.append((_RET_K, 0, 0, ret))

    def offset(at: int, target: int | str) -> int:
        if isinstance(target, int):
            return target
        jump = labels[target] - at - 1
        assert 0 <= jump < 256, "BPF jump out of range"
        return jump

    return b"".join(
        struct.pack("HBBI", code, offset(i, jt), offset(i, jf), k) for i, (code, jt, jf, k) in enumerate(prog)
    )


def confine(memory_mb: int, cpu_s: int, parent_pid: int) -> dict[str, Any]:
    """Put the calling process in the jail (see the module docstring) and return what holds:
    ``seccomp``, ``uid`` (the process's uid on the host), ``net_namespace``, ``ipc_namespace``,
    ``user_namespace`` and ``seconds`` (time taken). Raises :class:`JailError` when a required
    layer fails."""
    start = time.perf_counter()
    reason = unsupported_reason()
    if reason:
        raise JailError(reason)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    _limit_resources(memory_mb, cpu_s)
    host_uid = os.geteuid()
    root = host_uid == 0
    namespaces = _new_namespaces(libc, root)
    if root:
        own = CHILD_UID_BASE + os.getpid()  # unique among live processes: no other process has this uid
        os.setgroups([])
        os.setresgid(own, own, own)
        os.setresuid(own, own, own)
        if os.geteuid() == 0 or os.getegid() == 0:
            raise JailError("could not drop root to a uid of the child's own")
        host_uid = own
    _prctl(libc, _PR_SET_PDEATHSIG, signal.SIGKILL, "PR_SET_PDEATHSIG")  # after the uid change, which clears it
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        os._exit(0)
    _install_seccomp(libc)
    return {
        "seccomp": True,
        "uid": host_uid,
        "net_namespace": namespaces,
        "ipc_namespace": namespaces,
        "user_namespace": namespaces and not root,
        "seconds": round(time.perf_counter() - start, 6),
    }


def _prctl(libc: Any, option: int, arg: int, what: str) -> None:
    if libc.prctl(option, arg, 0, 0, 0) != 0:
        raise JailError(f"{what} failed: {os.strerror(ctypes.get_errno())}")


def _limit_resources(memory_mb: int, cpu_s: int) -> None:
    with open("/proc/self/status") as status:
        vm_kb = next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))
    limits = [
        (resource.RLIMIT_AS, vm_kb * 1024 + memory_mb * (1 << 20)),
        (resource.RLIMIT_CPU, cpu_s),
        (resource.RLIMIT_NOFILE, 3),
        (resource.RLIMIT_FSIZE, 0),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_NPROC, 0),
    ]
    for limit, value in limits:
        resource.setrlimit(limit, (value, value))


def _new_namespaces(libc: Any, root: bool) -> bool:
    """New network and IPC namespaces (inside a new user namespace unless root) if the kernel lets
    this process make them; never required."""
    flags = _CLONE_NEWNET | _CLONE_NEWIPC | (0 if root else _CLONE_NEWUSER)
    libc.unshare.argtypes = [ctypes.c_int]
    return libc.unshare(flags) == 0


def _install_seccomp(libc: Any) -> None:
    program = seccomp_program(platform.machine())
    filters = ctypes.create_string_buffer(program, len(program))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = SockFprog(len(program) // 8, ctypes.addressof(filters))
    _prctl(libc, _PR_SET_NO_NEW_PRIVS, 1, "PR_SET_NO_NEW_PRIVS")
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(fprog), 0, 0) != 0:
        raise JailError(f"installing the seccomp filter failed: {os.strerror(ctypes.get_errno())}")
