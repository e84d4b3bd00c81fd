"""Run a Python snippet as a script in a throwaway, resource-limited subprocess.

This is damage control for evaluation (timeouts, memory, runaway output, stray files),
not a security boundary: the code runs as the calling user and can do whatever that
user can do. POSIX only.
"""

from __future__ import annotations

import functools
import math
import os
import resource
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

OUTPUT_CAP = 64 * 1024  # bytes kept per stream; the rest is read and thrown away
MEMORY_LIMIT = 1024**3  # address space
FILE_SIZE_LIMIT = 16 * 1024**2  # largest file the code may write
EXTRA_PROCESSES = 64  # tasks the code may add to those its user already runs
TRUNCATION_NOTE = "\n[e2p: output truncated]\n"

_PATH = "/usr/local/bin:/usr/bin:/bin"
# After the script exits, how long to keep reading pipes that a leftover child still holds.
_EXIT_GRACE_S = 0.5


@dataclass(frozen=True)
class RunResult:
    returncode: int | None  # None when it was killed at the wall-time limit or never started
    stdout: str
    stderr: str
    timed_out: bool

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def run_code(code: str, timeout: float = 5.0) -> RunResult:
    """Run `code` with `python -I` in a fresh temporary directory, stdin closed, limits on."""
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, got {timeout}")
    with tempfile.TemporaryDirectory(prefix="e2p-run-", ignore_cleanup_errors=True) as root:
        # The script sits beside the working directory, so the code starts in an empty one.
        script = os.path.join(root, "main.py")
        workdir = os.path.join(root, "work")
        os.mkdir(workdir)
        with open(script, "wb") as f:
            # surrogatepass: text that is not valid Unicode still reaches Python, which
            # rejects it as a SyntaxError like any other broken program.
            f.write(code.encode("utf-8", "surrogatepass"))
        env = {
            "PATH": _PATH,
            "LANG": "C.UTF-8",
            # -I ignores PYTHON* variables (LANG already gives UTF-8 stdio); this one is
            # for any interpreter the code itself starts without -I.
            "PYTHONIOENCODING": "utf-8",
            "HOME": workdir,
            "TMPDIR": workdir,
        }
        try:
            proc = subprocess.Popen(
                [sys.executable, "-I", script],
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # own process group, so a timeout kills its children too
                preexec_fn=functools.partial(_set_limits, _limits(timeout)),
            )
        except OSError as e:
            return RunResult(None, "", f"e2p sandbox: could not start Python: {e}", False)
        return _collect(proc, timeout)


def run_many(codes: list[str], timeout: float = 5.0, workers: int = 2) -> list[RunResult]:
    """run_code over `codes`, `workers` at a time; results in the order of `codes`."""
    if not codes:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(codes)))) as pool:
        return list(pool.map(lambda code: run_code(code, timeout), codes))


def _limits(timeout: float) -> list[tuple[int, int, int]]:
    cpu = math.ceil(timeout) + 1
    wanted = [
        (resource.RLIMIT_CPU, cpu, cpu + 1),  # SIGXCPU at the soft limit, SIGKILL at the hard
        (resource.RLIMIT_AS, MEMORY_LIMIT, MEMORY_LIMIT),
        (resource.RLIMIT_FSIZE, FILE_SIZE_LIMIT, FILE_SIZE_LIMIT),
        (resource.RLIMIT_CORE, 0, 0),
    ]
    tasks = _tasks_of_this_user()
    if tasks is not None:
        # RLIMIT_NPROC counts every task of the user, the caller's own included, so a fixed
        # small cap could forbid any fork at all; cap the growth instead. (Root with
        # CAP_SYS_ADMIN or CAP_SYS_RESOURCE is exempt from it.)
        nproc = tasks + EXTRA_PROCESSES
        wanted.append((resource.RLIMIT_NPROC, nproc, nproc))
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
    try:  # also ends whatever the code left running in its group
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
