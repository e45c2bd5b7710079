"""OS-level confinement of the sandbox child, so that a bug in the static gate is contained.

:func:`confine` runs inside the child after the interpreter and numpy are loaded and before any
untrusted code is read. In order:

1. Resource limits: address space (``memory_mb`` above the current size), CPU seconds
   (``cpu_s``), no file growth, no core files, 3 descriptors, no new processes for non-root users.
2. Namespaces, where the kernel allows them (defence in depth, not required): a new network
   namespace (no interface but a downed loopback: nothing on the host, ``127.0.0.1`` included, is
   reachable) and a new IPC namespace (no System V shared memory of other processes). As root
   directly, otherwise inside a new user namespace.
3. When started as root: supplementary groups cleared, gid and uid set to ``nobody`` (65534), so
   every capability is gone and the parent's files and ``/proc/<pid>/environ`` are another user's.
4. ``PR_SET_PDEATHSIG`` = SIGKILL (after the uid change, which would clear it): the child dies
   with the thread that started it, and exits at once if that parent is already gone.
5. ``PR_SET_NO_NEW_PRIVS`` and a seccomp-BPF filter (:data:`DENIED_SYSCALLS` answer ``EPERM``;
   a foreign architecture or x32 call kills the process). The filter refuses opening any path
   (``open``, ``openat``, ``openat2``, ``creat``, handles, io_uring), every change to the
   filesystem (mkdir, rename, link, unlink, truncate, chmod, chown, xattrs, times), ``execve``,
   ``fork``/``clone``, sockets, signals to any process, ``ptrace`` and cross-process memory
   access, mounts, namespaces, ``memfd``, ``bpf``, ``perf``, keys and kernel modules; syscalls
   newer than the table (unknown to it) are refused too. File *metadata* (``stat``) stays visible;
   file contents do not.

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

NOBODY = 65534

# Denied syscalls by name; numbers per architecture below (x86-64: asm/unistd_64.h, AArch64:
# asm-generic/unistd.h, which lacks the legacy path calls such as open and mkdir).
DENIED_SYSCALLS = (
    # reading or creating files by path or handle
    "open openat openat2 creat name_to_handle_at open_by_handle_at readlink readlinkat uselib "
    # changing the filesystem
    "mkdir mkdirat rmdir rename renameat renameat2 link linkat symlink symlinkat unlink unlinkat "
    "truncate ftruncate chmod fchmod fchmodat fchmodat2 chown fchown lchown fchownat mknod mknodat "
    "setxattr lsetxattr fsetxattr removexattr lremovexattr fremovexattr utime utimes utimensat futimesat "
    # new programs and processes
    "execve execveat fork vfork clone clone3 "
    # network
    "socket socketpair connect bind listen accept accept4 "
    # other processes: signals, tracing, memory
    "kill tkill tgkill rt_sigqueueinfo rt_tgsigqueueinfo pidfd_open pidfd_send_signal pidfd_getfd "
    "ptrace process_vm_readv process_vm_writev process_madvise process_mrelease kcmp move_pages migrate_pages "
    "shmget shmat msgget semget mq_open "
    # mounts, namespaces, privileges
    "mount umount2 pivot_root chroot unshare setns fsopen fsmount fsconfig move_mount open_tree fspick "
    "mount_setattr setuid setgid setreuid setregid setresuid setresgid setgroups setfsuid setfsgid capset "
    "personality "
    # kernel interfaces with a history of escapes
    "memfd_create memfd_secret userfaultfd bpf perf_event_open keyctl add_key request_key "
    "io_uring_setup io_uring_enter io_uring_register fanotify_init inotify_init inotify_init1 "
    "init_module finit_module delete_module kexec_load kexec_file_load reboot swapon swapoff "
    "sethostname setdomainname acct quotactl quotactl_fd ioperm iopl"
).split()

_X86_64 = dict(
    open=2, openat=257, openat2=437, creat=85, name_to_handle_at=303, open_by_handle_at=304,
    readlink=89, readlinkat=267, uselib=134, mkdir=83, mkdirat=258, rmdir=84, rename=82,
    renameat=264, renameat2=316, link=86, linkat=265, symlink=88, symlinkat=266, unlink=87,
    unlinkat=263, truncate=76, ftruncate=77, chmod=90, fchmod=91, fchmodat=268, fchmodat2=452,
    chown=92, fchown=93, lchown=94, fchownat=260, mknod=133, mknodat=259, setxattr=188,
    lsetxattr=189, fsetxattr=190, removexattr=197, lremovexattr=198, fremovexattr=199, utime=132,
    utimes=235, utimensat=280, futimesat=261, execve=59, execveat=322, fork=57, vfork=58, clone=56,
    clone3=435, socket=41, socketpair=53, connect=42, bind=49, listen=50, accept=43, accept4=288,
    kill=62, tkill=200, tgkill=234, rt_sigqueueinfo=129, rt_tgsigqueueinfo=297, pidfd_open=434,
    pidfd_send_signal=424, pidfd_getfd=438, ptrace=101, process_vm_readv=310, process_vm_writev=311,
    process_madvise=440, process_mrelease=448, kcmp=312, move_pages=279, migrate_pages=256,
    shmget=29, shmat=30, msgget=68, semget=64, mq_open=240, mount=165, umount2=166, pivot_root=155,
    chroot=161, unshare=272, setns=308, fsopen=430, fsmount=432, fsconfig=431, move_mount=429,
    open_tree=428, fspick=433, mount_setattr=442, setuid=105, setgid=106, setreuid=113,
    setregid=114, setresuid=117, setresgid=119, setgroups=116, setfsuid=122, setfsgid=123,
    capset=126, personality=135, memfd_create=319, memfd_secret=447, userfaultfd=323, bpf=321,
    perf_event_open=298, keyctl=250, add_key=248, request_key=249, io_uring_setup=425,
    io_uring_enter=426, io_uring_register=427, fanotify_init=300, inotify_init=253,
    inotify_init1=294, init_module=175, finit_module=313, delete_module=176, kexec_load=246,
    kexec_file_load=320, reboot=169, swapon=167, swapoff=168, sethostname=170, setdomainname=171,
    acct=163, quotactl=179, quotactl_fd=443, ioperm=173, iopl=172,
)
_AARCH64 = dict(
    openat=56, openat2=437, name_to_handle_at=264, open_by_handle_at=265, readlinkat=78,
    mkdirat=34, renameat=38, renameat2=276, linkat=37, symlinkat=36, unlinkat=35, truncate=45,
    ftruncate=46, fchmod=52, fchmodat=53, fchmodat2=452, fchown=55, fchownat=54, mknodat=33,
    setxattr=5, lsetxattr=6, fsetxattr=7, removexattr=14, lremovexattr=15, fremovexattr=16,
    utimensat=88, execve=221, execveat=281, clone=220, clone3=435, socket=198, socketpair=199,
    connect=203, bind=200, listen=201, accept=202, accept4=242, kill=129, tkill=130, tgkill=131,
    rt_sigqueueinfo=138, rt_tgsigqueueinfo=240, pidfd_open=434, pidfd_send_signal=424,
    pidfd_getfd=438, ptrace=117, process_vm_readv=270, process_vm_writev=271, process_madvise=440,
    process_mrelease=448, kcmp=272, move_pages=239, migrate_pages=238, shmget=194, shmat=196,
    msgget=186, semget=190, mq_open=180, mount=40, umount2=39, pivot_root=41, chroot=51,
    unshare=97, setns=268, fsopen=430, fsmount=432, fsconfig=431, move_mount=429, open_tree=428,
    fspick=433, mount_setattr=442, setuid=146, setgid=144, setreuid=145, setregid=143,
    setresuid=147, setresgid=149, setgroups=159, setfsuid=151, setfsgid=152, capset=91,
    personality=92, memfd_create=279, memfd_secret=447, userfaultfd=282, bpf=280,
    perf_event_open=241, keyctl=219, add_key=217, request_key=218, io_uring_setup=425,
    io_uring_enter=426, io_uring_register=427, fanotify_init=262, inotify_init1=26,
    init_module=105, finit_module=273, delete_module=106, kexec_load=104, kexec_file_load=294,
    reboot=142, swapon=224, swapoff=225, sethostname=161, setdomainname=162, acct=89,
    quotactl=60, quotactl_fd=443,
)
# (audit architecture, syscall table, highest syscall number the table knows)
_ARCHES: dict[str, tuple[int, dict[str, int], int]] = {
    "x86_64": (0xC000003E, _X86_64, 462),
    "aarch64": (0xC00000B7, _AARCH64, 462),
}
_X32_BIT = 0x40000000

# prctl, seccomp and BPF constants (linux/prctl.h, linux/seccomp.h, linux/filter.h)
_PR_SET_PDEATHSIG, _PR_SET_SECCOMP, _PR_SET_NO_NEW_PRIVS = 1, 22, 38
_SECCOMP_MODE_FILTER = 2
_RET_ALLOW, _RET_ERRNO, _RET_KILL_PROCESS = 0x7FFF0000, 0x00050000, 0x80000000
_LD_W_ABS, _JEQ_K, _JGE_K, _JGT_K, _RET_K = 0x20, 0x15, 0x35, 0x25, 0x06
_CLONE_NEWIPC, _CLONE_NEWUSER, _CLONE_NEWNET = 0x08000000, 0x10000000, 0x40000000


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
    """The classic-BPF filter for ``machine`` as packed ``struct sock_filter`` entries."""
    arch, table, highest = _ARCHES[machine]
    numbers = sorted({table[name] for name in DENIED_SYSCALLS if name in table})
    n = len(numbers)
    # layout: 0 load arch | 1 arch check | 2 load nr | 3 x32 check | 4 unknown check |
    #         5.. one compare per denied number | allow | errno | kill
    allow = 5 + n
    errno_at, kill = allow + 1, allow + 2

    def jump(at: int, target: int) -> int:
        offset = target - at - 1
        assert 0 <= offset < 256, "BPF jump out of range"
        return offset

    prog = [
        (_LD_W_ABS, 0, 0, 4),
        (_JEQ_K, 0, jump(1, kill), arch),
        (_LD_W_ABS, 0, 0, 0),
        (_JGE_K, jump(3, kill), 0, _X32_BIT),
        (_JGT_K, jump(4, errno_at), 0, highest),
    ]
    prog += [(_JEQ_K, jump(5 + i, errno_at), 0, nr) for i, nr in enumerate(numbers)]
    prog += [(_RET_K, 0, 0, _RET_ALLOW), (_RET_K, 0, 0, _RET_ERRNO | errno.EPERM), (_RET_K, 0, 0, _RET_KILL_PROCESS)]
    return b"".join(struct.pack("HBBI", *ins) for ins in prog)


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
        os.setgroups([])
        os.setresgid(NOBODY, NOBODY, NOBODY)
        os.setresuid(NOBODY, NOBODY, NOBODY)
        if os.geteuid() == 0 or os.getegid() == 0:
            raise JailError("could not drop root to the nobody user")
        host_uid = NOBODY
    _prctl(libc, _PR_SET_PDEATHSIG, signal.SIGKILL, "PR_SET_PDEATHSIG")  # after the uid change, which clears it
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        os._exit(0)
    _install_seccomp(libc)
    return {"seccomp": True, "uid": host_uid, "net_namespace": namespaces, "ipc_namespace": namespaces,
            "user_namespace": namespaces and not root, "seconds": round(time.perf_counter() - start, 6)}


def _prctl(libc: Any, option: int, arg: int, what: str) -> None:
    if libc.prctl(option, arg, 0, 0, 0) != 0:
        raise JailError(f"{what} failed: {os.strerror(ctypes.get_errno())}")


def _limit_resources(memory_mb: int, cpu_s: int) -> None:
    with open("/proc/self/status") as status:
        vm_kb = next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))
    limits = [(resource.RLIMIT_AS, vm_kb * 1024 + memory_mb * (1 << 20)), (resource.RLIMIT_CPU, cpu_s),
              (resource.RLIMIT_NOFILE, 3), (resource.RLIMIT_FSIZE, 0), (resource.RLIMIT_CORE, 0),
              (resource.RLIMIT_NPROC, 0)]
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
