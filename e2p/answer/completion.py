"""A completion step, by rule: where a program defines a function and never calls it, add one call
with values from the prompt, printed, so that the program shows what it does.

"write a python function to add 15 and 27" often gets `def add(a, b): return a + b` and nothing
else: it runs cleanly and prints nothing. `completed` appends `print(add(15, 27))`: the prompt's
numbers where the function takes as many, else its quoted string or list, else values guessed from
the parameter names, or where a name does not tell, from the kind of value the prompt names (`inp`
in "reverse a string": a string; `probe.guess_argument`). A function that prints rather than
returns is called without `print`. The line is the rule's, not the model's: the app marks it so,
and it is kept only where the completed program ran cleanly in the sandbox.
"""

from __future__ import annotations

import ast
import re

from ..data.placeholders import abstract_prompt
from .probe import guess_argument, uncalled_functions

_LIST = re.compile(r"\[[^\[\]\n]{0,200}\]")
# Top-level statements that do nothing visible: a program made only of these shows nothing.
_QUIET = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign)


def _quiet(node: ast.stmt) -> bool:
    if isinstance(node, _QUIET):
        return True
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)  # a docstring


def _returns_value(func: ast.FunctionDef) -> bool:
    return any(isinstance(n, ast.Return) and n.value is not None for n in ast.walk(func))


def _reads_input(func: ast.FunctionDef) -> bool:
    return any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "input" for n in ast.walk(func)
    )


def _target(tree: ast.Module) -> ast.FunctionDef | None:
    """The function to call: the last defined of those no other function calls."""
    uncalled = uncalled_functions(tree)
    called_inside = {
        n.func.id
        for f in uncalled
        for n in ast.walk(f)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id != f.name
    }
    tops = [f for f in uncalled if f.name not in called_inside]
    return tops[-1] if tops else None


def prompt_values(prompt: str) -> dict[str, list]:
    """The prompt's numbers, quoted strings and list literals, in order of mention."""
    slots = abstract_prompt(prompt)[1]
    numbers = [float(n) if "." in n else int(n) for n in slots.numbers]
    lists = []
    for match in _LIST.findall(prompt):
        try:
            value = ast.literal_eval(match)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            continue
        if isinstance(value, list):
            lists.append(value)
    return {"numbers": numbers, "strings": list(slots.strings), "lists": lists}


def arguments(func: ast.FunctionDef, prompt: str) -> list[str] | None:
    """Literals for the function's required parameters: the prompt's values where they fit, else
    guessed from the names; None where it takes keyword-only parameters without defaults."""
    args = func.args
    if args.posonlyargs or any(d is None for d in args.kw_defaults):
        return None
    required = args.args[: len(args.args) - len(args.defaults)]
    if required and required[0].arg in ("self", "cls"):
        return None
    n = len(required)
    values = prompt_values(prompt)
    if n == 0:
        return []
    if values["lists"] and n == 1 and not values["numbers"][1:]:
        return [repr(values["lists"][0])]
    if len(values["numbers"]) == n and not values["strings"]:
        return [repr(v) for v in values["numbers"]]
    if n == 1 and len(values["strings"]) == 1:
        return [repr(values["strings"][0])]
    if n == 1 and values["lists"]:
        return [repr(values["lists"][0])]
    return [guess_argument(a.arg, i, prompt) for i, a in enumerate(required)]


def completion(code: str, prompt: str) -> str | None:
    """The line to add so that `code` shows what it does, or None where it needs none (it has a
    visible top-level statement, calls what it defines, defines nothing to call, reads input or does
    not parse)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    if not all(_quiet(node) for node in tree.body):
        return None
    func = _target(tree)
    if func is None or _reads_input(func):
        return None
    args = arguments(func, prompt)
    if args is None:
        return None
    call = f"{func.name}({', '.join(args)})"
    return f"print({call})" if _returns_value(func) else call


def with_line(code: str, line: str) -> str:
    """`code` with the completion line `line` after it: the program that ran, and the answer shown."""
    return code.rstrip("\n") + "\n\n" + line + "\n"


def completed(code: str, prompt: str) -> tuple[str, str | None]:
    """(`code` with the completion line added, the line) or (`code`, None) where none is needed."""
    line = completion(code, prompt)
    return (code, None) if line is None else (with_line(code, line), line)
