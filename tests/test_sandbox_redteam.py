"""Red-team probes against the sandbox (issue 9, item 7): hostile programs run through
`e2p.sandbox.runner.run_code`, each checked from the host side after the run.

Where bubblewrap cannot run programs the probes are skipped with the reason, unless
E2P_REQUIRE_SANDBOX=1 (set by CI), where they fail: an escape, or a missing sandbox, fails CI.
The secure-by-default tests at the end need no bubblewrap and always run.
"""

from __future__ import annotations

import json
import math
import os
import resource
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from e2p.sandbox import runner as sandbox
from e2p.sandbox.runner import (
    FILE_SIZE_LIMIT,
    MEMORY_LIMIT,
    OPEN_FILES_LIMIT,
    PROCESS_LIMIT,
    SANDBOX_UID,
    TRUNCATION_NOTE,
    SandboxUnavailable,
    run_code,
    sandbox_status,
)
from e2p.sandbox.uid_lease import UID_RANGE

REQUIRE = "E2P_REQUIRE_SANDBOX"
DONE = "E2P-PROBE-DONE"  # printed last by every probe: it ran to the end, so a pass is not vacuous


def require_sandbox() -> None:
    """Skip where bubblewrap cannot run programs here; fail instead when E2P_REQUIRE_SANDBOX=1."""
    status = sandbox_status()
    if status.available:
        return
    message = f"the bubblewrap sandbox is unavailable: {status.reason}"
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{message} ({REQUIRE}=1: the sandbox tests must run here)")
    pytest.skip(message)


@pytest.fixture
def sandboxed() -> None:
    require_sandbox()


needs_sandbox = pytest.mark.usefixtures("sandboxed")


@pytest.fixture
def per_run_limits() -> None:
    """Limits on a run as a whole need a server running as root that can make cgroups."""
    require_sandbox()
    iso = sandbox.isolation()
    if iso.privileged and iso.cgroups.available:
        return
    message = (
        "per-run limits need a server running as root" if not iso.privileged else f"no cgroup: {iso.cgroups.reason}"
    )
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{message} ({REQUIRE}=1: the sandbox tests must run here)")
    pytest.skip(message)


needs_per_run_limits = pytest.mark.usefixtures("per_run_limits")


def _probe(code: str, timeout: float = 5.0):
    """Run `code` (which must print DONE last) and check it ran to its end."""
    result = run_code(code, timeout=timeout)
    assert result.isolated is True
    assert result.stdout.rstrip().endswith(DONE), (result.stdout[-2000:], result.stderr[-2000:])
    return result


def _attempts(paths) -> str:
    """Code that tries to write each of `paths` (creating its folder) and prints the outcome."""
    return (
        "import os\n"
        f"for path in {[str(p) for p in paths]!r}:\n"
        "    try:\n"
        "        os.makedirs(os.path.dirname(path), exist_ok=True)\n"
        "        with open(path, 'w') as f:\n"
        "            f.write('escaped')\n"
        "        print('wrote', path)\n"
        "    except OSError as e:\n"
        "        print('refused', path, type(e).__name__)\n"
        f"print({DONE!r})\n"
    )


# --- the file system --------------------------------------------------------------------------


@needs_sandbox
def test_write_outside_the_working_folder_leaves_no_file(tmp_path):
    targets = [tmp_path / "escaped.txt", Path("/tmp") / f"e2p-redteam-{uuid.uuid4().hex}.txt"]
    try:
        _probe(_attempts(targets))
        assert [str(p) for p in targets if p.exists()] == []
    finally:
        for path in targets:
            path.unlink(missing_ok=True)


@needs_sandbox
def test_write_inside_the_project_or_its_python_leaves_no_file(repo_root):
    name = f"e2p-redteam-{uuid.uuid4().hex}"
    targets = [
        repo_root / f"{name}.txt",
        repo_root / "artifacts" / f"{name}.txt",
        repo_root / "e2p" / f"{name}.py",
        Path(sysconfig.get_paths()["purelib"]) / f"{name}.py",  # a module every later run imports
    ]
    try:
        result = _probe(_attempts(targets + ["/run/e2p/planted.py"]))
        assert [str(p) for p in targets if p.exists()] == []
        # The script's folder is a host folder bound into the sandbox: read-only.
        assert "refused /run/e2p/planted.py" in result.stdout
    finally:
        for path in targets:
            path.unlink(missing_ok=True)


