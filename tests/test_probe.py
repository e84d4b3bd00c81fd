"""Probing code that only defines functions: the calls `e2p.answer.probe` adds, and what a run of
them in the sandbox tells apart."""

from __future__ import annotations

import ast

import pytest

from e2p.answer.probe import guess_argument, probed, run_probed, uncalled_functions
from e2p.sandbox.runner import RunBudget, sandbox_status


def test_arguments_are_guessed_from_parameter_names():
    assert guess_argument("nums", 0) == "[3, 1, 2]" and guess_argument("list1", 1) == "[3, 1, 2]"
    assert guess_argument("text", 0) == "'hello world'" and guess_argument("str1", 2) == "'hello world'"
    assert guess_argument("my_dict", 0) == "{'a': 1, 'b': 2}"
    assert guess_argument("a", 0) != guess_argument("b", 1)  # two numbers, not one twice
    assert int(guess_argument("n", 0)) > 0
    # one `num` is a number (the sum of the digits of `num`); `nums` are a list of them
    assert int(guess_argument("num", 0)) > 0 and int(guess_argument("number", 1)) > 0
    assert guess_argument("numbers", 0) == "[3, 1, 2]"


def test_only_functions_nothing_calls_are_probed():
    tree = ast.parse(
        "def helper(x):\n    return x\n"
        "def main(n):\n    return helper(n)\n"
        "def unused(s):\n    return s\n"
        "print(main(3))\n"
    )
    assert [f.name for f in uncalled_functions(tree)] == ["unused"]
    assert probed("x = 2\nprint(x)\n") is None  # nothing defined
    assert probed("def f(a):\n    return a\nprint(f(1))\n") is None  # already called
    assert probed("def f(:\n") is None  # does not parse
    assert probed("def f(a, *, key):\n    return a\n") is None  # nothing sensible to pass


def test_the_probe_keeps_the_program_and_calls_with_defaults_left_out():
    code = "def f(nums, text, k=2):\n    return sorted(nums)[:k]\n"
    probe = probed(code)
    assert probe.startswith(code)
    assert "f([3, 1, 2], 'hello world')" in probe
    assert probed(probe) is None  # the probe calls what it defines: probing it again adds nothing
    ast.parse(probe)


needs_sandbox = pytest.mark.skipif(
    not sandbox_status().available, reason="the bubblewrap sandbox is not available here"
)


@needs_sandbox
def test_a_name_error_in_a_body_fails_and_a_wrong_guess_does_not():
    runner = RunBudget(total=20.0, per_run=5.0)
    broken = "def discount(price, rate):\n    return sp * (1 - rate / 100)\n"
    assert runner.run(broken).ok  # as written, nothing calls it: it "runs"
    assert not run_probed(runner, broken).ok
    typed = "def shout(n):\n    return n.upper()\n"  # a number where it wanted a string: not its fault
    result = run_probed(runner, typed)
    assert result.ok and result.stdout == ""
    fine = "def add(a, b):\n    return a + b\n"
    result = run_probed(runner, fine)
    assert result.ok and result.stdout.strip() == "8"


@needs_sandbox
def test_guessed_inputs_that_never_end_fall_back_to_the_program_as_written():
    runner = RunBudget(total=20.0, per_run=1.0)
    looping = "def collatz(n):\n    while n != 1:\n        n = n\n    return n\n"
    assert run_probed(runner, looping).ok  # the definition itself runs: the probe's timeout says nothing


def test_where_the_name_does_not_tell_the_prompt_says_what_the_value_is():
    assert guess_argument("inp", 0, "write a python function to reverse a string") == "'hello world'"
    assert guess_argument("inp", 0, "write a function to reverse a list") == "[3, 1, 2]"
    assert guess_argument("X", 1, "write a python function to add two matrices") == "[[1, 2], [3, 4]]"
    assert guess_argument("inp", 0, "write a function to sort a list of words").isdigit()  # two kinds
    assert guess_argument("inp", 0, "write a function to reverse a number").isdigit()
    assert guess_argument("n", 0, "write a function to reverse a string").isdigit()  # a number's name
    assert guess_argument("x", 0, "write a function to add two matrices").isdigit()
    assert guess_argument("inp", 0).isdigit()  # no prompt
