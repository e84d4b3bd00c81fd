"""The seccomp filter every sandboxed program runs under, compiled with libseccomp.

It refuses (EPERM) what no program here needs and what a run could use against the host or a
later run: new namespaces (the way to a tmpfs without a size cap), mounts, the kernel keyrings
(shared by every process of a uid, so they outlive a run), io_uring, tracing, eBPF and perf
events, and pushing characters into a terminal. `clone3` answers ENOSYS: its flags sit in
memory a filter cannot read, and glibc falls back to `clone`, whose flags it can. A syscall
of another ABI (x32, i386) kills the process, so the filter cannot be stepped around.

bubblewrap loads the program (`bwrap --seccomp FD`) just before it starts the program, after
its own setup, which needs namespaces and mounts.
"""

from __future__ import annotations

import errno
import functools
import tempfile

# Refused outright.
DENIED = (
    "unshare",
    "setns",
    "mount",
    "umount2",
    "pivot_root",
    # the new mount API reaches the same places
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "keyctl",
    "add_key",
    "request_key",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "open_by_handle_at",
)
# clone with any of these flags (CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC,
# CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET); a plain fork or thread still works.
CLONE_NAMESPACE_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)
# ioctl requests refused whatever the descriptor: TIOCSTI (type into a terminal), TIOCLINUX.
DENIED_IOCTLS = (0x5412, 0x541C)


class SeccompUnavailable(Exception):
    """The filter cannot be built here (libseccomp or its Python binding is missing)."""


@functools.lru_cache(maxsize=1)
def bpf_program() -> bytes:
    """The compiled filter (classic BPF, as `bwrap --seccomp` reads it); built once per process."""
    try:
        import pyseccomp as seccomp
    except (ImportError, OSError) as e:  # pyseccomp loads libseccomp.so.2 when imported
        raise SeccompUnavailable(
            f"the seccomp filter cannot be built ({e}): apt-get install libseccomp2; pip install pyseccomp"
        ) from e
    try:
        rules = seccomp.SyscallFilter(seccomp.ALLOW)
        # Only the native ABI is in the filter; anything else is a bad architecture.
        rules.set_attr(seccomp.Attr.ACT_BADARCH, seccomp.KILL_PROCESS)
        refuse = seccomp.ERRNO(errno.EPERM)
        for name in DENIED:
            rules.add_rule(refuse, name)
        for flag in CLONE_NAMESPACE_FLAGS:
            rules.add_rule(refuse, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
        rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
        for request in DENIED_IOCTLS:
            # The kernel reads the request as 32 bits: compare only those, whatever sits above.
            rules.add_rule(refuse, "ioctl", seccomp.Arg(1, seccomp.MASKED_EQ, 0xFFFFFFFF, request))
        with tempfile.TemporaryFile() as f:
            rules.export_bpf(f)
            f.seek(0)
            return f.read()
    except (OSError, RuntimeError, ValueError) as e:
        raise SeccompUnavailable(f"the seccomp filter cannot be built: {e}") from e
