"""Run a Python snippet as a script inside bubblewrap, isolated from the server and from other runs.

Every run gets fresh pid, network, ipc and uts namespaces; a read-only view of only what
Python needs (the system's /usr and the server's own Python environment, so the program runs
against the server's interpreter and packages); a private tmpfs with a size cap as its working
folder; an unprivileged uid and gid with every capability dropped; a seccomp filter
(`seccomp_filter`); no environment from the server; CPU, memory, file-size, open-files and
process-count limits. The program is the namespace's first process (`--as-pid-1`: no bwrap
process, command line or zombie of ours in the run), so killing it ends everything the run started.

A server running as root also gives each run a uid of its own (`uid_lease`), a memory + pids
cgroup (`run_cgroup`) that bounds the run as a whole, and a working folder with an inode cap
(a tmpfs it mounts itself where the host never sees it: bwrap 0.8 cannot cap inodes). It enters
the namespaces as root and drops to that uid with `setpriv`. A server running as an ordinary
user uses an unprivileged user namespace instead (uid 65534), with per-process limits unless it
can make cgroups. Where bubblewrap is missing, cannot create its namespaces, or the filter
cannot be built, nothing runs: `run_code` raises `SandboxUnavailable`. Linux only.

A run costs little more than bubblewrap itself (docs/sandbox-speed.md):
- bubblewrap is started with vfork: no `preexec_fn`, which made Python fork the whole server
  (torch and all);
- what that child did before exec is done by the server while bubblewrap holds the run's first
  process just before it execs the program, waiting for the seccomp filter on a pipe: bubblewrap
  and that process go into the run's cgroup, the process gets its limits (prlimit), and only
  then is the filter written. No filter, no program: should the server die first, bubblewrap
  reads an empty filter and gives up;
- a root server's capped tmpfs is mounted by a thread with a mount namespace of its own
  (`_Launcher`), which starts bubblewrap;
- the program reaches bubblewrap in a memfd (`--ro-bind-data`): no host file or folder per run.
"""

from __future__ import annotations

import ast
import contextlib
import ctypes
import functools
import itertools
import json
import math
import os
import queue
import re
import resource
import select
import selectors
import shutil
import signal
import site
import subprocess
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

from ..errors import E2PError
from . import run_cgroup
from .seccomp_filter import SeccompUnavailable, bpf_program
from .uid_lease import UID_RANGE, leased_uid

OUTPUT_CAP = 64 * 1024  # bytes kept per stream; the rest is read and thrown away
MEMORY_LIMIT = 1024**3  # a run's memory (cgroup), and each process's address space
FILE_SIZE_LIMIT = 16 * 1024**2  # largest file the code may write
WORKDIR_LIMIT = 64 * 1024**2  # size of the private tmpfs the code works in
WORKDIR_FILES = 20_000  # files and folders it may hold (each costs kernel memory, not tmpfs bytes)
OPEN_FILES_LIMIT = 256
PROCESS_LIMIT = 64  # tasks the program may have at once
SANDBOX_UID = 65534  # "nobody": the uid inside the user namespace of a server that is not root
TRUNCATION_NOTE = "\n[e2p: output truncated]\n"
MEMORY_NOTE = (
    f"\n[e2p: stopped: memory limit ({MEMORY_LIMIT // 1024**3} GiB for the run, all its processes together)]\n"
)
SWITCH = "E2P_SANDBOX"  # E2P_SANDBOX=off: never run generated code
NOT_RUN = "programs are not run"  # how every notice of a missing sandbox begins
# At most this many programs run at once in this process; more wait their turn.
MAX_CONCURRENT_RUNS = os.cpu_count() or 1

_PATH = "/usr/local/bin:/usr/bin:/bin"
_SCRIPT = "/run/e2p/main.py"  # beside the working folder, so the code starts in an empty one
_WORKDIR = "/home/sandbox"  # the program's working folder and HOME
_TMP = "/tmp"  # its own, beside the working folder: a Python environment under /tmp is bound inside
# /tmp, never in the working folder, which a program finds empty
# After the script exits, how long to keep reading pipes that a leftover child still holds.
_EXIT_GRACE_S = 0.5
_SLOTS = threading.BoundedSemaphore(MAX_CONCURRENT_RUNS)


