"""The sandbox as a runner: results, exit codes, stdin, working folder, limits, output cap.
Hostile programs (escapes, exhaustion, leftovers) are in test_sandbox_redteam.py."""

import os
import tempfile

import pytest
from test_sandbox_redteam import require_sandbox

from e2p.sandbox import runner
from e2p.sandbox.runner import (
    FILE_SIZE_LIMIT,
    OUTPUT_CAP,
    TRUNCATION_NOTE,
    RunResult,
    run_code,
    run_many,
)
from e2p.sandbox.timing import sandbox_timings


@pytest.fixture(autouse=True)
def _sandbox_here() -> None:
    require_sandbox()  # skipped without bubblewrap, failed instead under E2P_REQUIRE_SANDBOX=1


def test_print_program():
    result = run_code("print('hello')\nprint(2 + 3)")
    assert result == RunResult(returncode=0, stdout="hello\n5\n", stderr="", timed_out=False)
    assert result.ok


def test_nonzero_exit_and_exception():
    assert run_code("import sys; sys.exit(3)").returncode == 3
    result = run_code("1 / 0")
    assert result.returncode == 1 and not result.ok and not result.timed_out
    assert "ZeroDivisionError" in result.stderr


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
    runs = tmp_path / "runs"  # the host folder each run uses goes here, so leftovers are visible
    runs.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(runs))
    code = (
        "import os\n"
        "print(sorted(os.listdir('.')))\n"
        "open('out.txt', 'w').write('x')\n"
        "print(sorted(os.listdir('.')))\n"
        "print(os.getcwd())\n"
    )
    for _ in range(2):  # the second run does not see what the first one wrote
        result = run_code(code)
        assert result.ok, result.stderr
        before, after, workdir = result.stdout.splitlines()
        assert before == "[]"  # started empty: not even the script is there
        assert after == "['out.txt']"
        assert workdir != str(tmp_path)
    assert not (tmp_path / "out.txt").exists()  # not the server's working folder
    assert list(runs.iterdir()) == []  # nothing left behind on the host


def test_file_size_limit_binds():
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
        "import os, sys\n" "print(sys.flags.isolated)\n" "print('E2P_SECRET' in os.environ)\n" "import planted\n"
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


def test_sandbox_timings_reports_each_figure():
    timings = sandbox_timings(n=2)  # the figures themselves depend on the machine: not asserted
    assert timings["available"] is True, timings["reason"]
    for key in ("plain_ms", "bwrap_ms", "sandbox_ms", "sandbox_vs_plain", "sandbox_minus_bwrap_ms"):
        assert isinstance(timings[key], float) and timings[key] == timings[key], key  # a number, not NaN
    assert timings["plain_ms"] > 0 and timings["bwrap_ms"] > 0 and timings["sandbox_ms"] > 0


class TestNeedingNoBubblewrap:
    @pytest.fixture(autouse=True)
    def _sandbox_here(self) -> None:
        """These run wherever the tests do."""

    def test_sandbox_timings_without_a_sandbox_says_so(self, monkeypatch):
        monkeypatch.setattr(runner, "sandbox_status", lambda: runner.SandboxStatus(False, "switched off here", "off"))
        timings = sandbox_timings(n=2)
        assert timings["available"] is False and timings["reason"] == "switched off here"
        assert timings["sandbox_ms"] is None and timings["sandbox_vs_plain"] is None

    def test_only_editable_hooks_the_sandbox_cannot_import_from_are_hidden(self, tmp_path, monkeypatch):
        packages, outside, inside = tmp_path / "site-packages", tmp_path / "src", tmp_path / "venv" / "src"
        packages.mkdir()
        for name, source in (("away", outside), ("here", inside)):
            (packages / f"__editable__.{name}-1.0.pth").write_text(
                f"import __editable___{name}_1_0_finder; __editable___{name}_1_0_finder.install()\n"
            )
            (packages / f"__editable___{name}_1_0_finder.py").write_text(
                f"MAPPING: dict[str, str] = {{'{name}': '{source / name}'}}\nNAMESPACES: dict[str, list[str]] = {{}}\n"
            )
        (packages / "__editable__.odd-1.0.pth").write_text(str(outside) + "\n")  # a path line: left alone
        monkeypatch.setattr(runner.site, "getsitepackages", lambda: [str(packages)])
        bound = ((str(packages), str(packages)), (str(tmp_path / "venv"), str(tmp_path / "venv")))
        monkeypatch.setattr(runner, "_python_folders", lambda: bound)
        runner._unreachable_editable_hooks.cache_clear()
        try:
            assert runner._unreachable_editable_hooks() == (str(packages / "__editable__.away-1.0.pth"),)
        finally:
            runner._unreachable_editable_hooks.cache_clear()
