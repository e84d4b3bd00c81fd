"""What the app says about an answer's run (e2p.views.run_panel): a status about running, the
error's line, the example diff and the Run button's limit. Nothing runs here: the runs are made up."""

from __future__ import annotations

import pytest

from e2p.sandbox.runner import RunResult
from e2p.views.run_panel import RunLimit, error_line, example_diff, run_details, run_status

TRACEBACK = """Traceback (most recent call last):
  File "/home/sandbox/main.py", line 3, in <module>
    print(total)
          ^^^^^
NameError: name 'total' is not defined
"""


def ran(out="", err="", code=0, timed_out=False, stopped=""):
    return RunResult(returncode=code, stdout=out, stderr=err, timed_out=timed_out, stopped=stopped)


@pytest.mark.parametrize(
    "code, run, reason, kind, text",
    [
        ("print(42)\n", ran("42\n"), "", "printed", "ran and printed 42"),
        ("print(1)\nprint(2)\n", ran("1\n2\n"), "", "printed", "ran and printed 1…"),
        (
            "def fib(n):\n    return n\n",
            ran(""),
            "",
            "nothing",
            "ran but printed nothing: `fib` is defined and never called",
        ),
        ("x = 1\n", ran(""), "", "nothing", "ran but printed nothing"),
        (
            "x=1\nprint(total)\n",
            ran(err=TRACEBACK, code=1),
            "",
            "raised",
            "raised NameError on line 3: name 'total' is not defined",
        ),
        (
            "while True: pass\n",
            ran(code=None, timed_out=True),
            "",
            "stopped",
            "stopped: it ran past the sandbox's time limit",
        ),
        (
            "x = [0] * 10**10\n",
            ran(code=None, stopped="memory limit"),
            "",
            "stopped",
            "stopped: it went over the sandbox's memory limit",
        ),
        (
            "print(1)\n",
            None,
            "bubblewrap is not installed",
            "not run",
            "not run: the sandbox is off (bubblewrap is not installed)",
        ),
    ],
)
def test_each_status_kind(code, run, reason, kind, text):
    status = run_status(code, run, reason)
    assert (status.kind, status.text) == (kind, text)
    assert status.ok is (kind in ("printed", "nothing"))


def test_a_run_never_made_says_why():
    assert "time for runs was spent" in run_status("print(1)\n", None, "", budget_spent=True).text
    assert "press Run" in run_status("print(1)\n", None).text


def test_error_line_takes_the_last_exception_and_its_frame():
    err = error_line(TRACEBACK)
    assert (err.name, err.line, err.message) == ("NameError", 3, "name 'total' is not defined")
    assert error_line("") is None and error_line("just text\n") is None
    exit_only = error_line('Traceback (most recent call last):\n  File "m.py", line 9, in <module>\nSystemExit: 2\n')
    assert exit_only.name == "SystemExit" and exit_only.line == 9


def test_run_details_show_output_error_status_and_time():
    rows = dict(run_details(ran("42\n"), 0.123))
    assert rows == {"output": "42", "exit status": "0", "time": "0.12 s"}
    failed = dict(run_details(ran(err=TRACEBACK, code=1)))
    assert failed["error"] == "line 3: NameError: name 'total' is not defined" and failed["exit status"] == "1"
    assert dict(run_details(ran(code=None, timed_out=True)))["exit status"] == "killed (time limit)"
    assert dict(run_details(ran("x" * 5000)))["output"].endswith("… (cut)")


def test_example_diff_shows_what_the_model_changed():
    example = "def add(a, b):\n    return a + b\n"
    answer = "def add(a, b):\n    return a - b\n"
    diff = example_diff(example, answer)
    assert "--- training example" in diff and "+++ answer" in diff
    assert "-    return a + b" in diff and "+    return a - b" in diff
    assert example_diff(example, example) == ""


def test_the_run_limit_allows_a_few_runs_a_minute():
    limit, times = RunLimit(runs=2, window=60.0), []
    for now in (0.0, 1.0):
        assert limit.wait(times, now) == 0.0
        times = limit.record(times, now)
    assert limit.wait(times, 2.0) == pytest.approx(58.0)
    assert "At most 2 runs a minute" in limit.refusal(58.0)
    assert limit.wait(times, 61.0) == 0.0  # the first press left the window
