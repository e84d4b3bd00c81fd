"""Execution agreement (`--rerank agree`): among candidates that run cleanly in the sandbox, the
output most of them print wins."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from e2p.answer.answer_policy import (
    NEAR_WEIGHT,
    Candidate,
    agreement_order,
    closeness,
    consensus,
    nearer,
    rank,
    runner_for,
)
from e2p.answer.sandbox import RunResult, sandbox_status


def rows_of(*cands):
    return [(SimpleNamespace(score=c.score), c.code, c) for c in cands]


def cand(name, score, runs=True, parses=True):
    return Candidate(code=name, score=score, parses=parses, runs=runs)


def test_the_most_shared_output_wins_then_the_model_score():
    rows = rows_of(cand("a", -1.0), cand("b", -0.5), cand("c", -2.0), cand("d", 0.0, runs=False))
    assert agreement_order(rows, ["3", "4", "3", ""]) == [0, 2, 1, 3]


def test_printing_nothing_agrees_with_nothing():
    rows = rows_of(cand("e", -0.1), cand("f", -0.2), cand("g", -0.3))
    assert agreement_order(rows, ["", "", "5"]) == [0, 1, 2]


def test_code_that_does_not_parse_comes_last_whatever_it_shares():
    rows = rows_of(cand("x", 0.0, runs=None, parses=False), cand("y", -3.0))
    assert agreement_order(rows, ["", "1"]) == [1, 0]


class FakeRunner:
    """Stands in for the sandbox's RunBudget in a test of the ordering alone."""

    def __init__(self, outputs):
        self.outputs, self.ran = outputs, []

    def run(self, code):
        self.ran.append(code)
        out = self.outputs[code]
        return RunResult(returncode=1 if out is None else 0, stdout=out or "", stderr="", timed_out=False)


def test_rank_runs_every_parsing_candidate_and_orders_by_agreement():
    codes = ["print(1)\n", "print(2)\n", "print(2 )\n", "print(\n"]
    hyps = [SimpleNamespace(score=s) for s in (-0.1, -0.5, -0.9, 0.0)]
    runner = FakeRunner({codes[0]: "1\n", codes[1]: "2\n", codes[2]: "2\n"})
    ranked = rank("print two", hyps, codes, ["model"] * 4, "agree", runner=runner)
    assert [code for _, code, _ in ranked] == [codes[1], codes[2], codes[0], codes[3]]
    assert runner.ran == codes[:3]  # the one that does not parse never runs
    assert [c.runs for *_, c in ranked] == [True, True, True, None]


def test_run_tries_candidates_by_score_only_until_one_runs():
    codes = ["print(\n", "raise SystemExit(1)\n", "print(3)\n", "print(4)\n", "print(5)\n"]
    hyps = [SimpleNamespace(score=s) for s in (0.0, -0.1, -0.5, -0.3, -0.9)]
    runner = FakeRunner({codes[1]: None, codes[2]: "3\n", codes[3]: None, codes[4]: "5\n"})
    ranked = rank("print three", hyps, codes, ["model"] * 5, "run", runner=runner)
    assert runner.ran == [codes[1], codes[3], codes[2]]  # parsing ones by score; stops at the first clean run
    assert ranked[0][1] == codes[2] and ranked[0][2].runs is True
    assert {code: c.runs for _, code, c in ranked} == {
        codes[0]: None,  # does not parse: never run
        codes[1]: False,
        codes[2]: True,
        codes[3]: False,
        codes[4]: None,  # never needed
    }
    assert [code for _, code, _ in ranked][-1] == codes[0]  # what does not parse comes last


@pytest.mark.skipif(not sandbox_status().available, reason="the sandbox (bubblewrap) cannot isolate here")
def test_agree_runs_in_the_sandbox(tiny_artifacts):
    from e2p.answer.generator import Generator
    from e2p.model.decoding import DecodeSettings

    warnings: list[str] = []
    assert runner_for("agree", warnings) is not None and not warnings
    result = Generator(tiny_artifacts).generate(
        "write a python function to add two numbers",
        DecodeSettings(strategy="beam", beam_size=3, n_best=3, max_len=40),
        rerank="agree",
        pool=0,
    )
    ran = [c for c in result.candidates if c.runs is not None]
    assert ran, "agree must run the candidates that parse"
    assert all(c.parses for c in ran)


def test_consensus_tries_the_candidate_that_shares_most_with_the_others_first():
    # c shares its lines with a and b; d is the model's favourite but shares nothing
    codes = [
        "x = 1\nprint(x)\n",
        "x = 1\ny = 2\nprint(x + y)\n",
        "x = 1\ny = 2\nprint(x)\n",
        "import os\nos.listdir()\n",
    ]
    hyps = [SimpleNamespace(score=s) for s in (-0.4, -0.3, -0.5, -0.1)]
    gains = consensus(codes)
    assert max(range(4), key=gains.__getitem__) == 2 and min(range(4), key=gains.__getitem__) == 3
    runner = FakeRunner({codes[0]: "1\n", codes[1]: "3\n", codes[2]: None, codes[3]: ""})
    ranked = rank("add x and y", hyps, codes, ["model"] * 4, "consensus", runner=runner)
    assert runner.ran == [codes[2], codes[1]]  # by consensus, until one runs cleanly
    assert [code for _, code, _ in ranked][:2] == [codes[1], codes[0]]
    assert ranked[0][2].runs is True and ranked[0][2].score == -0.3  # the model's score is kept
    assert [code for _, code, _ in ranked][-1] == codes[2]  # the one that failed goes last


