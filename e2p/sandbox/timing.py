"""What a sandbox run costs on this machine: one fixed program, run three ways, alternating so
that machine load hits all three alike.

- `plain_ms`: a plain `python -I -c "print(6 * 7)"` subprocess (no isolation at all);
- `bwrap_ms`: bubblewrap alone, with the flags a sandbox run uses (namespaces, binds and hidden
  editable-install hooks, the seccomp filter), running the same program, without what the runner
  adds around it (uid lease, cgroup, limits, capped working folder, setpriv);
- `sandbox_ms`: a whole run through `runner.run_code`.

Nothing but that constant program of ours ever runs outside the sandbox here.
"""

from __future__ import annotations

import statistics
import subprocess
import time

from . import runner

PROGRAM = "print(6 * 7)"
_EXPECTED = b"42\n"
_WARMUP = 2  # rounds run first and not counted (page cache, first imports)


def sandbox_timings(n: int = 30) -> dict:
    """p50 wall milliseconds of `n` alternating rounds of the three runs, and how they compare.
    Where the sandbox is unavailable: `available` False, the reason, and no figures."""
    status = runner.sandbox_status()
    result: dict = {"available": status.available, "reason": status.reason, "mode": status.mode, "n": n}
    figures = ("plain_ms", "bwrap_ms", "sandbox_ms", "sandbox_vs_plain", "sandbox_minus_bwrap_ms")
    result.update(dict.fromkeys(figures))
    if not status.available:
        return result
    python = runner._interpreter()
    times: dict[str, list[float]] = {"plain_ms": [], "bwrap_ms": [], "sandbox_ms": []}
    runs = {
        "plain_ms": lambda: _plain(python),
        "bwrap_ms": lambda: _bwrap_alone(python),
        "sandbox_ms": lambda: runner.run_code(PROGRAM).stdout.encode(),
    }
    for round_ in range(_WARMUP + max(n, 1)):
        for name, run in runs.items():
            start = time.perf_counter()
            out = run()
            elapsed = 1000 * (time.perf_counter() - start)
            if out != _EXPECTED:
                result["available"] = False
                result["reason"] = f"the {name[:-3]} run printed {out[-200:]!r}, not {_EXPECTED!r}"
                return result
            if round_ >= _WARMUP:
                times[name].append(elapsed)
    for name, values in times.items():
        result[name] = round(statistics.median(values), 1)
    result["sandbox_vs_plain"] = round(result["sandbox_ms"] / result["plain_ms"], 2)
    result["sandbox_minus_bwrap_ms"] = round(result["sandbox_ms"] - result["bwrap_ms"], 1)
    return result


def _plain(python: str) -> bytes:
    done = subprocess.run([python, "-I", "-c", PROGRAM], env={}, cwd="/", stdin=subprocess.DEVNULL, capture_output=True)
    return done.stdout


def _bwrap_alone(python: str) -> bytes:
    """bwrap with the sandbox's own flags (its options end at the first `--`), bubblewrap's own
    tmpfs for the working folder, and the program straight after: no setpriv, no limits."""
    with runner._Fds() as fds:
        script = fds.script(PROGRAM)
        filter_fd = runner._filter_pipe()
        fds.open.add(filter_fd)
        command = runner._command(script, None, runner.SANDBOX_UID, filter_fd)
        command = command[: command.index("--") + 1] + [python, "-I", runner._SCRIPT]
        done = subprocess.run(
            command,
            env={},
            cwd="/",
            stdin=subprocess.DEVNULL,
            capture_output=True,
            pass_fds=(script, filter_fd),
        )
    return done.stdout