@needs_sandbox
def test_deleting_a_file_in_artifacts_fails(repo_root):
    canary = repo_root / "artifacts" / f".e2p-redteam-canary-{uuid.uuid4().hex}"
    code = (
        "import os\n"
        f"path = {str(canary)!r}\n"
        "for attempt in (lambda: os.remove(path), lambda: os.rename(path, path + '.moved'),\n"
        "                lambda: open(path, 'w').close()):\n"
        "    try:\n"
        "        attempt()\n"
        "        print('done')\n"
        "    except OSError as e:\n"
        "        print('refused', type(e).__name__)\n"
        f"print({DONE!r})\n"
    )
    canary.write_text("canary")
    try:
        _probe(code)
        assert canary.read_text() == "canary"
        assert not Path(str(canary) + ".moved").exists()
    finally:
        canary.unlink(missing_ok=True)
        Path(str(canary) + ".moved").unlink(missing_ok=True)


# --- the network ------------------------------------------------------------------------------


@needs_sandbox
def test_loopback_listener_sees_no_connection():
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.1)
    port = listener.getsockname()[1]
    peers, stop = [], threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, peer = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            peers.append(peer)
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    code = (
        "import socket\n"
        "for host in ('127.0.0.1', 'localhost', '::1'):\n"
        "    try:\n"
        f"        socket.create_connection((host, {port}), timeout=1).close()\n"
        "        print('connected', host)\n"
        "    except OSError as e:\n"
        "        print('refused', host, type(e).__name__)\n"
        f"print({DONE!r})\n"
    )
    try:
        result = _probe(code)
        time.sleep(0.3)  # let the accepting thread see anything still in the queue
    finally:
        stop.set()
        thread.join(timeout=2)
        listener.close()
    assert peers == []
    assert "connected" not in result.stdout


# --- the server's environment -----------------------------------------------------------------


@needs_sandbox
def test_proc_holds_no_trace_of_the_server_environment(monkeypatch):
    canary = f"e2p-canary-{uuid.uuid4().hex}"
    monkeypatch.setenv("E2P_REDTEAM_CANARY", canary)
    # The probe does not know the canary (it would find it in its own script): it dumps every
    # /proc/*/environ and cmdline it can read, and the test searches the dump.
    code = (
        "import json, os\n"
        "found = {}\n"
        "for pid in os.listdir('/proc'):\n"
        "    if not pid.isdigit():\n"
        "        continue\n"
        "    try:\n"
        "        tasks = os.listdir(f'/proc/{pid}/task')\n"
        "    except OSError:\n"
        "        tasks = []\n"
        "    for base in [f'/proc/{pid}'] + [f'/proc/{pid}/task/{t}' for t in tasks]:\n"
        "        for name in ('environ', 'cmdline'):\n"
        "            try:\n"
        "                with open(f'{base}/{name}', 'rb') as f:\n"
        "                    found[f'{base}/{name}'] = f.read().decode('latin-1')\n"
        "            except OSError:\n"
        "                pass\n"
        "print(json.dumps({'files': found, 'environ': dict(os.environ)}))\n"
        f"print({DONE!r})\n"
    )
    result = _probe(code)
    assert TRUNCATION_NOTE not in result.stdout  # the whole dump came back
    dump = json.loads(result.stdout.splitlines()[0])
    assert "/proc/self/environ" not in dump["files"]  # the walk was over pids
    assert len(dump["files"]) >= 2  # at least its own environ and cmdline were readable
    assert canary not in result.stdout and canary not in result.stderr
    assert "E2P_REDTEAM_CANARY" not in dump["environ"]


