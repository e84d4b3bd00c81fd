"""Run a Python snippet as a script inside bubblewrap, isolated from the server.

Every run gets fresh pid, network, ipc and uts namespaces; a read-only view of only what
Python needs (the system's /usr and the project's own Python environment); a private tmpfs
with a size cap as its working folder; an unprivileged uid and gid with every capability
dropped; no environment from the server; CPU, memory, file-size, open-files and process-count
limits. Killing the namespace's first process ends everything the run started.

A server running as root enters the namespaces as root and drops to uid/gid 65534 with
`setpriv` (the process-count limit binds only a real unprivileged uid); a server running as an
ordinary user uses an unprivileged user namespace instead. Where bubblewrap is missing or
cannot create its namespaces, nothing runs: `run_code` raises `SandboxUnavailable`. POSIX only.
"""

from __future__ import annotations

import functools
import math
import os
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..errors import E2PError

OUTPUT_CAP = 64 * 1024  # bytes kept per stream; the rest is read and thrown away
MEMORY_LIMIT = 1024**3  # address space
FILE_SIZE_LIMIT = 16 * 1024**2  # largest file the code may write
WORKDIR_LIMIT = 64 * 1024**2  # size of the private tmpfs the code works in
OPEN_FILES_LIMIT = 256
PROCESS_LIMIT = 64  # tasks the unprivileged sandbox user may have at once
SANDBOX_UID = 65534  # "nobody"
TRUNCATION_NOTE = "\n[e2p: output truncated]\n"
SWITCH = "E2P_SANDBOX"  # E2P_SANDBOX=off: never run generated code
NOT_RUN = "programs are not run"  # how every notice of a missing sandbox begins
# At most this many programs run at once in this process; more wait their turn.
MAX_CONCURRENT_RUNS = os.cpu_count() or 1

_PATH = "/usr/local/bin:/usr/bin:/bin"
_SCRIPT = "/run/e2p/main.py"  # beside the working folder, so the code starts in an empty one
_WORKDIR = "/tmp"
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

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


@dataclass(frozen=True)
class SandboxStatus:
    available: bool
    reason: str  # why programs are not run; empty where they are
    mode: str  # how runs are isolated, in a few words

    @property
    def notice(self) -> str:
        """The one line that tells a user why nothing runs."""
        return f"{NOT_RUN}: {self.reason}"


def describe_limits() -> str:
    return (
        f"each program runs in a bubblewrap sandbox as an unprivileged user (uid {SANDBOX_UID}) with "
        f"no network, no view of the server's files or environment, a private "
        f"{WORKDIR_LIMIT // 1024**2} MB working folder, at most {MEMORY_LIMIT // 1024**3} GB of memory, "
        f"{PROCESS_LIMIT} processes, {OPEN_FILES_LIMIT} open files, {FILE_SIZE_LIMIT // 1024**2} MB "
        f"per file and a few seconds of time"
    )