class SandboxUnavailable(E2PError):
    """Programs cannot be run isolated here, so they are not run at all."""


@dataclass(frozen=True)
class RunResult:
    returncode: int | None  # None when it was killed at the wall-time limit or never started
    stdout: str
    stderr: str
    timed_out: bool
    isolated: bool = True  # ran inside the bubblewrap sandbox (always, where it ran at all)
    stopped: str = ""  # "memory limit" where the kernel killed the run for going over it

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and not self.stopped


@dataclass(frozen=True)
class SandboxStatus:
    available: bool
    reason: str  # why programs are not run; empty where they are
    mode: str  # how runs are isolated, in a few words

    @property
    def notice(self) -> str:
        """The one line that tells a user why nothing runs."""
        return f"{NOT_RUN}: {self.reason}"


@dataclass(frozen=True)
class Isolation:
    """What this server can give each run beyond the namespaces and the filter."""

    privileged: bool  # root: a uid per run and an inode-capped working folder
    cgroups: run_cgroup.Support  # a memory + pids cgroup per run, where one can be made


@functools.lru_cache(maxsize=1)
def isolation() -> Isolation:
    return Isolation(privileged=os.geteuid() == 0, cgroups=run_cgroup.support())


def describe_limits() -> str:
    """Every limit that holds, per run and per process, as `_run` sets them on this server."""
    iso = isolation()
    gb = MEMORY_LIMIT // 1024**3
    who = f"a uid of its own (from {UID_RANGE[0]}-{UID_RANGE[-1]})" if iso.privileged else f"uid {SANDBOX_UID}"
    mb = WORKDIR_LIMIT // 1024**2
    if iso.privileged:
        folder = f"a private working folder and /tmp, together {mb} MB and at most {WORKDIR_FILES:,} files and folders"
    else:
        folder = f"a private working folder and /tmp of {mb} MB each"
    per_process = (
        f"per process: {gb} GB of address space, {OPEN_FILES_LIMIT} open files, "
        f"{FILE_SIZE_LIMIT // 1024**2} MB per file and a few seconds of CPU time"
    )
    if iso.cgroups.available:
        limits = (
            f"per run, all its processes together: at most {gb} GB of memory (kernel memory, memfds and "
            f"files included) and {PROCESS_LIMIT} processes, and {folder}; {per_process}"
        )
    else:
        limits = (
            f"{folder}; no cgroup can be made here ({iso.cgroups.reason}), so memory and processes are "
            f"limited per process only: {per_process}, and {PROCESS_LIMIT} processes "
            + ("for the run's own uid" if iso.privileged else "more than the server's user already runs")
        )
    return (
        f"each program runs in a bubblewrap sandbox under a seccomp filter, as {who}, with no network "
        f"and no view of the server's files or environment; {limits}"
    )


@functools.lru_cache(maxsize=1)
def sandbox_status() -> SandboxStatus:
    """Whether programs can run isolated here; probed once per process with a real run."""
    if os.environ.get(SWITCH, "").lower() in ("off", "0", "no", "false"):
        return SandboxStatus(False, f"running programs is switched off ({SWITCH}=off)", "off")
    if shutil.which("bwrap") is None:
        return SandboxStatus(False, "bubblewrap (bwrap) is not installed: apt-get install bubblewrap", "off")
    try:
        bpf_program()
        if os.geteuid() == 0:
            with leased_uid():
                pass
    except (SeccompUnavailable, E2PError, OSError) as e:
        return SandboxStatus(False, str(e), "off")
    mode = (
        "bubblewrap namespaces and a seccomp filter, then a uid of its own per run"
        if os.geteuid() == 0
        else "bubblewrap in an unprivileged user namespace, with a seccomp filter"
    )
    probe = _run("import os; assert os.getuid() != 0; print('ok')", 10.0)
    if probe.stdout.strip() != "ok":
        lines = [line for line in probe.stderr.splitlines() if line.strip()]
        why = lines[-1] if lines else f"exit status {probe.returncode}"
        return SandboxStatus(False, f"bubblewrap cannot create its sandbox here ({why})", "off")
    return SandboxStatus(True, "", mode)


