"""The functional suite: everyday tasks in the corpus's register, each judged by running the answer
in the sandbox, as ../shared/EVAL.md ("Functional suite") defines it.

`functional.jsonl` holds one task a line. A **function** task has checks (arguments and the value
expected back): the generated program's top-level imports, function and class definitions and
constant assignments are kept, nothing else (`harness`), and each function it defines is called
with every check's arguments in turn; the task passes when one function passes every check. A
**stdout** task runs the program unchanged as a script; it passes when it exits 0 and its stdout,
lines right-stripped and trailing empty lines dropped, is the expected text.

Every program runs through the project's sandbox (`run_code` / `run_many`), 5 s wall by default;
nothing generated or referenced is executed in this process (it is only parsed here). Each result is
an `Outcome`, whose `failure` says what went wrong in words a failure table can count.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..answer.probe import uncalled_functions
from ..errors import E2PError
from ..sandbox.runner import RunResult, run_many
from ..syntax import literal
from .metrics import normalise_stdout

SUITE_PATH = Path(__file__).with_name("functional.jsonl")
KINDS = ("function", "stdout")
HALVES = ("tune", "held-out", "all")
FAILURES = (
    "no code",
    "syntax error",
    "no function",
    "defined, never called",
    "printed nothing",
    "wrong output",
    "wrong result",
    "raised",
    "timeout",
    "memory limit",
)
MARKER = "e2p_functional"  # the key of the harness's report line
_MARKER_LINE = '{"' + MARKER + '":'
_KEYS = {
    "function": ("task_id", "prompt", "kind", "checks", "reference"),
    "stdout": ("task_id", "prompt", "kind", "stdout", "reference"),
}
_DETAIL_LIMIT = 200


@dataclass(frozen=True)
class Check:
    args: tuple  # positional arguments, JSON values (a tuple is written as a list)
    expected: object


@dataclass(frozen=True)
class Task:
    task_id: str
    prompt: str
    kind: str  # "function" or "stdout"
    checks: tuple[Check, ...] = ()  # function tasks
    stdout: str | None = None  # stdout tasks: the expected text
    reference: str = ""  # a correct answer, written with the task


@dataclass(frozen=True)
class Outcome:
    passed: bool
    failure: str | None = None  # None when passed, else one of FAILURES
    detail: str = ""


# ---------------------------------------------------------------- the suite file


def load_suite(path: str | Path = SUITE_PATH) -> list[Task]:
    """Every task of the suite file; a line that is not a well-formed task stops the load."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise E2PError(f"cannot read the functional suite {path}: {getattr(e, 'strerror', None) or e}") from None
    tasks: list[Task] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            task = _parse_task(line)
            if task.task_id in seen:
                raise ValueError(f"task_id {task.task_id!r} is used by an earlier line")
        except ValueError as e:
            raise E2PError(f"{path} line {number} is not a valid functional task: {e}") from None
        seen.add(task.task_id)
        tasks.append(task)
    return tasks


def _need(condition: bool, why: str) -> None:
    if not condition:
        raise ValueError(why)


def _parse_task(line: str) -> Task:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise ValueError(f"not valid JSON ({e.msg} at column {e.colno})") from None
    _need(isinstance(obj, dict), "not a JSON object")
    _need(obj.get("kind") in KINDS, f"'kind' must be one of {', '.join(KINDS)}")
    keys = _KEYS[obj["kind"]]
    _need(set(obj) == set(keys), f"a {obj['kind']} task has exactly the keys {', '.join(keys)}")
    for key in ("task_id", "prompt", "reference"):
        _need(isinstance(obj[key], str) and obj[key].strip() != "", f"'{key}' must be a non-empty string")
    if obj["kind"] == "stdout":
        _need(isinstance(obj["stdout"], str), "'stdout' must be a string")
        return Task(obj["task_id"], obj["prompt"], "stdout", stdout=obj["stdout"], reference=obj["reference"])
    checks = obj["checks"]
    _need(isinstance(checks, list) and checks != [], "'checks' must be a non-empty list")
    for check in checks:
        _need(
            isinstance(check, dict) and set(check) == {"args", "expected"} and isinstance(check["args"], list),
            'each check must be {"args": [...], "expected": ...}',
        )
    parsed = tuple(Check(tuple(c["args"]), c["expected"]) for c in checks)
    return Task(obj["task_id"], obj["prompt"], "function", checks=parsed, reference=obj["reference"])


def held_out(task_id: str) -> bool:
    """EVAL.md's fixed held-out half: never tune on these."""
    return int(hashlib.sha256(task_id.encode()).hexdigest(), 16) % 2 == 1


