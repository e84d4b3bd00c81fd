"""Calls for code that only defines functions, so that running it in the sandbox tests more than
its definitions.

A candidate such as `def add(a, b):\n    return a + c` "runs cleanly" as written: nothing calls
`add`, so the name error in its body never happens. `probed` appends one call of each top-level
function the program defines and never calls, with arguments guessed from the parameter names
(a list for `nums`, a string for `text`, a number otherwise), and prints what each returns. A
call that raises `NameError` (an undefined name: wrong whatever the inputs) fails the run; any
other exception is taken as a guessed input of the wrong type and ignored.

Nothing in the shipped answer rule uses it yet (`--rerank agree`, which did, was measured and not
kept: docs/experiments.md); it is kept for judging whether an answer does what was asked. The
probe only ever runs in the sandbox, like every candidate.
"""

from __future__ import annotations

import ast
import re

from ..sandbox.runner import RunBudget, RunResult

_LIST = re.compile(r"(^|_)(l|lst|list\d*|arr\w*|array\w*|nums|numbers|items|elements|data|seq\w*|values|vals)$", re.I)
_STRING = re.compile(r"(^|_)(s|str\d*|string\w*|text|txt|word\w*|sentence\w*|name|char\w*|ch|letter\w*)$", re.I)
_DICT = re.compile(r"(^|_)(d|dic|dict\w*|mapping|counts?)$", re.I)
_NUMBERS = (5, 3, 2, 4, 7, 6)  # distinct small positive ints, one per numeric parameter in turn

CALL_GUARD = "__e2p_probe"  # the probe's own names start with this, so that they clash with nothing


# What the prompt says its values are, for a parameter whose name does not tell ("reverse a string",
# `inp`; "add two matrices", `X` and `Y`)
_PROMPT_KINDS = (
    (re.compile(r"\b(lists?|arrays?)\b", re.I), "[3, 1, 2]"),
    (re.compile(r"\b(strings?|sentences?|words?|text)\b", re.I), "'hello world'"),
    (re.compile(r"\b(dict|dicts|dictionary|dictionaries)\b", re.I), "{'a': 1, 'b': 2}"),
    (re.compile(r"\b(matrix|matrices)\b", re.I), "[[1, 2], [3, 4]]"),
)
_NUMBER_WORDS = re.compile(r"\b(numbers?|integers?|digits?)\b", re.I)
# a number's name: `n`, `num1`, `digit`, and the lower-case letters (`X` is as often a matrix)
_NUMBER_NAME = re.compile(r"(^|_)((?i:n|num\w*|number\w*|int\w*|digit\w*)|[a-c]|[i-n]|[x-z])$")


def guess_argument(name: str, position: int, prompt: str = "") -> str:
    """A literal for a parameter called `name` (the `position`-th of its function). Where the name
    does not tell, the kind of value the prompt names, where it names one kind only and no
    numbers (a string for "reverse a string")."""
    if _LIST.search(name):
        return "[3, 1, 2]"
    if _STRING.search(name):
        return "'hello world'"
    if _DICT.search(name):
        return "{'a': 1, 'b': 2}"
    if not _NUMBER_NAME.search(name):
        kinds = [literal for pattern, literal in _PROMPT_KINDS if pattern.search(prompt)]
        if len(kinds) == 1 and not _NUMBER_WORDS.search(prompt):
            return kinds[0]
    return str(_NUMBERS[position % len(_NUMBERS)])


def uncalled_functions(tree: ast.Module) -> list[ast.FunctionDef]:
    """Top-level functions that no code outside function bodies calls (a call inside another
    function counts only if that function is itself called)."""
    defined = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    if not defined:
        return []
    bodies = {f.name: f for f in defined}
    called, frontier = set(), [n for n in tree.body if not isinstance(n, ast.FunctionDef)]
    while frontier:
        node = frontier.pop()
        for sub in ast.walk(node):
            if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) and sub.func.id in bodies:
                if sub.func.id not in called:
                    called.add(sub.func.id)
                    frontier.append(bodies[sub.func.id])
    return [f for f in defined if f.name not in called]


def _call(func: ast.FunctionDef) -> str | None:
    args = func.args
    if args.posonlyargs or any(d is None for d in args.kw_defaults):
        return None  # keyword-only parameters without defaults: nothing sensible to guess
    required = args.args[: len(args.args) - len(args.defaults)]
    return f"{func.name}({', '.join(guess_argument(a.arg, i) for i, a in enumerate(required))})"


def probed(code: str) -> str | None:
    """`code` with a guarded call of each function it defines and never calls; None where there is
    nothing to call (or the code does not parse): run it as it is."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return None
    calls = [c for f in uncalled_functions(tree) if (c := _call(f)) is not None]
    if not calls:
        return None
    g = CALL_GUARD
    lines = [code.rstrip("\n"), f"for {g}_call in ({', '.join(f'lambda: {c}' for c in calls)},):"]
    lines += [
        "    try:",
        f"        print(repr({g}_call()))",
        "    except NameError:",  # UnboundLocalError is one too
        "        raise",
        "    except BaseException:",
        "        pass",
    ]
    return "\n".join(lines) + "\n"


def run_probed(runner: RunBudget, code: str) -> RunResult | None:
    """`code` run with a call of each function it defines and never calls, so that a body that
    uses an undefined name fails. Where the guessed inputs make the calls run out of time, the
    program is judged as written."""
    probe = probed(code)
    result = runner.run(probe or code)
    if probe is not None and result is not None and result.timed_out:
        result = runner.run(code)
    return result