def run_code(code: str, timeout: float = 5.0) -> RunResult:
    """Run `code` with `python -I` in the sandbox, stdin closed, limits on; waits for a free slot."""
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, got {timeout}")
    _require_sandbox()
    with _SLOTS:
        return _run(code, timeout)


class RunBudget:
    """Runs for one request: each at most `per_run` seconds, all of them (queueing included)
    at most `total` seconds (None: no limit on the total). `run` gives None once the budget is spent."""

    def __init__(self, total: float | None = 5.0, per_run: float = 2.0):
        self.deadline = None if total is None else time.monotonic() + total
        self.per_run = per_run

    @property
    def left(self) -> float:
        if self.deadline is None:
            return self.per_run
        return max(self.deadline - time.monotonic(), 0.0)

    def run(self, code: str) -> RunResult | None:
        _require_sandbox()
        if not _SLOTS.acquire(timeout=-1 if self.deadline is None else self.left):
            return None
        try:
            left = self.left
            return _run(code, min(self.per_run, left)) if left >= 0.05 else None
        finally:
            _SLOTS.release()


def run_many(codes: list[str], timeout: float = 5.0, workers: int = 2) -> list[RunResult]:
    """run_code over `codes`, `workers` at a time; results in the order of `codes`."""
    if not codes:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(codes)))) as pool:
        return list(pool.map(lambda code: run_code(code, timeout), codes))


def _require_sandbox() -> None:
    status = sandbox_status()
    if not status.available:
        raise SandboxUnavailable(status.notice)


def _run(code: str, timeout: float) -> RunResult:
    iso = isolation()
    with contextlib.ExitStack() as cleanup:
        fds = cleanup.enter_context(_Fds())
        work = None
        try:
            uid = cleanup.enter_context(leased_uid()) if iso.privileged else SANDBOX_UID
            group = None
            if iso.cgroups.available:
                group = run_cgroup.RunCgroup(iso.cgroups, MEMORY_LIMIT, PROCESS_LIMIT + 1)  # + bwrap itself
                cleanup.callback(group.close)  # before the uid's lease ends: nothing of the run outlives it
            pipes = fds.script(code), fds.pipe(), fds.pipe()  # the program, bwrap's --info-fd, its --seccomp
            if iso.privileged:  # the inode-capped tmpfs, mounted in the launcher's namespace (see _Launcher)
                work = os.path.join(_STAGING, f"run-{next(_RUN_NAMES)}")
            command = _command(pipes[0], work, uid, pipes[2][0], pipes[1][1])
            start = functools.partial(_start, fds, pipes, command, work, group, _limits(timeout))
            if work is not None or (group is not None and group.version == 1):
                launcher = _launcher()
                if work is not None:  # once the run is over (harmless where it was never mounted)
                    cleanup.callback(launcher.post, functools.partial(_unmount, work))
                proc, problem = launcher.call(start)
            else:
                proc, problem = start()
        except (OSError, subprocess.SubprocessError, E2PError) as e:
            return RunResult(None, "", f"e2p sandbox: could not start bubblewrap: {e}", False)
        result = _collect(proc, timeout, group)
        return replace(result, returncode=None, stderr=problem + result.stderr) if problem else result


def _start(
    fds: _Fds, pipes, command: list[str], work: str | None, group: run_cgroup.RunCgroup | None, limits
) -> tuple[subprocess.Popen, str]:
    """Start bubblewrap, and let the run begin once it is in its cgroup and under its limits;
    bubblewrap and what went wrong, if anything (the run then never starts). In the launcher
    thread where the run has a working folder to mount or a v1 cgroup to be born in."""
    script, (info_read, info_write), (filter_read, filter_write) = pipes
    handed = (script, filter_read, info_write)
    try:
        if work is not None:
            os.mkdir(work, 0o700)
            _mount(b"tmpfs", work, _TMPFS_OPTIONS)
            for name in ("home", "tmp"):  # which bwrap binds as the working folder and /tmp
                folder = os.path.join(work, name)
                os.mkdir(folder)
                os.chmod(folder, 0o1777)  # mkdir's mode goes through the umask
        if group is not None and group.version == 1:
            # This thread steps into the cgroup, starts bubblewrap there and steps out at once:
            # cheap, where moving bubblewrap in after costs ~10 ms (see RunCgroup.enter). Nothing of
            # the server's may stay in a run's cgroup (its end kills what is there); should
            # leaving fail, RunCgroup.close still spares the server.
            group.enter()
            try:
                proc = _popen(command, handed)
            finally:
                group.leave()
            group = None  # all of the run is in it from birth
        else:
            proc = _popen(command, handed)
    finally:
        fds.close(*handed)  # bubblewrap has its own; the info pipe ends once it has written to it
    problem = ""
    try:
        if group is not None:
            # The first move into a cgroup waits out an RCU grace period (ms): start it now,
            # while bubblewrap sets up. Its first process is moved too (if it was cloned first).
            group.add(proc.pid)
        child = _child_pid(info_read)
        if child is not None:  # else bubblewrap stopped before making the run: its stderr says why
            _admit(proc.pid, child, group, limits, filter_write)
    except OSError as e:
        problem = f"e2p sandbox: the run could not be set up, so it did not start: {e}\n"
    finally:
        fds.close(filter_write)  # without the filter written, the run's first process gives up
    return proc, problem


