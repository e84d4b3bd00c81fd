"""How the answer is chosen among the candidates (`e2p.answer.answer_policy`): the order of each
kept rule, and which candidates run."""

from __future__ import annotations

import argparse
from types import SimpleNamespace

import pytest

from e2p.answer.answer_policy import rank, runner_for
from e2p.commands import rerank_choice
from e2p.constants import EXPERIMENTS_PAGE, REMOVED_RERANKS, RERANKS
from e2p.sandbox.runner import RunResult, sandbox_status


class FakeRunner:
    """Stands in for the sandbox's RunBudget in a test of the ordering alone."""

    def __init__(self, outputs):
        self.outputs, self.ran = outputs, []

    def run(self, code):
        self.ran.append(code)
        out = self.outputs[code]
        return RunResult(returncode=1 if out is None else 0, stdout=out or "", stderr="", timed_out=False)


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


def test_run_prefers_code_that_prints_and_completes_a_function_never_called():
    quiet = "x = 1\n"  # runs cleanly, shows nothing
    add = "def add(a, b):\n    return a + b\n"  # defined, never called: run with a call added
    hyps = [SimpleNamespace(score=s) for s in (0.0, -0.2)]
    completed_add = add + "\nprint(add(15, 27))\n"
    runner = FakeRunner({quiet: "", completed_add: "42\n"})
    ranked = rank("write a python program to add 15 and 27", hyps, [quiet, add], ["model"] * 2, "run", runner=runner)
    assert runner.ran == [quiet, completed_add]  # the quiet one did not stop the search
    first = ranked[0][2]
    assert first.code == add and first.runs and first.shows and first.added == "print(add(15, 27))"
    assert first.run.stdout == "42\n" and ranked[1][2].runs and ranked[1][2].shows is False


def test_an_empty_answer_is_never_chosen_for_running_cleanly():
    """A writing cut off at once (a loaded machine's time limit) leaves empty code: it parses and
    would run cleanly, doing nothing. It is not run, and a program that failed goes before it."""
    fails, empty, comment = "print(1 / 0)\n", "", "# nothing here\n"
    hyps = [SimpleNamespace(score=s) for s in (-0.5, 0.0, -0.1)]
    runner = FakeRunner({fails: None})
    ranked = rank("write a program to print 1 / 0", hyps, [fails, empty, comment], ["model"] * 3, "run", runner=runner)
    assert runner.ran == [fails]
    assert ranked[0][1] == fails and ranked[0][2].runs is False
    assert {code: c.runs for _, code, c in ranked} == {fails: False, empty: None, comment: None}


def test_run_puts_a_function_first_where_the_prompt_asks_for_one():
    script, func = "print(2 + 3)\n", "def add(a, b):\n    return a + b\n"
    hyps = [SimpleNamespace(score=s) for s in (0.0, -0.5)]
    runner = FakeRunner({script: "5\n", func + "\nprint(add(5, 3))\n": "8\n"})
    ranked = rank(
        "write a python function to add two numbers", hyps, [script, func], ["model"] * 2, "run", runner=runner
    )
    assert ranked[0][1] == func and len(runner.ran) == 1  # tried first, and it did what was asked


def test_score_keeps_the_model_order_and_parse_puts_parsing_code_first():
    codes = ["print(\n", "print(2)\n", "print(3)\n"]
    hyps = [SimpleNamespace(score=s) for s in (0.0, -0.5, -0.1)]
    by_score = rank("print", hyps, codes, ["model"] * 3, "score")
    assert [code for _, code, _ in by_score] == codes
    by_parse = rank("print", hyps, codes, ["model"] * 3, "parse")
    assert [code for _, code, _ in by_parse] == [codes[2], codes[1], codes[0]]
    assert all(c.runs is None for *_, c in by_score + by_parse)  # neither runs anything


def test_only_run_and_ranker_run_candidates():
    for rerank in RERANKS:
        warnings: list[str] = []
        runs = runner_for(rerank, warnings) is not None or bool(warnings)
        assert runs is (rerank in ("run", "ranker")), rerank


@pytest.mark.parametrize("removed", REMOVED_RERANKS)
def test_a_removed_choice_says_where_its_figures_went(removed):
    with pytest.raises(argparse.ArgumentTypeError) as err:
        rerank_choice(removed)
    assert "measured and not kept" in str(err.value) and EXPERIMENTS_PAGE in str(err.value)
    assert removed in str(err.value)
    assert set(REMOVED_RERANKS).isdisjoint(RERANKS)


@pytest.mark.skipif(not sandbox_status().available, reason="the sandbox (bubblewrap) cannot isolate here")
def test_run_runs_in_the_sandbox(tiny_default_artifacts):
    from e2p.answer.generator import Generator
    from e2p.model.decoding import DecodeSettings

    result = Generator(tiny_default_artifacts).generate(
        "write a python function to add two numbers",
        DecodeSettings(strategy="beam", beam_size=3, n_best=3, max_len=40, syntax_guard=True),
        rerank="run",
        pool=3,  # the tiny model's own writing may be empty (never run): the pooled programs are programs
    )
    ran = [c for c in result.candidates if c.runs is not None]
    assert ran, "run must run the candidates that parse, best first, until one runs cleanly"
    assert all(c.parses for c in ran)


