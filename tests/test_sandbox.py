import os
import time

from e2p.sandbox import (
    FILE_SIZE_LIMIT,
    MEMORY_LIMIT,
    OUTPUT_CAP,
    TRUNCATION_NOTE,
    RunResult,
    run_code,
    run_many,
)

SPAWN_SLEEPER = (
    "import subprocess, sys\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
    "print(child.pid, flush=True)\n"
)


def _alive(pid: int) -> bool:
    # A killed orphan may linger as a zombie when nothing reaps it in a container.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def _dies_soon(pid: int) -> bool:
    deadline = time.monotonic() + 2  # SIGKILL is delivered asynchronously
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_print_program():
    result = run_code("print('hello')\nprint(2 + 3)")
    assert result == RunResult(returncode=0, stdout="hello\n5\n", stderr="", timed_out=False)
    assert result.ok


def test_nonzero_exit_and_exception():
    assert run_code("import sys; sys.exit(3)").returncode == 3
    result = run_code("1 / 0")
    assert result.returncode == 1 and not result.ok and not result.timed_out
    assert "ZeroDivisionError" in result.stderr


def test_infinite_loop_hits_timeout():
    start = time.monotonic()
    result = run_code("while True:\n    pass", timeout=1)
    assert result.timed_out and result.returncode is None and not result.ok
    assert time.monotonic() - start < 4


def test_timeout_kills_the_whole_process_group():
    start = time.monotonic()
    result = run_code(SPAWN_SLEEPER + "child.wait()", timeout=1)
    assert result.timed_out
    assert time.monotonic() - start < 4
    assert _dies_soon(int(result.stdout))


def test_leftover_child_holding_the_pipes_neither_stalls_nor_survives():
    start = time.monotonic()
    result = run_code(SPAWN_SLEEPER, timeout=5)
    assert result.ok
    assert time.monotonic() - start < 3
    assert _dies_soon(int(result.stdout))


def test_stdin_is_closed():
    # Were our stdin inherited, the code would block reading this pipe that nobody writes.
    read_end, write_end = os.pipe()
    saved_stdin = os.dup(0)
    os.dup2(read_end, 0)
    try:
        reader = run_code("import sys; print(repr(sys.stdin.read()))", timeout=2)
        prompt = run_code("input('number? ')", timeout=2)
    finally:
        os.dup2(saved_stdin, 0)
        for fd in (saved_stdin, read_end, write_end):
            os.close(fd)
    assert reader.stdout == "''\n"
    assert not prompt.timed_out and "EOFError" in prompt.stderr


def test_runs_in_a_fresh_temporary_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_code(
        "import os\n"
        "open('out.txt', 'w').write('x')\n"
        "print(os.getcwd())\n"
        "print(sorted(os.listdir('.')))\n"
    )
    assert result.ok, result.stderr
    workdir, listing = result.stdout.splitlines()
    assert listing == "['out.txt']"  # started empty
    assert os.path.realpath(workdir) != os.path.realpath(tmp_path)
    assert not (tmp_path / "out.txt").exists()
    assert not os.path.exists(workdir)  # removed afterwards


def test_memory_bomb_is_stopped():
    # Without an address-space limit this lazily-zeroed 2 GiB allocation would succeed.
    result = run_code("x = bytearray(2 * 1024**3)\nprint('allocated')")
    assert not result.ok and "MemoryError" in result.stderr
    assert "allocated" not in result.stdout


def test_limits_are_set_inside():
    code = (
        "import resource as r\n"
        "for name in ('RLIMIT_CPU', 'RLIMIT_AS', 'RLIMIT_FSIZE', 'RLIMIT_NPROC'):\n"
        "    print(r.getrlimit(getattr(r, name))[1])\n"
    )
    cpu, address_space, file_size, nproc = map(int, run_code(code, timeout=2).stdout.split())
    assert 0 < cpu <= 4
    assert address_space == MEMORY_LIMIT and file_size == FILE_SIZE_LIMIT
    assert nproc > 0  # finite (RLIM_INFINITY reads as -1)
    big_file = run_code(
        "with open('big', 'wb') as f:\n"
        f"    for _ in range({FILE_SIZE_LIMIT // 2**20 + 1}):\n"
        "        f.write(b'x' * 2**20)\n"
    )
    assert not big_file.ok and "File too large" in big_file.stderr


def test_isolated_from_the_parent_environment(tmp_path, monkeypatch):
    (tmp_path / "planted.py").write_text("print('planted')\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setenv("E2P_SECRET", "leak")
    result = run_code(
        "import os, sys\n"
        "print(sys.flags.isolated)\n"
        "print('E2P_SECRET' in os.environ)\n"
        "import planted\n"
    )
    assert result.stdout == "1\nFalse\n"
    assert "ModuleNotFoundError" in result.stderr


def test_runaway_output_is_capped():
    result = run_code("import sys\nsys.stdout.write('x' * 1_000_000)")
    assert result.ok
    assert result.stdout == "x" * OUTPUT_CAP + TRUNCATION_NOTE


def test_code_that_is_not_valid_text_does_not_crash_the_runner():
    for code in ["print('a')\x00", "print('\ud800')", "\udcff\udcfe"]:
        result = run_code(code, timeout=2)
        assert not result.ok and not result.timed_out and result.stderr


def test_run_many_keeps_order():
    codes = [f"import time; time.sleep({0.2 if i == 0 else 0}); print({i})" for i in range(4)]
    assert [r.stdout for r in run_many(codes, timeout=3)] == [f"{i}\n" for i in range(4)]
    assert run_many([]) == []