class _Fds:
    """A run's file descriptors, each closed exactly once (a second close could hit another thread's fd)."""

    def __init__(self) -> None:
        self.open: set[int] = set()

    def pipe(self) -> tuple[int, int]:
        read, write = os.pipe()
        self.open |= {read, write}
        return read, write

    def script(self, code: str) -> int:
        """The program's text in a memfd, for `bwrap --ro-bind-data`: no host file or folder per run."""
        fd = os.memfd_create("e2p-main.py", os.MFD_CLOEXEC)
        self.open.add(fd)
        # surrogatepass: text that is not valid Unicode still reaches Python, which
        # rejects it as a SyntaxError like any other broken program.
        data = memoryview(code.encode("utf-8", "surrogatepass"))
        while data:
            data = data[os.write(fd, data) :]
        os.lseek(fd, 0, os.SEEK_SET)  # bubblewrap reads it from the start (the offset is shared)
        return fd

    def close(self, *fds: int) -> None:
        for fd in fds:
            if fd in self.open:
                self.open.discard(fd)
                os.close(fd)

    def __enter__(self) -> _Fds:
        return self

    def __exit__(self, *exc) -> None:
        self.close(*list(self.open))


def _popen(command: list[str], handed: tuple[int, ...]) -> subprocess.Popen:
    """Start bubblewrap. No preexec_fn, user= or group= here: any of them makes Python fork the
    whole server (torch and all: ~10 ms, and copy-on-write faults after) instead of vfork
    (CPython 3.11 _posixsubprocess); process_group= and pass_fds= keep vfork. A process group of
    its own, not a session: setsid moves the child to an autogroup of its own, which cost ms
    here (bwrap --new-session gives the program a session of its own anyway)."""
    return subprocess.Popen(
        command,
        env={},  # the server's environment never reaches the launcher, let alone the code
        cwd="/",
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        process_group=0,  # so that os.killpg(proc.pid) reaches bubblewrap
        pass_fds=handed,
    )


_START_LIMIT_S = 10.0  # bubblewrap writes the pid within ms of starting; never wait forever


def _child_pid(info_read: int) -> int | None:
    """The pid `bwrap --info-fd` writes ({"child-pid": N}) once it has cloned the run's first
    process; None where bubblewrap closed the pipe without (it failed before: its stderr says why)."""
    data, deadline = b"", time.monotonic() + _START_LIMIT_S
    while (left := deadline - time.monotonic()) > 0 and select.select([info_read], [], [], left)[0]:
        chunk = os.read(info_read, 4096)
        if not chunk:
            break
        data += chunk
    try:
        return int(json.loads(data)["child-pid"])
    except (ValueError, KeyError, TypeError):
        return None


def _admit(bwrap: int, child: int, group: run_cgroup.RunCgroup | None, limits, filter_write: int) -> None:
    """Let the run start: its first process into its cgroup and under its limits (exec passes
    them on), then the filter, which that process waits for just before it execs the program:
    nothing of the program has run yet."""
    if _parent(child) != bwrap:  # gone already, and its pid maybe another process's by now
        raise OSError(f"bubblewrap's first process ({child}) is gone")
    if group is not None:
        group.add(child)  # bwrap starts nothing more (--as-pid-1): all of the run is counted
    for res, soft, hard in limits:
        resource.prlimit(child, res, (soft, hard))
    program = bpf_program()
    if os.write(filter_write, program) != len(program):  # a few hundred bytes: one atomic pipe write
        raise OSError("the seccomp filter could not be handed to bubblewrap")