@pytest.mark.skipif(not sandbox_status().available, reason="the sandbox (bubblewrap) cannot isolate here")
def test_code_that_stops_to_read_the_input_the_prompt_asks_for_is_settled():
    """A sandbox run has no user to type: code that reads the input the prompt asks for ends there
    with EOFError. That is as far as running can show it works, so no second writing replaces it;
    where the prompt asks for no input, the same stop is a failure."""
    from e2p.answer.answer_policy import RunBudget, settled

    reads = 'n = int(input("Enter a number: "))\nprint("even" if n % 2 == 0 else "odd")\n'
    broken = "print(undefined_name)\n"
    hyps = [SimpleNamespace(score=s) for s in (0.0, -0.2)]
    asks = "write a program that reads a number from the user and prints whether it is even or odd"
    ranked = rank(asks, hyps, [reads, broken], ["model"] * 2, "run", runner=RunBudget(None, 2.0))
    first = ranked[0][2]
    assert first.code == reads and first.runs is False and "EOFError" in first.run.stderr
    assert settled(first, asks)
    assert [c.code for _, _, c in ranked if c.runs is not None] == [reads]  # the rest need not run
    plain = "write a program to print whether 7 is even or odd"
    ranked = rank(plain, hyps, [reads, broken], ["model"] * 2, "run", runner=RunBudget(None, 2.0))
    assert not settled(ranked[0][2], plain)


@pytest.mark.skipif(not sandbox_status().available, reason="the sandbox (bubblewrap) cannot isolate here")
def test_a_function_whose_added_call_fails_is_settled_but_not_one_that_fails_itself():
    """The completion rule's call guesses arguments from the prompt: where only that call fails, the
    function the prompt asked for stands (no second writing replaces it); where the model's own
    lines fail, it does not."""
    from e2p.answer.answer_policy import RunBudget, failed_in_the_added_call, settled

    prompt = "write a python function to shout a word"
    shout = "def shout(n):\n    return n.upper() + '!'\n"  # a number is guessed for `n`
    broken = "import no_such_module_here\n\n\ndef shout(text):\n    return text\n"
    ran = {}
    for code, stands in ((shout, True), (broken, False)):
        ranked = rank(prompt, [SimpleNamespace(score=0.0)], [code], ["model"], "run", runner=RunBudget(None, 2.0))
        cand = ran[code] = ranked[0][2]
        assert cand.runs is False  # a number has no .upper(); the import fails
        assert failed_in_the_added_call(cand, prompt) is stands
        assert settled(cand, prompt) is stands
    assert not failed_in_the_added_call(ran[shout], "write a program to shout a word")  # no function asked
    assert not failed_in_the_added_call(ran[shout], "write a python function to shout 5")  # the prompt's value


def test_a_function_that_prints_where_one_that_returns_was_asked_for_is_not_settled():
    """Asked for a function (and not for printing), code whose function prints its answer and returns
    nothing gives a caller nothing: it is ranked below code whose function returns, and is not settled,
    so the model writes again with the next example. Where the prompt asks to print, printing is right."""
    from e2p.answer.answer_policy import settled

    prints = "def is_even(n):\n    print(n % 2 == 0)\n"
    returns = "def is_even(n):\n    return n % 2 == 0\n"
    prompt = "write a python function to check whether a number is even"
    runner = FakeRunner({prints + "\nis_even(5)\n": "False\n", returns + "\nprint(is_even(5))\n": "False\n"})
    hyps = [SimpleNamespace(score=s) for s in (0.0, -0.5)]
    ranked = rank(prompt, hyps, [prints, returns], ["model"] * 2, "run", runner=runner)
    assert ranked[0][2].code == returns and settled(ranked[0][2], prompt)  # the better-scored one ran too
    alone = rank(prompt, hyps[:1], [prints], ["model"], "run", runner=runner)[0][2]
    assert alone.runs and alone.shows and alone.added == "is_even(5)" and not settled(alone, prompt)
    asked_to_print = "write a python function to print whether a number is even"
    alone = rank(asked_to_print, hyps[:1], [prints], ["model"], "run", runner=runner)[0][2]
    assert settled(alone, asked_to_print)


def test_a_class_that_runs_cleanly_is_settled_where_no_function_was_asked_for():
    """A class definition prints nothing by itself: writing again with the next example would replace
    the stack the prompt asked for with that example's program. Asked for a function, it is not settled."""
    from e2p.answer.answer_policy import settled

    stack = "class Stack:\n    def __init__(self):\n        self.items = []\n"
    quiet = "items = [1, 2]\n"
    runner = FakeRunner({stack: "", quiet: ""})
    hyps = [SimpleNamespace(score=0.0)]
    prompt = "write a python program to implement a stack"
    cand = rank(prompt, hyps, [stack], ["model"], "run", runner=runner)[0][2]
    assert cand.runs and not cand.shows and settled(cand, prompt)
    assert not settled(rank(prompt, hyps, [quiet], ["model"], "run", runner=runner)[0][2], prompt)  # no class
    asked = "write a python function to implement a stack"
    assert not settled(rank(asked, hyps, [stack], ["model"], "run", runner=runner)[0][2], asked)
