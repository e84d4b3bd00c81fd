"""The functional suite: the task file is well formed, every reference answers its own task in the
sandbox, and wrong answers fail the way the failure table says."""

from __future__ import annotations

import ast
import hashlib
import json

import pytest

from e2p.errors import E2PError
from e2p.evaluation.functional import (
    FAILURES,
    SUITE_PATH,
    Check,
    Outcome,
    Task,
    check_task,
    failure_counts,
    harness,
    held_out,
    load_suite,
    pass_at_1,
    run_suite,
    split_suite,
)
from e2p.sandbox.runner import sandbox_status

SUITE = load_suite()

ADD = Task(
    "test/add",
    "write a python function to add two numbers and return the sum",
    "function",
    checks=(Check((2, 3), 5), Check((-4, 10), 6)),
    reference="def add(a, b):\n    return a + b\n",
)
SWAP = Task(
    "test/swap",
    "write a python function to swap two numbers and return them",
    "function",
    checks=(Check((1, 2), [2, 1]),),
    reference="def swap(a, b):\n    return b, a\n",
)
CIRCLE = Task(
    "test/circle",
    "write a python function to return the area of a circle given its radius",
    "function",
    checks=(Check((1,), 3.14159), Check((2,), 12.56637)),
    reference="import math\n\n\ndef area(r):\n    return math.pi * r * r\n",
)
SUM = Task(
    "test/sum",
    "write a python program to print the sum of 15 and 27",
    "stdout",
    stdout="42",
    reference="print(15 + 27)\n",
)


@pytest.fixture(scope="module")
def sandbox():
    status = sandbox_status()
    if not status.available:
        pytest.skip(status.notice)


# ---------------------------------------------------------------- the suite file


def test_suite_loads_with_enough_tasks_of_both_kinds():
    assert len(SUITE) >= 150
    ids = [t.task_id for t in SUITE]
    assert len(set(ids)) == len(ids)
    kinds = {t.kind for t in SUITE}
    assert kinds == {"function", "stdout"}
    assert split_suite(SUITE, "tune") and split_suite(SUITE, "held-out")


def test_suite_is_in_the_corpus_register_and_well_formed():
    prompts = [t.prompt for t in SUITE]
    assert len(set(prompts)) == len(prompts)
    for task in SUITE:
        assert task.prompt == task.prompt.strip() and task.prompt[0].islower(), task.task_id
        tree = ast.parse(task.reference)
        if task.kind == "function":
            assert task.prompt.startswith("write a python function to"), task.task_id
            assert 2 <= len(task.checks) <= 4, task.task_id
            assert any(isinstance(n, ast.FunctionDef) for n in tree.body), task.task_id
        else:
            assert task.prompt.startswith(("write a python program to", "write a program to")), task.task_id
            assert task.stdout and task.stdout == task.stdout.rstrip(), task.task_id


def test_suite_file_keeps_its_key_order():
    for line in SUITE_PATH.read_text(encoding="utf-8").splitlines():
        obj = json.loads(line)
        middle = "checks" if obj["kind"] == "function" else "stdout"
        assert list(obj) == ["task_id", "prompt", "kind", middle, "reference"]


def test_held_out_is_evals_formula_and_the_halves_partition_the_suite():
    for task in SUITE:
        assert held_out(task.task_id) == (int(hashlib.sha256(task.task_id.encode()).hexdigest(), 16) % 2 == 1)
    tune, held = split_suite(SUITE, "tune"), split_suite(SUITE, "held-out")
    assert {t.task_id for t in tune} | {t.task_id for t in held} == {t.task_id for t in SUITE}
    assert not {t.task_id for t in tune} & {t.task_id for t in held}
    assert split_suite(SUITE, "all") == SUITE
    with pytest.raises(E2PError, match="held-out"):
        split_suite(SUITE, "test")


GOOD_LINE = json.dumps(
    {"task_id": "x/1", "prompt": "p", "kind": "stdout", "stdout": "1", "reference": "print(1)"},
)


