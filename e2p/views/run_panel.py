"""What the app says about running an answer: a status about running, never about parsing ("ran and
printed 42", "ran but printed nothing: `fib` is defined and never called", "raised NameError on
line 3", "not run: the sandbox is off", "snippet: not run" for an artifact whose answers are snippets),
the run's output and error line, the example the answer followed as a diff, and the limit on the Run
button.

No Streamlit, and nothing runs here: the runs themselves are the sandbox's (`e2p.sandbox.runner`).
"""

from __future__ import annotations

import ast
import difflib
import re
from dataclasses import dataclass

from ..answer.probe import uncalled_functions
from ..constants import SNIPPET_LABEL, SNIPPET_REASON
from ..sandbox.runner import RunResult

# "  File "/home/sandbox/main.py", line 3, in <module>": the last frame in the user's program
_FRAME = re.compile(r'File "[^"]*", line (\d+)')
_EXCEPTION = re.compile(r"^(\w+(?:\.\w+)*(?:Error|Exception|Exit|Interrupt|Warning|Iteration))\b:?\s*(.*)$")
MAX_SHOWN = 2000  # characters of output shown under an answer


@dataclass(frozen=True)
class RunStatus:
    kind: str  # "printed" | "nothing" | "raised" | "stopped" | "not run"
    text: str  # one sentence, plain text (the app escapes it)
    ok: bool  # ran cleanly


@dataclass(frozen=True)
class ErrorLine:
    name: str  # the exception's name, e.g. "NameError"
    message: str
    line: int | None  # the line of the program where it was raised


def error_line(stderr: str) -> ErrorLine | None:
    """The exception a traceback ends with and the program line it came from; None where there is none."""
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    for i in range(len(lines) - 1, -1, -1):
        match = _EXCEPTION.match(lines[i].strip())
        if match:
            frames = _FRAME.findall("\n".join(lines[:i]))
            return ErrorLine(match.group(1), match.group(2).strip(), int(frames[-1]) if frames else None)
    return None


def _never_called(code: str) -> list[str]:
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return []
    return [f.name for f in uncalled_functions(tree)]


def _first_line(text: str, limit: int = 80) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    more = len(text.strip().splitlines()) > 1 or len(first) > limit
    return first[:limit] + ("…" if more else "")


def run_status(
    code: str, run: RunResult | None, sandbox_reason: str = "", budget_spent: bool = False, snippet: bool = False
) -> RunStatus:
    """The status line of an answer's run. `sandbox_reason`: why programs are not run here (empty
    where they are); `budget_spent`: the request's run budget ran out before this answer ran;
    `snippet`: the artifact's answers are snippets, which are not run (its policy's `runs` is false)."""
    if run is None and snippet:
        return RunStatus("not run", f"{SNIPPET_LABEL}: {SNIPPET_REASON}", False)
    if run is None:
        if sandbox_reason:
            return RunStatus("not run", f"not run: the sandbox is off ({sandbox_reason})", False)
        if budget_spent:
            return RunStatus("not run", "not run: the request's time for runs was spent before this code ran", False)
        return RunStatus("not run", "not run: press Run to run it in the sandbox", False)
    if run.stopped:
        return RunStatus("stopped", f"stopped: it went over the sandbox's {run.stopped}", False)
    if run.timed_out:
        return RunStatus("stopped", "stopped: it ran past the sandbox's time limit", False)
    if run.returncode != 0:
        err = error_line(run.stderr)
        if err is None:
            return RunStatus("raised", f"exited with status {run.returncode}", False)
        where = f" on line {err.line}" if err.line else ""
        message = f": {err.message}" if err.message else ""
        return RunStatus("raised", f"raised {err.name}{where}{message}", False)
    if run.stdout.strip():
        return RunStatus("printed", f"ran and printed {_first_line(run.stdout)}", True)
    uncalled = _never_called(code)
    if uncalled:
        names = ", ".join(f"`{name}`" for name in uncalled[:3])
        verb = "is" if len(uncalled) == 1 else "are"
        return RunStatus("nothing", f"ran but printed nothing: {names} {verb} defined and never called", True)
    return RunStatus("nothing", "ran but printed nothing", True)


def run_details(run: RunResult, seconds: float | None = None) -> list[tuple[str, str]]:
    """(label, text) rows under the status: output, the error's first line, exit status, time."""
    rows = []
    if run.stdout.strip():
        out = run.stdout if len(run.stdout) <= MAX_SHOWN else run.stdout[:MAX_SHOWN] + "\n… (cut)"
        rows.append(("output", out.rstrip("\n")))
    err = error_line(run.stderr) if run.returncode not in (0, None) else None
    if err is not None:
        rows.append(
            ("error", f"line {err.line}: {err.name}: {err.message}" if err.line else f"{err.name}: {err.message}")
        )
    status = "killed (time limit)" if run.timed_out else str(run.returncode)
    rows.append(("exit status", status))
    if seconds is not None:
        rows.append(("time", f"{seconds:.2f} s"))
    return rows


def example_diff(example_code: str, answer_code: str) -> str:
    """The answer against the training example it followed, as a unified diff ("" where equal)."""
    diff = difflib.unified_diff(
        example_code.strip("\n").splitlines(),
        answer_code.strip("\n").splitlines(),
        fromfile="training example",
        tofile="answer",
        lineterm="",
    )
    return "\n".join(diff)


class RunLimit:
    """At most `runs` Run-button presses per `window` seconds, per session (`times`: the session's
    press times, kept in its state)."""

    def __init__(self, runs: int = 5, window: float = 60.0):
        self.runs, self.window = runs, window

    def wait(self, times: list[float], now: float) -> float:
        """Seconds until the next run is allowed (0: now)."""
        recent = [t for t in times if now - t < self.window]
        if len(recent) < self.runs:
            return 0.0
        return self.window - (now - min(recent))

    def record(self, times: list[float], now: float) -> list[float]:
        return [t for t in times if now - t < self.window] + [now]

    def refusal(self, wait: float) -> str:
        return (
            f"At most {self.runs} runs a minute: run again in {max(1, round(wait))} s. "
            "(Each run uses the sandbox's time and memory limits.)"
        )