def split_suite(tasks: list[Task], half: str) -> list[Task]:
    """The tasks of one half: "tune", "held-out" or "all"."""
    if half not in HALVES:
        raise E2PError(f"unknown half of the functional suite {half!r}: use one of {', '.join(HALVES)}")
    if half == "all":
        return list(tasks)
    return [t for t in tasks if held_out(t.task_id) == (half == "held-out")]


# ---------------------------------------------------------------- the harness

# Runs inside the sandbox. The kept definitions run in a module of their own, so that no name of
# the harness can clash with the program's. The program's own output goes to /dev/null (fd 1 is
# redirected, so prints, sys.__stdout__ and child processes alike), and the report goes to a copy
# of the original fd 1: it is the only thing on stdout and cannot be pushed past the output cap.
_HARNESS = r'''
import copy
import json
import math
import numbers
import os
import signal
import sys
import types

SOURCE = __SOURCE__
NAMES = __NAMES__
CHECKS = json.loads(__CHECKS__)
BUDGET = __BUDGET__  # seconds for defining, and for each function's checks


class OutOfTime(BaseException):
    pass


def on_alarm(signum, frame):
    raise OutOfTime()


def same(got, want):
    if isinstance(want, bool):
        return type(got).__name__ in ("bool", "bool_") and bool(got) == want
    if isinstance(want, (int, float)):
        if isinstance(got, bool) or not isinstance(got, numbers.Real):
            return False
        if isinstance(got, int) and isinstance(want, int):
            return got == want
        return math.isclose(float(got), float(want), rel_tol=1e-3, abs_tol=1e-3)
    if want is None:
        return got is None
    if isinstance(want, str):
        return isinstance(got, str) and got == want
    if isinstance(want, list):
        if hasattr(got, "tolist") and not isinstance(got, (list, tuple)):
            got = got.tolist()
        return isinstance(got, (list, tuple)) and len(got) == len(want) and all(map(same, got, want))
    if isinstance(want, dict):
        return isinstance(got, dict) and set(got) == set(want) and all(same(got[k], want[k]) for k in want)
    return got == want


def show(value, limit=60):
    try:
        text = repr(value)
    except BaseException:
        text = "<unprintable>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def raised(error, where):
    try:
        message = str(error)
    except BaseException:
        message = ""
    message = message if len(message) <= 80 else message[:77] + "..."
    return "raised", type(error).__name__ + (": " + message if message else "") + ", in " + where


def takes(fn, count):
    """Whether fn can be called with `count` positional arguments (from its code: importing inspect
    would cost every run more time than all the checks)."""
    code = getattr(fn, "__code__", None)
    if code is None or not isinstance(getattr(fn, "__defaults__", None), (tuple, type(None))):
        return True
    positional, defaults = code.co_argcount, len(fn.__defaults__ or ())
    keyword_only = code.co_varnames[positional : positional + code.co_kwonlyargcount]
    if any(name not in (fn.__kwdefaults__ or {}) for name in keyword_only):
        return False
    return positional - defaults <= count and (count <= positional or bool(code.co_flags & 0x04))  # *args


def run_checks(name, fn):
    for check in CHECKS:
        args, want = check["args"], check["expected"]
        call = name + "(" + ", ".join(show(a, 30) for a in args) + ")"
        if not takes(fn, len(args)):
            return "arity", name + " does not take " + str(len(args)) + " argument(s)"
        try:
            got = fn(*copy.deepcopy(args))
            if type(got).__name__ == "coroutine":  # an async def
                import asyncio

                got = asyncio.run(got)
            ok = same(got, want)
        except OutOfTime:
            raise
        except BaseException as error:
            return raised(error, call)
        if not ok:
            return "wrong", call + " returned " + show(got) + ", expected " + show(want)
    return "passed", ""


def try_function(name, fn):
    signal.setitimer(signal.ITIMER_REAL, BUDGET)
    try:
        return run_checks(name, fn)
    except OutOfTime:
        return "timeout", name + " ran past its " + format(BUDGET, ".1f") + " s"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def verdict(results):
    """The failure to report where no function passed: a wrong value says most, then an error."""
    for status, failure in (("wrong", "wrong result"), ("raised", "raised"), ("timeout", "timeout")):
        for got, detail in results:
            if got == status:
                return failure, detail
    if results:  # every function takes other arguments than the checks give
        return "wrong result", "; ".join(detail for _, detail in results[:3])
    return "no function", "the program defines no function that can be called"


def evaluate():
    module = types.ModuleType("e2p_generated")
    sys.modules[module.__name__] = module
    signal.setitimer(signal.ITIMER_REAL, BUDGET)
    try:
        exec(compile(SOURCE, "<generated>", "exec"), module.__dict__)
    except OutOfTime:
        return {"passed": False, "function": None, "tried": [], "failure": "timeout", "error": "defining ran too long"}
    except BaseException as error:
        status, detail = raised(error, "the definitions")
        return {"passed": False, "function": None, "tried": [], "failure": status, "error": detail}
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    tried, results = [], []
    for name in NAMES:
        fn = module.__dict__.get(name)
        if not callable(fn):
            continue
        tried.append(name)
        status, detail = try_function(name, fn)
        if status == "passed":
            return {"passed": True, "function": name, "tried": tried, "failure": None, "error": None}
        results.append((status, detail))
    failure, detail = verdict(results)
    return {"passed": False, "function": None, "tried": tried, "failure": failure, "error": detail}


def main():
    report_fd = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    signal.signal(signal.SIGALRM, on_alarm)
    result = evaluate()
    line = "\n" + json.dumps({"e2p_functional": result}) + "\n"
    os.write(report_fd, line.encode("utf-8"))


main()
'''


