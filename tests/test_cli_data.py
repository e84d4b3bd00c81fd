"""`python -m e2p data ...` driven as a user would: a real subprocess, stdout, stderr, exit status."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_e2p(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "e2p", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("e2p: error:")
    assert proc.stdout == ""
    return lines[0]


def test_data_stats_on_the_fixture(mini_corpus_path):
    proc = run_e2p("data", "stats", mini_corpus_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    stats = json.loads(lines[0])
    assert isinstance(stats, dict)
    assert stats["headings"] == 22
    assert stats["examples"] == 19
    assert stats["duplicates"] == 1
    assert stats["dropped"] == {"empty_code": 1, "syntax_error": 2}
    assert stats["splits"] == {"train": 16, "valid": 1, "test": 1}


def test_data_dump_test_split(mini_corpus_path, eval_rule):
    _, eval_split = eval_rule
    proc = run_e2p("data", "dump", mini_corpus_path, "--split", "test")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert rows, "the fixture holds one test example"
    for row in rows:
        assert isinstance(row["prompt"], str) and isinstance(row["code"], str)
        assert eval_split(row["prompt"]) == "test"
        compile(row["code"], "<dump>", "exec")
    assert [r["prompt"] for r in rows] == ["Write a Python function to compute the sum of digits of a number:"]
    assert rows[0]["code"] == "def digit_sum(n):\n    return sum(int(d) for d in str(n))"


def _bad_inputs(tmp: Path) -> dict[str, Path]:
    empty = tmp / "empty.txt"
    empty.write_bytes(b"")
    binary = tmp / "corpus.bin"
    binary.write_bytes(b"# write a program\n\x00\x01\x02\xff print(1)\n")
    latin = tmp / "latin1.txt"
    latin.write_bytes("# write a program to print café\nprint('café')\n".encode("latin-1"))
    no_headings = tmp / "code.txt"
    no_headings.write_text("x = 1\nprint(x)\n")
    folder = tmp / "folder"
    folder.mkdir()
    return {
        "missing": tmp / "does-not-exist.txt",
        "empty": empty,
        "binary": binary,
        "non-utf8": latin,
        "directory": folder,
        "no-headings": no_headings,
    }


@pytest.mark.parametrize("kind", ["missing", "empty", "binary", "non-utf8", "directory", "no-headings"])
def test_data_stats_bad_input(tmp_path, kind):
    path = _bad_inputs(tmp_path)[kind]
    line = assert_one_line_error(run_e2p("data", "stats", path))
    assert str(path.name) in line


@pytest.mark.parametrize("kind", ["missing", "binary", "directory"])
def test_data_dump_bad_input(tmp_path, kind):
    assert_one_line_error(run_e2p("data", "dump", _bad_inputs(tmp_path)[kind], "--split", "test"))


@pytest.mark.slow
def test_full_corpus_stats_and_test_dump(full_corpus_path, eval_rule):
    _, eval_split = eval_rule
    stats = json.loads(run_e2p("data", "stats", full_corpus_path).stdout)
    assert stats["examples"] >= 4200
    assert set(stats["splits"]) == {"train", "valid", "test"}
    proc = run_e2p("data", "dump", full_corpus_path, "--split", "test")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(rows) == stats["splits"]["test"] > 100
    assert all(eval_split(row["prompt"]) == "test" for row in rows)


def test_the_model_commands_are_registered():
    from e2p.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert {"data", "generate", "evaluate", "bench"} <= set(sub.choices)


BROKEN_COMMANDS = (  # e2p.commands fails to import, as it would with a dependency missing
    "import sys; sys.modules['e2p.commands'] = None; from e2p.cli import main; sys.exit(main(sys.argv[1:]))"
)


@pytest.mark.parametrize("args", [["generate", "add 2 and 3"], ["evaluate"], ["data", "--help"]])
def test_a_broken_command_module_fails_loudly(args):
    proc = subprocess.run(
        [sys.executable, "-c", BROKEN_COMMANDS, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("e2p: error: the generate, evaluate and bench commands cannot be loaded")
    assert "e2p.commands" in proc.stderr  # names what failed to import


def test_a_removed_rerank_gets_one_line_naming_where_its_figures_went():
    line = assert_one_line_error(run_e2p("generate", "add two numbers", "--rerank", "consensus"))
    assert "measured and not kept" in line and "docs/experiments.md" in line
    assert "invalid choice" not in line


def test_a_missing_corpus_says_where_to_get_it(tmp_path):
    line = assert_one_line_error(run_e2p("data", "stats", tmp_path / "english_python_data.txt"))
    assert "corpus file not found" in line and "senthilva/END" in line and "--data" in line