def _parent(pid: int) -> int | None:
    """The parent pid of `pid` (/proc/PID/stat), None where it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _filter_pipe() -> int:
    """A pipe's read end holding the compiled seccomp filter, for `bwrap --seccomp FD`."""
    program = bpf_program()
    read, write = os.pipe()
    try:
        os.write(write, program)  # a few hundred bytes: far below a pipe's buffer
    finally:
        os.close(write)
    return read


_LIBC = ctypes.CDLL(None, use_errno=True)
_LIBC.unshare.argtypes = (ctypes.c_int,)
_LIBC.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p)
_LIBC.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)
_CLONE_NEWNS, _MS_NOSUID, _MS_NODEV, _MS_REC, _MS_PRIVATE, _MS_SLAVE = 0x20000, 2, 4, 0x4000, 1 << 18, 1 << 19
_MNT_DETACH = 2
_TMPFS_OPTIONS = f"size={WORKDIR_LIMIT},nr_inodes={WORKDIR_FILES},mode=1777".encode()
# Where a root server's runs' working folders are mounted: a host folder that only ever shows
# empty there, as the launcher mounts a tmpfs of its own on it, in its namespace alone.
_STAGING = "/run/e2p-sandbox/work"
_RUN_NAMES = itertools.count()


def _os_error(what: str) -> OSError:
    errno = ctypes.get_errno()
    return OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source: bytes, target: str, options: bytes) -> None:
    """A tmpfs on `target` in the calling thread's mount namespace, private: nothing mounted or
    unmounted there afterwards reaches a copy of it (a run's namespace) or the other way round."""
    target_b = target.encode()
    if (
        _LIBC.mount(source, target_b, b"tmpfs", _MS_NOSUID | _MS_NODEV, options) != 0
        or _LIBC.mount(None, target_b, None, _MS_PRIVATE, None) != 0
    ):
        raise _os_error(f"{target} cannot be mounted")