@needs_sandbox
def test_runs_as_nobody_without_capabilities_or_server_environment(monkeypatch):
    monkeypatch.setenv("E2P_REDTEAM_CANARY", "server-secret")
    timeout = 2.0
    code = (
        "import json, os, resource as r\n"
        "status = dict(line.split(':\\t', 1) for line in open('/proc/self/status').read().splitlines()\n"
        "              if ':\\t' in line)\n"
        "limits = {name: r.getrlimit(getattr(r, name)) for name in\n"
        "          ('RLIMIT_NPROC', 'RLIMIT_NOFILE', 'RLIMIT_AS', 'RLIMIT_FSIZE', 'RLIMIT_CPU')}\n"
        "print(json.dumps({'ids': [os.getuid(), os.geteuid(), os.getgid(), os.getegid()],\n"
        "                  'groups': os.getgroups(), 'status': status, 'limits': limits,\n"
        "                  'environ': dict(os.environ)}))\n"
        f"print({DONE!r})\n"
    )
    result = _probe(code, timeout=timeout)
    seen = json.loads(result.stdout.splitlines()[0])
    uid = seen["ids"][0]
    # a uid of its own per run where the server is root, else "nobody" in a user namespace
    assert uid in (UID_RANGE if os.geteuid() == 0 else [SANDBOX_UID]) and uid != 0
    assert seen["ids"] == [uid] * 4
    assert all(group == uid for group in seen["groups"]), seen["groups"]
    for cap in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
        assert int(seen["status"][cap].strip(), 16) == 0, (cap, seen["status"][cap])
    assert seen["status"]["NoNewPrivs"].strip() == "1"

    environ = seen["environ"]
    assert "E2P_REDTEAM_CANARY" not in environ and len(environ) <= 10, environ
    generic = {"PATH", "LANG", "LC_ALL", "LC_CTYPE", "PWD"}
    leaked = {k for k, v in environ.items() if os.environ.get(k) == v and k not in generic}
    assert leaked == set(), leaked

    limits = {name: tuple(value) for name, value in seen["limits"].items()}
    infinity = resource.RLIM_INFINITY
    for name, (soft, hard) in limits.items():
        assert soft != infinity and hard != infinity and 0 < soft <= hard, (name, soft, hard)
    assert limits["RLIMIT_AS"][1] <= MEMORY_LIMIT
    assert limits["RLIMIT_FSIZE"][1] <= FILE_SIZE_LIMIT
    assert limits["RLIMIT_NOFILE"][1] <= OPEN_FILES_LIMIT
    assert limits["RLIMIT_CPU"][1] <= math.ceil(timeout) + 2
    if os.geteuid() == 0:  # a uid of its own: the count is the run's alone
        assert limits["RLIMIT_NPROC"][1] <= PROCESS_LIMIT


# --- processes --------------------------------------------------------------------------------


