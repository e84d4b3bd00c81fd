"""How the generator runs candidates: only in the sandbox, within a budget, or not at all."""

import threading
import time

import pytest

from e2p.answer import answer_policy, sandbox
from e2p.answer.generator import Generator
from e2p.answer.sandbox import RunBudget

needs_sandbox = pytest.mark.skipif(
    not sandbox.sandbox_status().available, reason=f"sandbox unavailable: {sandbox.sandbox_status().reason}"
)


@pytest.mark.parametrize("rerank", ["run", "ranker"])
def test_without_a_sandbox_nothing_runs_and_the_user_is_told(tiny_artifacts, sandbox_off, rerank, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a program was run without the sandbox")

    monkeypatch.setattr(sandbox, "_run", refuse)
    result = Generator(tiny_artifacts).generate("write a function to add two numbers", rerank=rerank, pool=3)
    assert any(w.startswith("programs are not run:") for w in result.warnings)
    assert all(c.runs is None for c in result.candidates)
    assert result.code


@needs_sandbox
def test_a_request_runs_candidates_within_its_total_budget(monkeypatch):
    monkeypatch.setattr(answer_policy, "RUN_BUDGET_S", 1.0)
    runner = answer_policy.runner_for("run", warnings := [])
    assert runner is not None and not warnings
    loops = ["while True:\n    pass\n"] * 5
    hyps = [type("H", (), {"score": 0.0})() for _ in loops]
    started = time.monotonic()
    rows = answer_policy.rank("p", hyps, loops, ["retrieval"] * 5, "run", runner=runner)
    assert time.monotonic() - started < 2.0  # not 5 candidates x 2 s
    assert [c.runs for *_, c in rows].count(False) >= 1
    assert all(c.runs in (False, None) for *_, c in rows)


@needs_sandbox
def test_runs_share_a_process_wide_cap(monkeypatch):
    monkeypatch.setattr(sandbox, "_SLOTS", threading.BoundedSemaphore(1))
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(sandbox.run_code("import time; time.sleep(0.4)")))
        for _ in range(3)
    ]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - started >= 1.2  # one at a time
    assert all(r.ok and r.isolated for r in results)


@needs_sandbox
def test_budget_spent_means_no_more_runs():
    budget = RunBudget(total=0.5, per_run=2.0)
    first = budget.run("while True:\n    pass\n")
    assert first is not None and first.timed_out
    assert budget.run("print(1)") is None


def test_the_cli_decodes_under_the_syntax_guard(tiny_artifacts):
    import ast
    import json

    from conftest import run_cli

    prompts = tiny_artifacts.parent / "prompts.txt"
    prompts.write_text('write a function to add two numbers\nprint the sum of 3 and 4 (\nsort a list "x\\"\n')
    for guard in ("--syntax-guard", "--no-syntax-guard"):
        proc = run_cli(
            "e2p",
            "generate",
            "--batch",
            str(prompts),
            "--artifacts",
            str(tiny_artifacts),
            "--beam",
            "1",
            "--rerank",
            "score",
            "--pool",
            "0",
            "--no-fallback",
            guard,
            check=True,
        )
        rows = [json.loads(line) for line in proc.stdout.splitlines()]
        assert len(rows) == 3
        if guard == "--syntax-guard":
            for row in rows:
                assert row["parses"], row
                ast.parse(row["code"])