class _Launcher:
    """A thread that starts runs where the server itself should not be: in a mount namespace of
    its own (a root server), and for a moment in the run's cgroup (v1, `RunCgroup.enter`).

    Each run's working folder is a tmpfs with an inode cap (bwrap 0.8 cannot cap inodes), which
    the host must never see. It used to be mounted in a private namespace made between fork and
    exec, which made Python fork the whole server. A thread can leave the process's mount
    namespace alone (unshare(CLONE_NEWNS) acts on the calling thread), and what it starts
    inherits its namespace: bubblewrap copies it, mount included, when it clones the run's
    first process; the launcher unmounts its own copy when the run is over. The thread lives as
    long as the server: bwrap's --die-with-parent watches the thread that started it, not the
    process."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        ready: Future = Future()
        threading.Thread(target=self._serve, args=(ready,), name="e2p-sandbox-launcher", daemon=True).start()
        ready.result()  # OSError where the namespace cannot be made

    def _serve(self, ready: Future) -> None:
        try:
            if os.geteuid() == 0:  # only root mounts working folders (and may make a namespace)
                os.makedirs(_STAGING, mode=0o700, exist_ok=True)
                # Slave: the host's later mounts still show here; this thread's never reach the host.
                if _LIBC.unshare(_CLONE_NEWNS) != 0 or _LIBC.mount(None, b"/", None, _MS_REC | _MS_SLAVE, None):
                    raise _os_error("the sandbox's mount namespace cannot be made")
                _mount(b"e2p-staging", _STAGING, b"size=1m,mode=0700")
        except OSError as e:
            ready.set_exception(e)
            return
        ready.set_result(None)
        while True:
            job, done = self._jobs.get()
            try:
                result = job()
            except BaseException as e:  # handed to the caller, whatever it is
                if done is not None:
                    done.set_exception(e)
            else:
                if done is not None:
                    done.set_result(result)

    def call(self, job):
        """`job()` run in the launcher thread; its result, or its exception raised here."""
        done: Future = Future()
        self._jobs.put((job, done))
        return done.result()

    def post(self, job) -> None:
        """`job()` to be run in the launcher thread; no waiting for it (nor word of its failure)."""
        self._jobs.put((job, None))


_LAUNCHER: list[_Launcher] = []
_LAUNCHER_LOCK = threading.Lock()


def _launcher() -> _Launcher:
    with _LAUNCHER_LOCK:
        if not _LAUNCHER:
            _LAUNCHER.append(_Launcher())
        return _LAUNCHER[0]


def _forget_launcher() -> None:
    global _LAUNCHER_LOCK
    _LAUNCHER.clear()  # a forked server has no launcher thread: it starts its own
    _LAUNCHER_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_forget_launcher)


def _unmount(work: str) -> None:
    """(In the launcher thread) take `work`'s tmpfs out of the launcher's namespace."""
    _LIBC.umount2(work.encode(), _MNT_DETACH)  # fails harmlessly where it was never mounted
    with contextlib.suppress(OSError):
        os.rmdir(work)


def _command(script_fd: int, work: str | None, uid: int, filter_fd: int, info_fd: int | None = None) -> list[str]:
    """The bwrap command line that runs the program read from `script_fd` as `uid`; bwrap's own
    options end at the first `--`. With `info_fd`, bwrap writes its first process's pid there."""
    privileged = isolation().privileged
    cmd = [
        "bwrap",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--die-with-parent",
        "--new-session",
        "--as-pid-1",
        "--hostname",
        "sandbox",
        "--seccomp",
        str(filter_fd),
    ]
    if info_fd is not None:
        cmd += ["--info-fd", str(info_fd)]
    if not privileged:
        cmd += ["--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--cap-drop", "ALL"]
    cmd += [
        "--clearenv",
        "--setenv",
        "PATH",
        _PATH,
        "--setenv",
        "LANG",
        "C.UTF-8",
        # -I ignores PYTHON* variables; this one is for any interpreter the code starts itself.
        "--setenv",
        "PYTHONIOENCODING",
        "utf-8",
        "--setenv",
        "HOME",
        _WORKDIR,
        "--setenv",
        "TMPDIR",
        _TMP,
    ]
    cmd += ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64"):
        if os.path.islink(top):  # merged /usr: /bin -> usr/bin
            cmd += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            cmd += ["--ro-bind", top, top]
    for name in ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "alternatives"):
        cmd += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    cmd += ["--proc", "/proc", "--dev", "/dev"]
    cmd += _parents(_WORKDIR)
    if work is not None:  # one capped tmpfs holds both (see _mount_private_tmpfs)
        cmd += ["--bind", os.path.join(work, "home"), _WORKDIR, "--bind", os.path.join(work, "tmp"), _TMP]
    else:  # bubblewrap's own tmpfs: a size cap only, one for each
        for folder in (_WORKDIR, _TMP):
            cmd += ["--size", str(WORKDIR_LIMIT), "--perms", "1777", "--tmpfs", folder]
    # After /tmp: an environment under /tmp (a virtualenv there) must stay visible.
    for source, target in _python_folders():
        cmd += _parents(target) + ["--ro-bind", source, target]
    for pth in _unreachable_editable_hooks():  # see there
        cmd += ["--ro-bind", "/dev/null", pth]  # a device on a nodev mount: unreadable, so site skips it
    # The program, copied by bwrap into a read-only tmpfs of its own: no host file per run.
    scripts = os.path.dirname(_SCRIPT)
    cmd += [
        *_parents(scripts),
        *("--perms", "0755", "--tmpfs", scripts),
        *("--perms", "0444", "--ro-bind-data", str(script_fd), _SCRIPT),
        *("--remount-ro", scripts),
        "--chdir",
        _WORKDIR,
        "--",
    ]
    if privileged:
        cmd += [
            "setpriv",
            f"--reuid={uid}",
            f"--regid={uid}",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
            "--",
        ]
    return cmd + [_interpreter(), "-I", _SCRIPT]


def _interpreter() -> str:
    """The server's own interpreter, as started: in a virtualenv its bin/python, whose
    pyvenv.cfg gives the run the virtualenv's sys.prefix and packages (the resolved path
    would be the base interpreter, with the base's packages)."""
    if sys.executable and os.path.isabs(sys.executable) and os.path.exists(sys.executable):
        return os.path.abspath(sys.executable)
    return os.path.realpath(sys.executable)