def _live_processes_with(marker: str) -> list[str]:
    """Host processes (zombies aside) whose command line holds `marker`."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):  # exited while we looked
            continue
        if marker.encode() in cmdline and state not in ("Z", "X"):
            shown = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{pid} [{state}] {shown}")
    return found


@needs_sandbox
@pytest.mark.parametrize("ending", ["exits", "times_out"])
def test_children_in_their_own_session_are_gone_when_run_code_returns(ending):
    marker = f"e2p-redteam-{uuid.uuid4().hex}"
    code = (
        "import os, subprocess, sys, time\n"
        f"argv = [sys.executable, '-c', 'import time; time.sleep(60)  # {marker}']\n"
        "children = [subprocess.Popen(argv, start_new_session=True) for _ in range(3)]\n"
        "time.sleep(0.2)\n"
        "print(sum(c.poll() is None and os.getsid(c.pid) == c.pid != os.getsid(0)\n"
        "          for c in children), 'alive in sessions of their own', flush=True)\n"
        f"print({DONE!r}, flush=True)\n" + ("children[0].wait()\n" if ending == "times_out" else "")
    )
    start = time.monotonic()
    result = _probe(code, timeout=1.5)
    elapsed = time.monotonic() - start
    survivors = _live_processes_with(marker)  # right away: "gone when run_code returns"
    assert result.stdout.startswith("3 alive in sessions of their own"), result.stdout
    assert result.timed_out is (ending == "times_out")
    assert elapsed < (3 if ending == "exits" else 4)  # children holding the pipes do not stall it
    assert survivors == []


@needs_sandbox
def test_fork_bomb_is_capped():
    code = (
        "import os, sys, time\n"
        "sys.stdout.flush()\n"
        "forked = 0\n"
        "for _ in range(300):\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except OSError:\n"
        "        continue\n"
        "    if pid == 0:\n"
        "        time.sleep(2)\n"
        "        os._exit(0)\n"
        "    forked += 1\n"
        "print('forked', forked)\n"
        f"print({DONE!r})\n"
    )
    result = run_code(code, timeout=5)
    assert result.isolated is True
    if DONE in result.stdout:
        forked = int(result.stdout.split()[1])
        assert 0 < forked < 300
        if os.geteuid() == 0:
            assert forked < PROCESS_LIMIT
    else:
        assert not result.ok


# --- resources --------------------------------------------------------------------------------


def _resident_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@needs_sandbox
def test_flood_of_files_and_output_leaves_nothing_behind(tmp_path, monkeypatch):
    runs = tmp_path / "runs"  # where run_code's host folder goes, so leftovers are ours alone
    runs.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(runs))
    assert tempfile.gettempdir() == str(runs)
    code = (
        "import os, sys\n"
        "made = 0\n"
        "try:\n"
        "    for i in range(10_000):\n"
        "        open(f'f{i}', 'w').close()\n"
        "        made += 1\n"
        "except OSError as e:\n"
        "    print('stopped', type(e).__name__, file=sys.stderr)\n"
        "print('files', made, len(os.listdir('.')), flush=True)\n"
        "chunk = 'x' * 2**20\n"
        "for _ in range(100):\n"
        "    sys.stdout.write(chunk)\n"
        "sys.stdout.flush()\n"
    )
    before = _resident_bytes()
    start = time.monotonic()
    result = run_code(code, timeout=10)
    elapsed = time.monotonic() - start
    grown = _resident_bytes() - before
    assert result.isolated is True and not result.timed_out and elapsed < 10
    assert result.stdout.startswith("files 10000 10000\n"), result.stdout[:200]
    assert result.stdout.endswith(TRUNCATION_NOTE)  # 100 MB came out, the cap kept little
    assert grown < 100 * 1024**2, f"the server grew by {grown / 1024**2:.0f} MB"
    assert list(runs.iterdir()) == []


@needs_sandbox
@pytest.mark.parametrize(
    "code, sign",
    [
        ("x = bytearray(4 * 1024**3)\nprint('allocated')", "MemoryError"),
        ("while True:\n    pass", None),
        ("print(input('number? '))", "EOFError"),
    ],
    ids=["allocate_4GB", "loop_forever", "input"],
)
def test_exhaustion_ends_within_the_time_limit(code, sign):
    timeout = 2.0
    start = time.monotonic()
    result = run_code(code, timeout=timeout)
    elapsed = time.monotonic() - start
    assert result.isolated is True
    assert not result.ok
    assert elapsed < timeout + 1.5, f"took {elapsed:.1f}s with a {timeout}s limit"
    assert "allocated" not in result.stdout
    if sign is None:
        assert result.timed_out and result.returncode is None
    else:
        assert sign in result.stderr


# --- what must keep working -------------------------------------------------------------------


@needs_sandbox
def test_an_ordinary_program_runs():
    result = run_code("print(6 * 7)")
    assert (result.ok, result.stdout, result.stderr, result.isolated) == (True, "42\n", "", True)


@needs_sandbox
def test_a_program_writes_and_reads_in_its_working_folder():
    result = run_code("with open('notes.txt', 'w') as f:\n" "    f.write('kept')\n" "print(open('notes.txt').read())\n")
    assert result.ok, result.stderr
    assert result.stdout == "kept\n"


@needs_sandbox
def test_the_projects_python_packages_are_importable():
    result = run_code("import numpy\nprint(int(numpy.arange(4).sum()))")
    assert result.ok, result.stderr
    assert result.stdout == "6\n"


# --- secure by default (no bubblewrap needed) -------------------------------------------------


@pytest.fixture
def fresh_status():
    sandbox_status.cache_clear()
    yield
    sandbox_status.cache_clear()  # the next caller probes again, with the environment restored


def _refuses_to_run(marker: Path) -> None:
    status = sandbox_status()
    assert status.available is False and status.reason
    code = f"open({str(marker)!r}, 'w').write('ran')\n"
    with pytest.raises(SandboxUnavailable, match="not run"):
        run_code(code)
    with pytest.raises(SandboxUnavailable):
        sandbox.run_many([code])
    with pytest.raises(SandboxUnavailable):
        sandbox.RunBudget(total=1.0).run(code)
    assert not marker.exists()


def test_switched_off_nothing_runs(tmp_path, monkeypatch, fresh_status):
    monkeypatch.setenv(sandbox.SWITCH, "off")
    _refuses_to_run(tmp_path / "ran.txt")
    assert sandbox.SWITCH in sandbox_status().reason


def test_without_bubblewrap_nothing_runs(tmp_path, monkeypatch, fresh_status):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv(sandbox.SWITCH, raising=False)
    _refuses_to_run(tmp_path / "ran.txt")
    assert "bwrap" in sandbox_status().reason


# --- issue 25: one run cannot hurt the host or another run ------------------------------------


def _syscall_numbers(*names: str) -> dict[str, int]:
    """This machine's syscall numbers, from libseccomp (the probe must not guess them)."""
    import pyseccomp

    return {name: pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name) for name in names}