@functools.lru_cache(maxsize=1)
def sandbox_status() -> SandboxStatus:
    """Whether programs can run isolated here; probed once per process with a real run."""
    if os.environ.get(SWITCH, "").lower() in ("off", "0", "no", "false"):
        return SandboxStatus(False, f"running programs is switched off ({SWITCH}=off)", "off")
    if shutil.which("bwrap") is None:
        return SandboxStatus(False, "bubblewrap (bwrap) is not installed: apt-get install bubblewrap", "off")
    mode = (
        f"bubblewrap namespaces, then uid {SANDBOX_UID}"
        if os.geteuid() == 0
        else "bubblewrap in an unprivileged user namespace"
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
    at most `total` seconds. `run` gives None once the budget is spent."""

    def __init__(self, total: float = 5.0, per_run: float = 2.0):
        self.deadline = time.monotonic() + total
        self.per_run = per_run

    @property
    def left(self) -> float:
        return max(self.deadline - time.monotonic(), 0.0)

    def run(self, code: str) -> RunResult | None:
        _require_sandbox()
        if not _SLOTS.acquire(timeout=self.left):
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
    with tempfile.TemporaryDirectory(prefix="e2p-run-", ignore_cleanup_errors=True) as root:
        script = os.path.join(root, "main.py")
        with open(script, "wb") as f:
            # surrogatepass: text that is not valid Unicode still reaches Python, which
            # rejects it as a SyntaxError like any other broken program.
            f.write(code.encode("utf-8", "surrogatepass"))
        os.chmod(script, 0o644)  # readable by the sandbox's unprivileged user
        os.chmod(root, 0o755)
        try:
            proc = subprocess.Popen(
                _command(root),
                env={},  # the server's environment never reaches the launcher, let alone the code
                cwd="/",
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                preexec_fn=functools.partial(_set_limits, _limits(timeout)),
            )
        except OSError as e:
            return RunResult(None, "", f"e2p sandbox: could not start bubblewrap: {e}", False)
        return _collect(proc, timeout)


def _command(folder: str) -> list[str]:
    """The bwrap command line that runs `folder`/main.py."""
    privileged = os.geteuid() == 0
    cmd = [
        "bwrap",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--die-with-parent",
        "--new-session",
        "--hostname",
        "sandbox",
    ]
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
        _WORKDIR,
    ]
    cmd += ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64"):
        if os.path.islink(top):  # merged /usr: /bin -> usr/bin
            cmd += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            cmd += ["--ro-bind", top, top]
    for name in ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "alternatives"):
        cmd += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    for env in _python_folders():
        cmd += _parents(env) + ["--ro-bind", env, env]
    cmd += [
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--size",
        str(WORKDIR_LIMIT),
        "--perms",
        "1777",
        "--tmpfs",
        _WORKDIR,
        *_parents(os.path.dirname(_SCRIPT)),
        "--ro-bind",
        folder,
        os.path.dirname(_SCRIPT),
        "--chdir",
        _WORKDIR,
        "--",
    ]
    if privileged:
        cmd += [
            "setpriv",
            f"--reuid={SANDBOX_UID}",
            f"--regid={SANDBOX_UID}",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
            "--",
        ]
    return cmd + [os.path.realpath(sys.executable), "-I", _SCRIPT]


def _parents(path: str) -> list[str]:
    """Create `path`'s ancestors world-searchable (bwrap would make them 0700, closed to uid 65534)."""
    parts, cmd = path.strip("/").split("/")[:-1], []
    for i in range(len(parts)):
        cmd += ["--perms", "0755", "--dir", "/" + "/".join(parts[: i + 1])]
    return cmd


@functools.lru_cache(maxsize=1)
def _python_folders() -> tuple[str, ...]:
    """The project's Python environment (interpreter and its packages), where not under /usr."""
    found = []
    for path in (
        sys.base_prefix,
        sys.prefix,
        sys.exec_prefix,
        os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))),
    ):
        path = os.path.realpath(path)
        if not path.startswith("/usr/") and os.path.isdir(path) and path not in found:
            found.append(path)
    return tuple(found)


def _limits(timeout: float) -> list[tuple[int, int, int]]:
    cpu = math.ceil(timeout) + 1
    nproc = PROCESS_LIMIT
    if os.geteuid() != 0:
        # Without a uid of its own the count includes every task of the server's user: cap
        # the growth instead of the total.
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


def _set_limits(limits: list[tuple[int, int, int]]) -> None:
    # Runs in the child between fork and exec, maybe while other threads exist: keep it tiny.
    for res, soft, hard in limits:
        resource.setrlimit(res, (soft, hard))


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


def _collect(proc: subprocess.Popen, timeout: float) -> RunResult:
    buffers = {proc.stdout: bytearray(), proc.stderr: bytearray()}
    truncated = {proc.stdout: False, proc.stderr: False}
    deadline = time.monotonic() + timeout
    exited = False
    with selectors.DefaultSelector() as selector:
        for stream in buffers:
            selector.register(stream, selectors.EVENT_READ)
        while selector.get_map():
            now = time.monotonic()
            if not exited and proc.poll() is not None:
                exited = True
                deadline = min(deadline, now + _EXIT_GRACE_S)
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
        proc.wait(timeout=max(deadline - time.monotonic(), 0))
        timed_out = False
    except subprocess.TimeoutExpired:
        timed_out = True
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

    def text(stream) -> str:
        decoded = buffers[stream].decode("utf-8", errors="replace")
        return decoded + TRUNCATION_NOTE if truncated[stream] else decoded

    return RunResult(
        returncode=None if timed_out else proc.returncode,
        stdout=text(proc.stdout),
        stderr=text(proc.stderr),
        timed_out=timed_out,
    )