@pytest.mark.parametrize(
    "bad",
    [
        "{not json",
        '["a list"]',
        json.dumps({"task_id": "x/2", "prompt": "p", "kind": "script", "stdout": "1", "reference": "print(1)"}),
        json.dumps({"task_id": "x/2", "prompt": "p", "kind": "function", "reference": "def f(): pass"}),
        json.dumps({"task_id": "x/2", "prompt": "p", "kind": "function", "checks": [], "reference": "def f(): pass"}),
        json.dumps(
            {"task_id": "x/2", "prompt": "p", "kind": "function", "checks": [{"args": 1}], "reference": "def f(): 1"}
        ),
        json.dumps({"task_id": "x/2", "prompt": "", "kind": "stdout", "stdout": "1", "reference": "print(1)"}),
        GOOD_LINE,  # the same task_id again
    ],
)
def test_a_malformed_line_is_refused_naming_file_and_line(tmp_path, bad):
    path = tmp_path / "suite.jsonl"
    path.write_text(GOOD_LINE + "\n\n" + bad + "\n", encoding="utf-8")
    with pytest.raises(E2PError) as info:
        load_suite(path)
    message = str(info.value)
    assert str(path) in message and "line 3" in message
    assert message.count(". ") == 0  # one sentence


def test_a_missing_suite_file_is_an_e2p_error(tmp_path):
    with pytest.raises(E2PError, match="cannot read"):
        load_suite(tmp_path / "absent.jsonl")


def test_pass_at_1_and_failure_counts():
    outcomes = [
        Outcome(True),
        Outcome(False, "raised", "NameError"),
        Outcome(False, "raised"),
        Outcome(False, "timeout"),
    ]
    assert pass_at_1(outcomes) == 0.25
    assert pass_at_1([]) == 0.0
    assert failure_counts(outcomes) == {"raised": 2, "timeout": 1}
    assert list(failure_counts(outcomes)) == [k for k in FAILURES if k in ("raised", "timeout")]


def test_the_harness_keeps_only_definitions():
    code = "import math\nK = 2\nx = input()\nprint('hi')\ndef f(a):\n    return a * K\nf(1)\n"
    program = harness(code, ADD)
    assert "input()" not in program and "print('hi')" not in program and "f(1)" not in program
    assert "K = 2" in program and "import math" in program
    assert harness(code, SUM) == code  # a stdout task runs as written


# ---------------------------------------------------------------- in the sandbox


@pytest.mark.slow  # 226 sandbox runs
def test_every_reference_passes_its_own_checks(sandbox):
    outcomes = run_suite([t.reference for t in SUITE], SUITE, timeout=5.0, workers=2)
    failed = [(t.task_id, o.failure, o.detail) for t, o in zip(SUITE, outcomes) if not o.passed]
    assert failed == []
    assert pass_at_1(outcomes) == 1.0


# Wrong (and right) answers, each with the failure it must get; run in one batch to keep the test fast.
CASES = [
    ("right function", ADD.reference, ADD, None, ""),
    ("tuple for a list, float within 1e-3", "def swap(a, b):\n    return (b, a)\n", SWAP, None, ""),
    ("pi to 3.1416", "def area(r):\n    return 3.1416 * r ** 2\n", CIRCLE, None, ""),
    ("right script", SUM.reference, SUM, None, ""),
    ("defined, never called", "def add(a, b):\n    print(a + b)\n", SUM, "defined, never called", ""),
    ("wrong value", "def add(a, b):\n    return a - b\n", ADD, "wrong result", "add(2, 3) returned -1"),
    ("undefined name", "def add(a, b):\n    return a + c\n", ADD, "raised", "NameError"),
    ("undefined name in a script", "print(total)\n", SUM, "raised", "NameError"),
    ("empty", "  \n", ADD, "no code", ""),
    ("does not parse", "def add(a, b)\n    return a + b\n", ADD, "syntax error", "line 1"),
    ("no function", "print(2 + 3)\n", ADD, "no function", ""),
    ("takes other arguments", "def add(numbers):\n    return sum(numbers)\n", ADD, "wrong result", "argument"),
    ("prints nothing", "total = 15 + 27\n", SUM, "printed nothing", ""),
    ("prints the wrong text", "print(15 * 27)\n", SUM, "wrong output", "405"),
    ("a bool is not a number", "def add(a, b):\n    return True\n", ADD, "wrong result", ""),
    ("asks for too much memory", "x = [0] * 10**10\nprint(42)\n", SUM, "memory limit", "MemoryError"),
    (
        "prints a report of its own",
        'def add(a, b):\n    print(\'{"e2p_functional": {"passed": true}}\')\n    return 0\n',
        ADD,
        "wrong result",
        "",
    ),
    ("function loops forever", "def add(a, b):\n    while True:\n        pass\n", ADD, "timeout", ""),
    ("script loops forever", "while True:\n    pass\n", SUM, "timeout", ""),
]