def _parents(path: str) -> list[str]:
    """Create `path`'s ancestors world-searchable (bwrap would make them 0700, closed to the run's
    uid); the working folder is there already and keeps its own mode."""
    parts, cmd = path.strip("/").split("/")[:-1], []
    for i in range(len(parts)):
        folder = "/" + "/".join(parts[: i + 1])
        if folder not in (_WORKDIR, _TMP):
            cmd += ["--perms", "0755", "--dir", folder]
    return cmd


@functools.lru_cache(maxsize=1)
def _python_folders() -> tuple[tuple[str, str], ...]:
    """(source, target) binds for the server's Python environment (interpreter, virtualenv and
    their packages) where not under /usr, each seen inside at the path the server knows it by."""
    found: dict[str, str] = {}
    for path in (
        sys.base_prefix,
        sys.prefix,
        sys.exec_prefix,
        os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))),
    ):
        for target in (os.path.abspath(path), os.path.realpath(path)):
            if not target.startswith("/usr/") and os.path.isdir(target) and target not in found:
                found[target] = os.path.realpath(target)
    return tuple((source, target) for target, source in found.items())


@functools.lru_cache(maxsize=1)
def _unreachable_editable_hooks() -> tuple[str, ...]:
    """The server's editable installs (setuptools' `__editable__.*.pth` import hooks) whose
    sources lie outside all the sandbox binds, as this project's own when installed with
    `pip install -e .`: no program could import them there anyway, and their hook costs every
    run's interpreter ~15 ms at startup (site imports pathlib, importlib.util, ... to install
    it). Hidden (unreadable inside, which site takes as no hook) only where each hook of the file
    maps nothing but such sources; any other .pth, and every package that can be imported, stays
    as it is."""
    visible = ["/usr", *(target for _, target in _python_folders())]

    def seen_inside(path: str) -> bool:
        return any(p == root or p.startswith(root + "/") for p in {path, os.path.realpath(path)} for root in visible)

    hidden = []
    for folder in site.getsitepackages():
        try:
            names = sorted(os.listdir(folder)) if seen_inside(folder) else []  # else nothing to hide
        except OSError:
            continue
        for name in names:
            if not (name.startswith("__editable__.") and name.endswith(".pth")):
                continue
            try:
                with open(os.path.join(folder, name)) as f:
                    lines = [line.strip() for line in f if line.strip()]
                sources = [path for line in lines for path in _editable_sources(folder, line)]
            except (OSError, ValueError, SyntaxError, AttributeError, TypeError):  # not as expected: left alone
                continue
            if lines and not any(seen_inside(path) for path in sources):
                hidden.append(os.path.join(folder, name))
    return tuple(hidden)


def _editable_sources(folder: str, line: str) -> list[str]:
    """The source folders a setuptools editable hook line (`import M; M.install()`) maps
    packages to, from M's MAPPING and NAMESPACES; ValueError for any other line."""
    match = re.fullmatch(r"import (__editable___\w+_finder); \1\.install\(\)", line)
    if match is None:
        raise ValueError(line)
    with open(os.path.join(folder, match[1] + ".py")) as f:
        tree = ast.parse(f.read())
    sources = []
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else getattr(node, "targets", [None])[0]
        if isinstance(target, ast.Name) and target.id in ("MAPPING", "NAMESPACES") and node.value is not None:
            for value in ast.literal_eval(node.value).values():
                sources += [value] if isinstance(value, str) else list(value)
    if not sources:
        raise ValueError(f"no MAPPING in {match[1]}")
    return sources