def _parse(code: str) -> tuple[ast.Module | None, str]:
    """The program's tree, or None and why it does not parse."""
    try:
        return ast.parse(code), ""
    except SyntaxError as e:
        return None, f"line {e.lineno}: {e.msg}"
    except (ValueError, RecursionError, MemoryError) as e:  # null bytes; absurdly deep nesting
        return None, f"{type(e).__name__}: {e}"[:_DETAIL_LIMIT]


def _is_constant(node: ast.expr) -> bool:
    return literal(node)[0]


def _names_only(target: ast.expr) -> bool:
    if isinstance(target, (ast.Tuple, ast.List)):
        return all(_names_only(t) for t in target.elts)
    return isinstance(target, ast.Name)


def _kept(node: ast.stmt) -> bool:
    """A top-level statement that a function task runs: it defines something and does nothing else."""
    if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return True
    if isinstance(node, ast.Assign):
        return all(_names_only(t) for t in node.targets) and _is_constant(node.value)
    if isinstance(node, ast.AnnAssign):
        return isinstance(node.target, ast.Name) and node.value is not None and _is_constant(node.value)
    return False


def _function_names(tree: ast.Module) -> list[str]:
    """Top-level functions in the order they are first defined (a redefinition replaces, so try once)."""
    names = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return list(dict.fromkeys(names))


def harness(code: str, task: Task, timeout: float = 5.0) -> str:
    """The program that judges `code` for `task`: for a stdout task the code itself; for a function task
    its definitions, then every check against each function, reported on a marker line. Raises
    SyntaxError (or ValueError) where the code does not parse."""
    if task.kind == "stdout":
        return code
    tree = ast.parse(code)
    names = _function_names(tree)
    kept = ast.Module(body=[n for n in tree.body if _kept(n)], type_ignores=[])
    checks = [{"args": list(c.args), "expected": c.expected} for c in task.checks]
    # Each function gets a share of the run's time, so that one helper that loops forever on the
    # checks' arguments (an `is_prime` called with a list) does not hide the function that answers.
    budget = max(0.25, 0.8 * timeout / max(1, len(names)))
    values = {
        "__SOURCE__": repr(ast.unparse(kept)),
        "__NAMES__": repr(names),
        "__CHECKS__": repr(json.dumps(checks)),
        "__BUDGET__": repr(round(budget, 3)),
    }
    # One pass, so that a placeholder's name inside the program's own text is left alone.
    return re.sub(r"__(SOURCE|NAMES|CHECKS|BUDGET)__", lambda m: values[m.group(0)], _HARNESS)


# ---------------------------------------------------------------- judging


@dataclass(frozen=True)
class _Plan:
    outcome: Outcome | None  # judged without running
    program: str | None = None  # else what to run
    tree: ast.Module | None = None


def _plan(code: str, task: Task, timeout: float) -> _Plan:
    if not code.strip():
        return _Plan(Outcome(False, "no code", "the program is empty"))
    tree, why = _parse(code)
    if tree is None:
        return _Plan(Outcome(False, "syntax error", why))
    if task.kind == "function" and not _function_names(tree):
        return _Plan(Outcome(False, "no function", "the program defines no top-level function"))
    try:
        program = harness(code, task, timeout)
    except (ValueError, RecursionError, MemoryError) as e:  # ast.unparse of an absurdly deep tree
        return _Plan(Outcome(False, "syntax error", f"{type(e).__name__}: {e}"[:_DETAIL_LIMIT]))
    return _Plan(None, program, tree)