@pytest.fixture(scope="module")
def case_outcomes(sandbox):
    return dict(zip([c[0] for c in CASES], run_suite([c[1] for c in CASES], [c[2] for c in CASES], timeout=1.5)))


@pytest.mark.parametrize("name, failure, detail", [(c[0], c[3], c[4]) for c in CASES], ids=[c[0] for c in CASES])
def test_each_answer_gets_its_failure_kind(case_outcomes, name, failure, detail):
    outcome = case_outcomes[name]
    assert outcome.passed == (failure is None), outcome
    assert outcome.failure == failure, outcome
    assert detail in outcome.detail


def test_top_level_statements_of_a_function_answer_are_not_run(sandbox):
    # Each would fail the run if it ran: a print, a call reading closed stdin, an exit, an endless loop.
    code = (
        "OFFSET = 0\n"
        "def add(a, b):\n"
        "    return a + b + OFFSET\n"
        "print(add(2, 3))\n"
        "n = int(input())\n"
        "raise SystemExit(1)\n"
        "while True:\n"
        "    pass\n"
    )
    outcome = check_task(code, ADD, timeout=3.0)
    assert outcome == Outcome(True, None, "add passed every check")


def test_a_helper_that_fails_does_not_hide_the_answer(sandbox):
    # A helper called with the checks' arguments loops or raises; the function after it answers.
    code = (
        "def helper(a, b):\n    while True:\n        pass\n\n"
        "def noisy(a, b):\n    print('x' * 200000)\n    raise ValueError('no')\n\n"
        "def add(a, b):\n    print('x' * 200000)\n    return a + b\n"
    )
    assert check_task(code, ADD, timeout=3.0).passed


def test_wrong_result_wins_over_a_helpers_error(sandbox):
    code = "def is_small(a, b):\n    return a < 'a'\n\ndef add(a, b):\n    return a * b\n"
    outcome = check_task(code, ADD)
    assert outcome.failure == "wrong result" and "add(2, 3) returned 6, expected 5" in outcome.detail


@pytest.mark.slow  # a CLI process that loads a model and answers three prompts per system
def test_evaluate_functional_reports_every_system_in_one_run(tiny_default_artifacts, tmp_path, sandbox):
    from conftest import run_cli

    suite = tmp_path / "suite.jsonl"
    tasks = [
        {
            "task_id": "t/1",
            "prompt": "write a python function to add two numbers",
            "kind": "function",
            "checks": [{"args": [2, 3], "expected": 5}],
            "reference": "def add(a, b):\n    return a + b\n",
        },
        {
            "task_id": "t/2",
            "prompt": "write a program to print hello",
            "kind": "stdout",
            "stdout": "hello",
            "reference": "print('hello')\n",
        },
        {
            "task_id": "t/3",
            "prompt": "write a python function to double a number",
            "kind": "function",
            "checks": [{"args": [4], "expected": 8}],
            "reference": "def double(n):\n    return 2 * n\n",
        },
    ]
    suite.write_text("".join(json.dumps(t) + "\n" for t in tasks))
    out = tmp_path / "report.json"
    args = [
        "e2p",
        "evaluate",
        "--functional",
        str(suite),
        "--artifacts",
        str(tiny_default_artifacts),
        "--json",
        str(out),
    ]
    proc = run_cli(*args, check=True)
    report = json.loads(out.read_text())
    assert set(report["systems"]) == {"model", "ranker", "retrieval"} and report["n"] == 3
    for name, row in report["systems"].items():
        assert row["passed"] == sum(t["passed"] for t in row["tasks"].values()) <= 3, name
        assert sum(row["failures"].values()) == 3 - row["passed"], name
        assert f"{name}" in proc.stdout
    held = run_cli(*args, "--half", "held-out", check=True)
    assert f"held-out half, {sum(held_out(t['task_id']) for t in tasks)} tasks" in held.stdout
