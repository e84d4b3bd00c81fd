"""Print the value, not a sentence about it, where the prompt asks to print a value.

The corpus's programs print with labels ("Quotient is: 9"); a prompt such as "print the quotient
of 47 divided by 5" asks for the value. Where the prompt asks to print and quotes no text to print
(a quote after "print" says what to print; one after "the string" is a value to work on), the
example the model follows has each labelled print reduced to its value:
`print("Sum is:", s)`, `print("Sum is: " + str(s))` and `print(f"Sum is {s}")` become `print(s)`.
"""

from __future__ import annotations

import ast
import re

from ..syntax import compiles, parse_tree
from .edit import replace_spans

_ASKS_PRINT = re.compile(r"\b(print|prints|display|show)\b", re.I)
# A quote right after a word that says what to print is text to print (print "prime" or "not prime",
# in the form "7 x 1 = 7"); elsewhere it is a value to work on (the number of words in the sentence
# "the quick brown fox").
_TEXT_TO_PRINT = re.compile(
    r"\b(?:print|prints|printing|display|displays|show|shows|say|says|output|outputs|form|message|like)"
    r"\s*:?\s*[\"'`“‘]",
    re.I,
)


def asks_to_print(prompt: str) -> bool:
    return bool(_ASKS_PRINT.search(prompt))


def wants_bare_value(prompt: str) -> bool:
    """The prompt asks to print and names no text of its own to print."""
    return asks_to_print(prompt) and not _TEXT_TO_PRINT.search(prompt)


def _text(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _value_of(call: ast.Call) -> ast.expr | None:
    """The one value a labelled print shows (for an f-string, its one formatted field), or None."""
    if call.keywords or not call.args:
        return None
    args = call.args
    if len(args) == 2 and _text(args[0]) and not _text(args[1]) and not isinstance(args[1], ast.JoinedStr):
        return args[1]
    if len(args) != 1:
        return None
    arg = args[0]
    if isinstance(arg, ast.BinOp) and isinstance(arg.op, ast.Add) and _text(arg.left):
        right = arg.right
        if (
            isinstance(right, ast.Call)
            and isinstance(right.func, ast.Name)
            and right.func.id == "str"
            and len(right.args) == 1
        ):
            return right.args[0]
        return None
    if isinstance(arg, ast.JoinedStr):
        values = [v for v in arg.values if isinstance(v, ast.FormattedValue)]
        labels = [v for v in arg.values if _text(v) and v.value.strip(" :=-")]
        if len(values) == 1 and labels and values[0].conversion == -1 and values[0].format_spec is None:
            return values[0]
    return None


def bare_prints(code: str) -> str | None:
    """`code` with every labelled print reduced to its value; None where none is (or a print sits
    inside another's arguments, which is rare: nothing changes then)."""
    tree = parse_tree(code)
    if tree is None:
        return None
    edits = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"):
            continue
        value = _value_of(node)
        if isinstance(value, ast.FormattedValue):
            value = value.value
        text = None if value is None else ast.get_source_segment(code, value)
        if text is not None:
            edits.append((node.args[0], node.args[-1], text))
    out = replace_spans(code, edits) if edits else None
    return out if out is not None and compiles(out) else None


def _printed_name(stmt: ast.stmt) -> str | None:
    """`print(name)` at the top level: the name."""
    if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)):
        return None
    call = stmt.value
    if not (isinstance(call.func, ast.Name) and call.func.id == "print") or call.keywords or len(call.args) != 1:
        return None
    arg = call.args[0]
    return arg.id if isinstance(arg, ast.Name) else None


def only_asked_prints(prompt: str, code: str) -> str | None:
    """`code` without its top-level `print(name)` lines whose name the prompt never says, where
    another such line prints a name it does say ("print the quotient of 47 divided by 5" and a
    program printing `quotient`, then `remainder`); None where nothing changes."""
    tree = parse_tree(code)
    if tree is None:
        return None
    words = set(re.findall(r"[a-z_]+", prompt.lower()))
    printed = [(stmt, name) for stmt in tree.body if (name := _printed_name(stmt)) is not None]
    said = [stmt for stmt, name in printed if len(name) >= 3 and name.lower() in words]
    unsaid = [stmt for stmt, name in printed if stmt not in said]
    if not said or not unsaid:
        return None
    lines = code.splitlines(keepends=True)
    drop = {line for stmt in unsaid for line in range(stmt.lineno - 1, stmt.end_lineno)}
    out = "".join(line for i, line in enumerate(lines) if i not in drop)
    return out if compiles(out) else None