def _error_line(result: RunResult) -> str:
    """The exception a failed run ended with ("NameError: name 'c' is not defined"), else its exit status."""
    for line in reversed(result.stderr.splitlines()):
        if re.match(r"^[A-Za-z_][\w.]*(: |$)", line.strip()):
            return line.strip()[:_DETAIL_LIMIT]
    return f"exit status {result.returncode}"


def _raised(detail: str) -> Outcome:
    # The sandbox caps each process's address space, so a program that asks for too much usually
    # gets a MemoryError rather than being killed: count it with the runs stopped at the limit.
    if detail.startswith("MemoryError"):
        return Outcome(False, "memory limit", detail)
    return Outcome(False, "raised", detail)


def _stopped(result: RunResult) -> Outcome | None:
    if result.stopped == "memory limit":
        return Outcome(False, "memory limit", "stopped at the sandbox's memory limit")
    if result.timed_out:
        return Outcome(False, "timeout", "ran past the wall-time limit")
    return None


def _report(stdout: str) -> dict | None:
    """The harness's report: its last marker line."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(_MARKER_LINE):
            try:
                report = json.loads(line)[MARKER]
            except (ValueError, KeyError, TypeError):
                return None
            return report if isinstance(report, dict) else None
    return None


def _judge_function(result: RunResult) -> Outcome:
    report = _report(result.stdout)
    if report is None:
        return _stopped(result) or _raised(_error_line(result))
    if report.get("passed") is True:
        return Outcome(True, None, f"{report.get('function')} passed every check")
    failure, detail = report.get("failure"), str(report.get("error") or "")[:_DETAIL_LIMIT]
    return _raised(detail) if failure == "raised" or failure not in FAILURES else Outcome(False, failure, detail)


def _never_calls(tree: ast.Module) -> bool:
    """The program defines functions and calls none of them (the corpus's commonest empty answer)."""
    defined = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    return bool(defined) and len(uncalled_functions(tree)) == len(defined)


def _first_difference(got: str, want: str) -> str:
    got_lines, want_lines = got.split("\n"), want.split("\n")
    for i in range(max(len(got_lines), len(want_lines))):
        g = got_lines[i] if i < len(got_lines) else None
        w = want_lines[i] if i < len(want_lines) else None
        if g != w:
            return f"line {i + 1}: printed {g!r:.60}, expected {w!r:.60}"
    return "output differs"


def _judge_stdout(result: RunResult, tree: ast.Module, task: Task) -> Outcome:
    stopped = _stopped(result)
    if stopped:
        return stopped
    if result.returncode != 0:
        return _raised(_error_line(result))
    got, want = normalise_stdout(result.stdout), normalise_stdout(task.stdout or "")
    if got == want:
        return Outcome(True, None, "printed the expected text")
    if not got:
        if _never_calls(tree):
            return Outcome(False, "defined, never called", "the program defines a function and never calls it")
        return Outcome(False, "printed nothing", "the program printed nothing")
    return Outcome(False, "wrong output", _first_difference(got, want))


def run_suite(codes: list[str], tasks: list[Task], timeout: float = 5.0, workers: int = 2) -> list[Outcome]:
    """One Outcome per (code, task), in order; the programs run in the sandbox, `workers` at a time.
    Raises SandboxUnavailable where programs cannot run isolated."""
    if len(codes) != len(tasks):
        raise ValueError(f"{len(codes)} programs for {len(tasks)} tasks")
    plans = [_plan(code, task, timeout) for code, task in zip(codes, tasks)]
    results = iter(run_many([p.program for p in plans if p.program is not None], timeout, workers))
    outcomes = []
    for plan, task in zip(plans, tasks):
        if plan.outcome is not None:
            outcomes.append(plan.outcome)
        elif task.kind == "function":
            outcomes.append(_judge_function(next(results)))
        else:
            outcomes.append(_judge_stdout(next(results), plan.tree, task))
    return outcomes


def check_task(code: str, task: Task, timeout: float = 5.0) -> Outcome:
    """Whether `code` answers `task`, run in the sandbox."""
    return run_suite([code], [task], timeout, workers=1)[0]


def pass_at_1(outcomes: list[Outcome]) -> float:
    """Share of tasks passed with one generation each (0.0 for none)."""
    return sum(o.passed for o in outcomes) / len(outcomes) if outcomes else 0.0


def failure_counts(outcomes: list[Outcome]) -> dict[str, int]:
    """How many outcomes failed each way, in FAILURES order, kinds that never happened left out."""
    counts = Counter(o.failure for o in outcomes if not o.passed)
    return {kind: counts[kind] for kind in FAILURES if counts[kind]}