@needs_sandbox
def test_namespaces_keyrings_io_uring_and_tracing_are_refused():
    numbers = _syscall_numbers(
        "unshare", "setns", "clone", "clone3", "mount", "umount2", "pivot_root", "keyctl", "add_key",
        "request_key", "io_uring_setup", "io_uring_enter", "io_uring_register", "ptrace", "bpf",
        "perf_event_open", "ioctl", "getpid",
    )  # fmt: skip
    # Each call is harmless where it is allowed (bad pointers, bad fds, a pid that does not exist),
    # so the errno tells the filter's EPERM (ENOSYS for clone3) from the kernel's own answer.
    code = (
        "import ctypes, json, os, subprocess, sys\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "libc.syscall.restype = ctypes.c_long\n"
        f"NR = {numbers!r}\n"
        "def call(name, *args):\n"
        "    ctypes.set_errno(0)\n"
        "    res = libc.syscall(ctypes.c_long(NR[name]), *[ctypes.c_long(a) for a in args])\n"
        "    if res == 0 and name == 'clone':\n"
        "        os._exit(0)  # the child of a clone that was allowed\n"
        "    if res > 0 and name == 'clone':\n"
        "        os.waitpid(res, 0)\n"
        "    return 'ok' if res >= 0 else os.strerror(ctypes.get_errno())\n"
        "seen = {\n"
        "    'unshare': call('unshare', 0x10000000 | 0x00020000),  # CLONE_NEWUSER | CLONE_NEWNS\n"
        "    'setns': call('setns', -1, 0),\n"
        "    'clone_newuser': call('clone', 0x10000000 | 17, 0, 0, 0, 0),  # CLONE_NEWUSER | SIGCHLD\n"
        "    'clone_newnet': call('clone', 0x40000000 | 17, 0, 0, 0, 0),\n"
        "    'clone3': call('clone3', 0, 0),\n"
        "    'mount': call('mount', 0, 0, 0, 0, 0),\n"
        "    'umount2': call('umount2', 0, 0),\n"
        "    'pivot_root': call('pivot_root', 0, 0),\n"
        "    'keyctl': call('keyctl', 0, -4, 0),  # KEYCTL_GET_KEYRING_ID of the user keyring\n"
        "    'add_key': call('add_key', 0, 0, 0, 0, 0),\n"
        "    'request_key': call('request_key', 0, 0, 0, 0),\n"
        "    'io_uring_setup': call('io_uring_setup', 1, 0),\n"
        "    'io_uring_enter': call('io_uring_enter', -1, 0, 0, 0, 0, 0),\n"
        "    'io_uring_register': call('io_uring_register', -1, 0, 0, 0),\n"
        "    'ptrace': call('ptrace', 2, 999999, 0, 0),  # PTRACE_PEEKDATA of no process\n"
        "    'bpf': call('bpf', 9999, 0, 0),\n"
        "    'perf_event_open': call('perf_event_open', 0, 0, -1, -1, 0),\n"
        "    'ioctl_tiocsti': call('ioctl', 0, 0x5412, 0),\n"
        "    'ioctl_tiocsti_high_bits': call('ioctl', 0, (1 << 32) | 0x5412, 0),\n"
        "    'ioctl_tioclinux': call('ioctl', 0, 0x541C, 0),\n"
        "}\n"
        "seen['fork'] = 'ok' if os.fork() or os._exit(0) else 'no'\n"
        "seen['ioctl_fionread'] = call('ioctl', 0, 0x541B, 0)\n"
        'x32 = f\'import ctypes; ctypes.CDLL(None).syscall(0x40000000 | {NR["getpid"]}); print("survived")\'\n'
        "child = subprocess.run([sys.executable, '-I', '-c', x32], capture_output=True, text=True)\n"
        "seen['x32'] = [child.returncode, child.stdout.strip()]\n"
        "status = dict(l.split(':', 1) for l in open('/proc/self/status').read().splitlines())\n"
        "seen['seccomp'] = status.get('Seccomp', '').strip()\n"
        "print(json.dumps(seen))\n"
        f"print({DONE!r})\n"
    )
    seen = json.loads(_probe(code).stdout.splitlines()[0])
    eperm, enosys = os.strerror(1), os.strerror(38)
    refused = {name: answer for name, answer in seen.items() if answer == eperm}
    expected = set(seen) - {"clone3", "fork", "ioctl_fionread", "x32", "seccomp"}
    assert set(refused) == expected, {name: seen[name] for name in expected - set(refused)}
    assert seen["clone3"] == enosys  # so that glibc falls back to clone, which the filter can read
    assert seen["fork"] == "ok" and seen["ioctl_fionread"] != eperm  # what programs need still works
    assert seen["x32"] == [-31, ""], seen["x32"]  # a foreign syscall ABI: killed by SIGSYS
    assert seen["seccomp"] == "2"  # SECCOMP_MODE_FILTER