def test_consensus_of_one_candidate_or_equal_ones_keeps_the_model_order():
    assert consensus(["print(1)\n"]) == [0.0]
    hyps = [SimpleNamespace(score=s) for s in (-0.2, -0.1)]
    codes = ["print(1)\n", "print(1)\n"]
    ranked = rank("print one", hyps, codes, ["model"] * 2, "consensus", runner=None)
    assert [h.score for h, _, _ in ranked] == [-0.1, -0.2]


def test_the_candidate_closest_to_the_followed_example_is_tried_first():
    example = "def add(a, b):\n    return a + b\nprint(add(2, 3))\n"
    codes = [
        "def add(a, b):\n    return a\n",  # the model's favourite left the example
        "def add(a, b):\n    return a + b\nprint(add(2, 3))\n",  # kept to it, but fails in the run below
        "def add(a, b):\n    return a + b\nprint(add(2, 4))\n",
    ]
    hyps = [SimpleNamespace(score=s) for s in (-0.1, -0.3, -0.2)]
    gains = closeness(codes, example)
    assert gains[1] == max(gains) and gains[0] == min(gains)
    runner = FakeRunner({codes[0]: "", codes[1]: None, codes[2]: "6\n"})
    ranked = rank("add two numbers", hyps, codes, ["model"] * 3, "example", runner=runner, example=example)
    assert runner.ran == [codes[1], codes[2]]  # by closeness to the example, until one runs cleanly
    assert [code for _, code, _ in ranked] == [codes[2], codes[0], codes[1]]
    assert ranked[0][2].runs is True and ranked[0][2].score == -0.2  # the model's score is kept


def test_without_an_example_the_example_rule_is_the_run_rule():
    hyps = [SimpleNamespace(score=s) for s in (-0.5, -0.1)]
    codes = ["print(1)\n", "print(2)\n"]
    for example in (None, ""):
        runner = FakeRunner({codes[0]: "1\n", codes[1]: "2\n"})
        ranked = rank("print a number", hyps, codes, ["model"] * 2, "example", runner=runner, example=example)
        assert runner.ran == [codes[1]] and ranked[0][1] == codes[1]


def test_near_nudges_the_model_score_towards_the_followed_example():
    """`near`: the model's score plus NEAR_WEIGHT x closeness: a candidate that keeps to the example
    beats one of a slightly better score that left it, but not one the model clearly prefers."""
    example = "def add(a, b):\n    return a + b\nprint(add(2, 3))\n"
    codes = [
        "def add(a, b):\n    return a\nprint(add(2, 3))\n",  # left the example, best score
        "def add(a, b):\n    return a + b\nprint(add(2, 3))\n",  # kept to it, a hair worse
        "x = 1\nprint(x)\n",  # far from the example, clearly worse
    ]
    close = closeness(codes, example)
    hyps = [SimpleNamespace(score=s) for s in (-0.10, -0.10 - NEAR_WEIGHT * (close[1] - close[0]) / 200, -2.0)]
    assert nearer(hyps, codes, example)[1] > nearer(hyps, codes, example)[0]
    runner = FakeRunner({codes[0]: "", codes[1]: "5\n", codes[2]: "1\n"})
    ranked = rank("add two numbers", hyps, codes, ["model"] * 3, "near", runner=runner, example=example)
    assert runner.ran == [codes[1]] and [code for _, code, _ in ranked] == [codes[1], codes[0], codes[2]]
    # a clear lead of the model's score is kept where the example rule alone would overturn it
    hyps[1] = SimpleNamespace(score=-0.5)
    runner = FakeRunner({codes[0]: "", codes[1]: "5\n", codes[2]: "1\n"})
    assert rank("add two numbers", hyps, codes, ["model"] * 3, "near", runner=runner, example=example)[0][1] == codes[0]
    runner = FakeRunner({codes[0]: "", codes[1]: "5\n", codes[2]: "1\n"})
    assert rank("add", hyps, codes, ["model"] * 3, "example", runner=runner, example=example)[0][1] == codes[1]


def test_output_prefers_a_candidate_that_prints_where_the_example_prints():
    """`output`: where the followed example prints, a candidate that runs cleanly but prints nothing
    (a body cut short, a function never called) gives way to the next one that prints; where none
    prints, the first that ran cleanly is the answer; an example that prints nothing asks for nothing."""
    example = "def add(a, b):\n    return a + b\nprint(add(2, 3))\n"
    codes = [
        "def add(a, b):\n    return a\n",  # runs cleanly, prints nothing
        "print(add(2, 3))\n",  # fails
        "def add(a, b):\n    return a + b\nprint(add(2, 3))\n",
    ]
    hyps = [SimpleNamespace(score=s) for s in (-0.1, -0.2, -0.3)]
    outputs = {codes[0]: "", codes[1]: None, codes[2]: "5\n"}
    runner = FakeRunner(outputs)
    ranked = rank("add two numbers", hyps, codes, ["model"] * 3, "output", runner=runner, example=example)
    assert runner.ran == codes and ranked[0][1] == codes[2] and ranked[0][2].runs is True
    assert [r[1] for r in ranked[1:]] == [codes[0], codes[1]]  # the silent one before the failure
    runner = FakeRunner({**outputs, codes[2]: ""})
    ranked = rank("add two numbers", hyps, codes, ["model"] * 3, "output", runner=runner, example=example)
    assert runner.ran == codes and ranked[0][1] == codes[0]  # none printed: the first that ran cleanly
    runner = FakeRunner(outputs)
    ranked = rank("add", hyps, codes, ["model"] * 3, "output", runner=runner, example="x = 1\n")
    assert runner.ran == [codes[0]] and ranked[0][1] == codes[0]  # like "run"
