"""Does this code parse? The one answer every module uses (no model, no torch, never raises).

Two questions, because EVAL.md's parse rate and the code we show or keep ask different ones:
- `parse_tree` / `parses`: `ast.parse` succeeds, EVAL.md's parse rate;
- `syntax_error` / `compiles`: `compile` succeeds, which also rejects what only the compiler
  finds, such as `return` outside a function.
Both are quiet: SyntaxWarning/DeprecationWarning (e.g. "\\d") are noise here, and under
`-W error` they would turn into SyntaxErrors and change the answer.
"""

from __future__ import annotations

import ast
import warnings


def parse_tree(code: str) -> ast.Module | None:
    """The module's AST, or None where it does not parse; never warns, never raises."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(code)
    except Exception:  # SyntaxError, ValueError (null bytes), RecursionError, MemoryError, ...
        return None


def parses(code: str) -> bool:
    """`ast.parse` succeeds: what EVAL.md's parse rate counts."""
    return parse_tree(code) is not None


def syntax_error(code: str) -> tuple[int, str] | None:
    """(line, message) of the first error `compile` reports, or None when the code compiles."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(code, "<generated>", "exec")
    except SyntaxError as err:
        line = err.lineno
        if line is None:  # e.g. null bytes: no position reported
            line = code[: code.index("\x00")].count("\n") + 1 if "\x00" in code else 1
        return line, err.msg or str(err)
    except Exception as err:  # ValueError, RecursionError, MemoryError on pathological input
        return 1, f"{type(err).__name__}: {err}"
    return None


def literal(node: ast.expr) -> tuple[bool, object]:
    """(True, its value) where `node` is a Python literal (`ast.literal_eval`: `[1, 2]`, `set()`,
    `-3`), else (False, None); never raises."""
    try:
        return True, ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        return False, None


def compiles(code: str) -> bool:
    """`compile` succeeds (stricter than `parses`)."""
    return syntax_error(code) is None