def _host_memory_used() -> int:
    fields = {}
    with open("/proc/meminfo") as f:
        for line in f:
            name, value = line.split(":", 1)
            fields[name] = int(value.split()[0]) * 1024
    return fields["MemTotal"] - fields["MemAvailable"]


@needs_per_run_limits
def test_memory_across_processes_and_memfds_is_capped_for_the_whole_run():
    code = (
        "import os, time\n"
        "MiB = 2**20\n"
        "for _ in range(3):  # 3 x 500 MiB, each under the per-process address-space limit\n"
        "    if os.fork() == 0:\n"
        "        block = b'\\x01' * (500 * MiB)\n"
        "        time.sleep(6)\n"
        "        os._exit(0)\n"
        "chunk, fds = b'\\x02' * MiB, []\n"
        "for i in range(48):  # 768 MiB in memfds, outside any address space\n"
        "    fd = os.memfd_create(f'm{i}')\n"
        "    for _ in range(16):\n"
        "        os.write(fd, chunk)\n"
        "    fds.append(fd)\n"
        "print('held 2.2 GiB', flush=True)\n"
        "time.sleep(3)\n"
        f"print({DONE!r})\n"
    )
    peak, stop = [0], threading.Event()
    before = _host_memory_used()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _host_memory_used() - before)
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = run_code(code, timeout=12)
    finally:
        stop.set()
        sampler.join()
    assert peak[0] < 1.2 * 1024**3, f"the host's memory grew by {peak[0] / 1024**3:.2f} GiB"
    assert result.stopped == "memory limit", (result.stdout[-500:], result.stderr[-500:])
    assert "stopped: memory limit" in result.stderr
    assert not result.ok


@needs_per_run_limits
def test_a_run_holding_processes_does_not_starve_a_concurrent_run():
    hog = (
        "import os, time\n"
        "held = 0\n"
        "for _ in range(60):\n"
        "    try:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(5)\n"
        "            os._exit(0)\n"
        "        held += 1\n"
        "    except OSError:\n"
        "        break\n"
        "print(os.getuid(), held, flush=True)\n"
        "time.sleep(4)\n"
        f"print({DONE!r})\n"
    )
    other = (  # holds its 20 children at once, as a program that starts workers does
        "import os, time\n"
        "forked = 0\n"
        "for _ in range(20):\n"
        "    try:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(1)\n"
        "            os._exit(0)\n"
        "    except OSError:\n"
        "        break\n"
        "    forked += 1\n"
        "print(os.getuid(), forked)\n"
        f"print({DONE!r})\n"
    )
    results = {}
    thread = threading.Thread(target=lambda: results.setdefault("hog", run_code(hog, timeout=8)))
    thread.start()
    time.sleep(1.5)  # the hog holds its 60 processes by now
    results["other"] = _probe(other, timeout=5)
    thread.join()
    hog_uid, held = map(int, results["hog"].stdout.split()[:2])
    other_uid, forked = map(int, results["other"].stdout.split()[:2])
    assert held == 60
    assert forked == 20, f"a concurrent run could fork only {forked} of 20 processes"
    assert hog_uid != other_uid


@needs_per_run_limits
def test_uid_leases_are_shared_by_server_processes(repo_root):
    if os.geteuid() != 0:
        pytest.skip("a uid per run needs a server running as root")

    from e2p.sandbox.uid_lease import leased_uid

    other = "from e2p.sandbox.uid_lease import leased_uid\n" "with leased_uid() as uid:\n" "    print(uid)\n"
    with leased_uid() as mine:
        with leased_uid() as second:
            theirs = subprocess.run(
                [sys.executable, "-c", other], cwd=repo_root, capture_output=True, text=True, check=True
            ).stdout.split()
    assert len({mine, second, int(theirs[0])}) == 3, (mine, second, theirs)
    assert SANDBOX_UID not in (mine, second)


