"""How the generator runs candidates: only in the sandbox, within a budget, or not at all."""

import ast
import json
import subprocess
import sys
import threading
import time
from dataclasses import replace

import pytest
from conftest import run_cli

from e2p.answer import answer_policy
from e2p.answer import generator as generator_module
from e2p.answer.bundle import load_bundle
from e2p.answer.generator import Generator
from e2p.data.retrieval import Retriever
from e2p.model.transformer import Seq2Seq
from e2p.sandbox import runner as sandbox
from e2p.sandbox.runner import RunBudget, RunResult

needs_sandbox = pytest.mark.skipif(
    not sandbox.sandbox_status().available, reason=f"sandbox unavailable: {sandbox.sandbox_status().reason}"
)


@pytest.mark.parametrize("rerank", ["run", "ranker"])
def test_without_a_sandbox_nothing_runs_and_the_user_is_told(tiny_default_artifacts, sandbox_off, rerank, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a program was run without the sandbox")

    monkeypatch.setattr(sandbox, "_run", refuse)
    result = Generator(tiny_default_artifacts).generate("write a function to add two numbers", rerank=rerank, pool=3)
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


def test_evaluation_answers_do_not_depend_on_the_clock(tiny_default_artifacts, monkeypatch):
    """A request's writing ends at WRITE_S; evaluation (time_limit=False) writes to max_len whatever
    the machine's load, so that its figures and samples are reproducible."""

    g = Generator(tiny_default_artifacts)
    prompt = "write a function to add two numbers"
    settings = replace(g.policy.default.decoding, strategy="greedy", examples=1, min_len=5)
    whole = g.generate(prompt, settings, rerank="score", pool=0, fallback=False, attention=False, time_limit=False)
    monkeypatch.setattr(generator_module, "WRITE_S", 0.0)  # a machine so loaded the limit is already past
    cut = g.generate(prompt, settings, rerank="score", pool=0, fallback=False, attention=False)
    assert any("time limit" in w for w in cut.warnings) and len(cut.tgt_tokens) < len(whole.tgt_tokens)
    again = g.generate(prompt, settings, rerank="score", pool=0, fallback=False, attention=False, time_limit=False)
    assert again.tgt_tokens == whole.tgt_tokens and not any("time limit" in w for w in again.warnings)


@pytest.mark.slow  # two CLI processes; the fast tier runs the CLI in the default-answer test below
def test_the_cli_decodes_under_the_syntax_guard(tiny_artifacts):

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


@pytest.mark.parametrize("first_runs", [False, True])
def test_where_nothing_written_runs_the_model_writes_again_with_the_next_example(
    tiny_default_artifacts, monkeypatch, first_runs
):

    g = Generator(tiny_default_artifacts)
    prompt = "write a program to add two numbers"  # asks for no function: any code that runs and prints does it
    written, real_write = [], g._write

    def write(source, *args):  # the tiny model may write nothing: its empty code is never run, so a program stands in
        written.append(source)
        hyps, codes = real_write(source, *args)
        return hyps, [code if code.strip() else "print(5)\n" for code in codes]

    monkeypatch.setattr(g, "_write", write)

    class Runner:  # every candidate of the first writing fails (unless first_runs), every later one runs and prints
        def run(self, code):
            ok = first_runs or len(written) > 1
            return RunResult(returncode=0 if ok else 1, stdout="5\n" if ok else "", stderr="", timed_out=False)

    monkeypatch.setattr(generator_module, "runner_for", lambda rerank, warnings, *a: Runner())
    settings = replace(g.policy.default.decoding, strategy="beam", beam_size=2, n_best=2, examples=3, syntax_guard=True)
    # time_limit off: what is counted here, not a loaded machine's clock
    result = g.generate(prompt, settings, rerank="run", pool=0, fallback=False, time_limit=False)
    second = g.bundle.featurizer.source(prompt, start=1)
    if first_runs:
        assert len(written) == 1 and result.neighbour_prompt == written[0].neighbour.prompt
        return
    assert [s.neighbour for s in written] == [g.bundle.featurizer.source(prompt).neighbour, second.neighbour]
    assert written[0].neighbour != second.neighbour  # stopped after the second: its candidate ran
    assert result.candidates[0].runs is True and result.origin == "model"
    assert result.neighbour_prompt == second.neighbour.prompt  # the example the answer was written with
    assert len(result.candidates) == 4 and [c.runs for c in result.candidates[2:]].count(False) >= 1
    # one example: no second writing
    written.clear()
    g.generate(prompt, replace(settings, examples=1), rerank="run", pool=0, fallback=False)
    assert len(written) == 1


@pytest.mark.parametrize("rerank, pool", [("run", 0), ("ranker", 3)])
def test_a_request_retrieves_once_and_reads_the_answer_once(tiny_default_artifacts, monkeypatch, rerank, pool):
    """The prompt is prepared and its examples retrieved and ranked once, also where the model writes
    again with the next example, and the views (attention maps, token origins) come from one
    teacher-forced pass over the answer."""

    calls = {"nearest": 0, "inspect": 0, "written": 0}

    def counted(name, real):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return real(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(Retriever, "nearest", counted("nearest", Retriever.nearest))
    monkeypatch.setattr(Seq2Seq, "inspect", counted("inspect", Seq2Seq.inspect))
    g = Generator(tiny_default_artifacts)
    monkeypatch.setattr(g, "_write", counted("written", g._write))

    class Failing:  # nothing runs cleanly: the "run" rule writes again with each next example
        def run(self, code):
            return RunResult(returncode=1, stdout="", stderr="", timed_out=False)

    monkeypatch.setattr(generator_module, "runner_for", lambda rerank, warnings, *a: Failing())
    settings = replace(g.policy.default.decoding, strategy="beam", beam_size=2, n_best=2, examples=3, syntax_guard=True)
    result = g.generate(
        "write a function to add two numbers", settings, rerank=rerank, pool=pool, fallback=False, time_limit=False
    )
    assert calls["nearest"] == 1 and calls["inspect"] == 1, calls
    assert calls["written"] == (3 if rerank == "run" else 1)
    assert result.attention  # the maps of that one pass
    assert (result.origins is not None) is (len(result.tgt_tokens) > 1)  # origins too, where it wrote a token


def test_the_default_answer_end_to_end_on_a_tiny_model_configured_like_the_shipped_one(
    tiny_default_artifacts, tmp_path
):
    """`e2p generate --batch` with nothing asked on a model whose policy is the shipped one: every
    answer is the model's own code (no train program, no fallback), and parses (the syntax guard)."""

    default = load_bundle(tiny_default_artifacts).policy.default
    assert (default.rerank, default.pool, default.fallback) == ("run", 0, False)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("write a function to add two numbers\nprint hello world\nwrite a program to add 3 and 5\n")
    out = subprocess.run(
        [sys.executable, "-m", "e2p", "generate", "--batch", str(prompts), "--artifacts", str(tiny_default_artifacts)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == 3
    assert all(row["source"] == "model" and row["parses"] for row in rows), rows