def _limits(timeout: float) -> list[tuple[int, int, int]]:
    cpu = math.ceil(timeout) + 1
    nproc = PROCESS_LIMIT
    if not isolation().privileged:
        # Without a uid of its own (a server that is not root) the count includes every task of
        # the server's user: cap the growth instead of the total.
        nproc += _tasks_of_this_user() or 0
    wanted = [
        (resource.RLIMIT_CPU, cpu, cpu + 1),  # SIGXCPU at the soft limit, SIGKILL at the hard
        (resource.RLIMIT_AS, MEMORY_LIMIT, MEMORY_LIMIT),
        (resource.RLIMIT_FSIZE, FILE_SIZE_LIMIT, FILE_SIZE_LIMIT),
        (resource.RLIMIT_NOFILE, OPEN_FILES_LIMIT, OPEN_FILES_LIMIT),
        (resource.RLIMIT_NPROC, nproc, nproc),
        (resource.RLIMIT_CORE, 0, 0),
    ]
    limits = []
    for res, soft, hard in wanted:
        # Raising a hard limit fails for an unprivileged caller: never ask above the current one.
        current_hard = resource.getrlimit(res)[1]
        if current_hard != resource.RLIM_INFINITY:
            hard = min(hard, current_hard)
            soft = min(soft, hard)
        limits.append((res, soft, hard))
    return limits


def _tasks_of_this_user() -> int | None:
    """Tasks (threads) owned by our real uid that /proc shows, or None without /proc."""
    if not os.path.isdir("/proc/self/task"):
        return None
    uid, count = os.getuid(), 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if os.stat(f"/proc/{pid}").st_uid == uid:
                    count += len(os.listdir(f"/proc/{pid}/task"))
            except OSError:  # exited while we looked
                pass
    return count


def _children(pid: int) -> list[int]:
    """The pids of `pid`'s children (bubblewrap is single-threaded), [] where /proc cannot say."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(child) for child in f.read().split()]
    except (OSError, ValueError):
        return []


def _collect(proc: subprocess.Popen, timeout: float, group: run_cgroup.RunCgroup | None = None) -> RunResult:
    buffers = {proc.stdout: bytearray(), proc.stderr: bytearray()}
    truncated = {proc.stdout: False, proc.stderr: False}
    deadline = time.monotonic() + timeout
    exited = False
    over_memory, next_memory_check = False, 0.0
    with selectors.DefaultSelector() as selector:
        for stream in buffers:
            selector.register(stream, selectors.EVENT_READ)
        while selector.get_map():
            now = time.monotonic()
            if not exited and proc.poll() is not None:
                exited = True
                deadline = min(deadline, now + _EXIT_GRACE_S)
            if group is not None and now >= next_memory_check:
                # cgroup v1 kills one process at the limit, not the run: stop the rest of it too.
                next_memory_check = now + 0.05
                if group.oom_killed():
                    over_memory = True
                    break
            if now >= deadline:
                break
            for key, _ in selector.select(min(deadline - now, 0.1)):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                    continue
                buffer = buffers[key.fileobj]
                room = OUTPUT_CAP - len(buffer)
                # Keep draining past the cap so a chatty program is not stalled on a full pipe.
                buffer += chunk[: max(room, 0)]
                truncated[key.fileobj] |= len(chunk) > room
    try:  # the pipes can close a moment before the process is done
        proc.wait(timeout=0 if over_memory else max(deadline - time.monotonic(), 0))
        timed_out = False
    except subprocess.TimeoutExpired:
        timed_out = not over_memory
    if proc.returncode is None:  # not reaped yet, so proc.pid cannot belong to anyone else
        # Kill the namespace's first process (bubblewrap's only child), not bubblewrap: the
        # kernel kills every other process of the namespace and lets that one exit only once
        # they are all gone, and bubblewrap exits only after reaping it. So once proc.wait()
        # returns, nothing the run started is alive. (Killing bubblewrap itself brings the
        # namespace down through --die-with-parent too, but asynchronously: processes of the
        # run were still alive for up to ~40 ms after run_code returned.)
        children = _children(proc.pid)
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            proc.wait(timeout=5 if children else 0)
        except subprocess.TimeoutExpired:
            try:  # fallback: --die-with-parent takes the namespace down with bubblewrap
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    over_memory = over_memory or (group is not None and group.oom_killed())

    def text(stream) -> str:
        decoded = buffers[stream].decode("utf-8", errors="replace")
        return decoded + TRUNCATION_NOTE if truncated[stream] else decoded

    return RunResult(
        returncode=None if timed_out else proc.returncode,
        stdout=text(proc.stdout),
        stderr=text(proc.stderr) + (MEMORY_NOTE if over_memory else ""),
        timed_out=timed_out,
        stopped="memory limit" if over_memory else "",
    )