@needs_sandbox
def test_a_run_adds_no_key_and_sees_none_of_an_earlier_run():
    numbers = _syscall_numbers("add_key", "keyctl")
    canary = f"e2p-redteam-{uuid.uuid4().hex}"
    add = (
        "import ctypes, os\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "libc.syscall.restype = ctypes.c_long\n"
        f"key = libc.syscall(ctypes.c_long({numbers['add_key']}), b'user', {canary.encode()!r}, b'secret',\n"
        "                   ctypes.c_long(6), ctypes.c_long(-4))  # KEY_SPEC_USER_KEYRING\n"
        "print('added' if key >= 0 else os.strerror(ctypes.get_errno()))\n"
        f"print({DONE!r})\n"
    )
    look = (
        "import ctypes, os\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "libc.syscall.restype = ctypes.c_long\n"
        "buf = ctypes.create_string_buffer(4096)\n"
        f"n = libc.syscall(ctypes.c_long({numbers['keyctl']}), ctypes.c_long(11), ctypes.c_long(-4), buf,\n"
        "                 ctypes.c_long(4096))  # KEYCTL_READ of the user keyring\n"
        "print('read' if n >= 0 else os.strerror(ctypes.get_errno()))\n"
        "print(open('/proc/keys').read())\n"
        f"print({DONE!r})\n"
    )
    added = _probe(add)
    seen = _probe(look)
    assert added.stdout.splitlines()[0] == os.strerror(1), added.stdout
    assert seen.stdout.splitlines()[0] == os.strerror(1), seen.stdout
    assert canary not in seen.stdout


def _zombies() -> set[str]:
    """Host processes in state Z, as 'pid comm ppid'."""
    found = set()
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            comm, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
            if rest[0] == "Z":
                found.add(f"{pid} {comm} {rest[1]}")
    return found


RUNS_THREE_WAYS = (
    "from e2p.sandbox.runner import run_code\n"
    "run_code('print(1)')\n"
    "run_code('import time; time.sleep(9)', timeout=0.5)\n"
    'run_code(\'import subprocess, sys; subprocess.Popen([sys.executable, "-c", "import time; time.sleep(9)"],\'\n'
    "         ' start_new_session=True)')\n"
)


@needs_sandbox
def test_no_process_of_a_run_is_left_in_any_state(repo_root):

    before = _zombies()
    subprocess.run([sys.executable, "-c", RUNS_THREE_WAYS], cwd=repo_root, check=True, timeout=60)
    time.sleep(0.2)
    left = {z for z in _zombies() - before if " bwrap " in z or " python" in z or " setpriv " in z}
    assert left == set()


@needs_sandbox
def test_a_subreaper_server_is_left_no_zombie(repo_root):

    # The server marks itself a child subreaper (as an init-like supervisor does), runs programs
    # three ways, and lists every process still parented to it, zombies included.
    code = (
        "import ctypes, os, time\n"
        "assert ctypes.CDLL(None).prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER\n"
        + RUNS_THREE_WAYS
        + "time.sleep(0.2)\n"
        "me, left = str(os.getpid()), []\n"
        "for pid in os.listdir('/proc'):\n"
        "    try:\n"
        "        stat = open(f'/proc/{pid}/stat').read()\n"
        "    except OSError:\n"
        "        continue\n"
        "    fields = stat[stat.rindex(')') + 2:].split()\n"
        "    if fields[1] == me:\n"
        "        left.append(stat[:stat.rindex(')') + 3])\n"
        "print(left)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


@needs_per_run_limits
def test_a_flood_of_empty_folders_is_stopped():
    code = (
        "import os, sys\n"
        "made = 0\n"
        "try:\n"
        "    for i in range(150_000):\n"
        "        os.mkdir(f'd{i}')\n"
        "        made += 1\n"
        "except OSError as e:\n"
        "    print('stopped', type(e).__name__, file=sys.stderr)\n"
        "print('made', made)\n"
        f"print({DONE!r})\n"
    )
    result = run_code(code, timeout=8)
    if DONE in result.stdout:
        made = int(result.stdout.split()[1])
        assert made < 100_000, f"{made} folders in the working folder"
    else:
        assert result.stopped, (result.stdout[-500:], result.stderr[-500:])


def _venv_server_sees(python: Path, repo_root: Path) -> list[str]:
    """`sys.prefix` of a server run by `python`, and of a program it runs in the sandbox."""

    code = (
        "import json, sys\n"
        "from e2p.sandbox.runner import run_code\n"
        "result = run_code('import sys; print(sys.prefix)')\n"
        "print(json.dumps([sys.prefix, result.stdout.strip(), result.stderr[-500:]]))\n"
    )
    # The server's own imports come from this interpreter's packages; the run must not need them.
    path = os.pathsep.join([str(repo_root), sysconfig.get_paths()["purelib"]])
    out = subprocess.run(
        [str(python), "-c", code], env={**os.environ, "PYTHONPATH": path}, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.splitlines()[-1])


@needs_sandbox
@pytest.mark.parametrize("parent", ["/tmp", "/var/tmp"])
def test_a_run_uses_the_servers_own_python_in_a_virtualenv(parent, repo_root):

    folder = Path(tempfile.mkdtemp(prefix="e2p-venv-", dir=parent))
    try:
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder / "venv")], check=True)
        server, run, stderr = _venv_server_sees(folder / "venv" / "bin" / "python", repo_root)
        assert server == str(folder / "venv")
        assert run == server, stderr
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@needs_sandbox
def test_a_run_uses_this_servers_python():
    result = run_code("import sys; print(sys.prefix)")
    assert result.stdout.strip() == sys.prefix, result.stderr


@needs_sandbox
def test_pid_1_shows_no_bubblewrap_command_line():
    code = "print(repr(open('/proc/1/cmdline', 'rb').read()))\n" f"print({DONE!r})\n"
    cmdline = _probe(code).stdout.splitlines()[0]
    assert "bwrap" not in cmdline and "--ro-bind" not in cmdline and "--unshare" not in cmdline, cmdline


def test_without_a_seccomp_filter_nothing_runs(tmp_path, monkeypatch, fresh_status):
    from e2p.sandbox import seccomp_filter

    monkeypatch.delenv(sandbox.SWITCH, raising=False)
    monkeypatch.setitem(sys.modules, "pyseccomp", None)  # as where pyseccomp or libseccomp2 is missing
    seccomp_filter.bpf_program.cache_clear()
    try:
        _refuses_to_run(tmp_path / "ran.txt")
        assert "seccomp filter cannot be built" in sandbox_status().reason
        assert "libseccomp2" in sandbox_status().reason
    finally:
        seccomp_filter.bpf_program.cache_clear()


def test_the_limits_said_are_the_limits_that_hold(monkeypatch):
    from e2p.sandbox import run_cgroup

    with_cgroups = sandbox.Isolation(True, run_cgroup.Support(1, ("/sys/fs/cgroup/memory/x", "/sys/fs/cgroup/pids/x")))
    monkeypatch.setattr(sandbox, "isolation", lambda: with_cgroups)
    text = sandbox.describe_limits()
    assert "per run, all its processes together: at most 1 GB of memory" in text
    assert f"{PROCESS_LIMIT} processes" in text and f"{sandbox.WORKDIR_FILES:,} files and folders" in text
    assert "seccomp" in text and "a uid of its own" in text

    without = sandbox.Isolation(False, run_cgroup.Support(0, (), "no cgroup v1 memory and pids hierarchies"))
    monkeypatch.setattr(sandbox, "isolation", lambda: without)
    text = sandbox.describe_limits()
    assert "per run" not in text and "limited per process only" in text
    assert "no cgroup v1 memory and pids hierarchies" in text
    assert f"uid {SANDBOX_UID}" in text and "files and folders" not in text  # no inode cap either


@needs_sandbox
def test_without_a_cgroup_a_run_keeps_its_per_process_limits(monkeypatch):
    from e2p.sandbox import run_cgroup

    real = sandbox.isolation()
    monkeypatch.setattr(
        sandbox, "isolation", lambda: sandbox.Isolation(real.privileged, run_cgroup.Support(0, (), "none here"))
    )
    result = run_code("import resource; print(resource.getrlimit(resource.RLIMIT_AS)[1])")
    assert result.ok and int(result.stdout) == MEMORY_LIMIT
