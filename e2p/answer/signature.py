"""Parameters in the order the prompt names them.

"the volume of a cylinder given its radius and height" asks for `f(radius, height)`; an example
written as `def volume(height, radius)` answers a caller who passes the radius first with the
wrong number. Where every parameter of a top-level function is a word of the prompt and the prompt
names them in another order, the example the model follows has them reordered, and every call of
that function in the program its arguments reordered the same way, so that it computes what it did.
"""

from __future__ import annotations

import ast
import re

from ..syntax import compiles, parse_tree
from .edit import replace_spans


def _prompt_order(prompt: str, names: list[str]) -> list[int] | None:
    """Where each name is first said in the prompt (as a word), or None where one is not. Names of
    one or two letters (`a`, `b`, `c`; `x1`) say nothing: "ax^2 + bx + c = 0, given a, b and c"."""
    low = prompt.lower()
    places = []
    for name in names:
        if len(name) < 3:
            return None
        match = re.search(rf"\b{re.escape(name.lower())}\b", low)
        if match is None:
            return None
        places.append(match.start())
    return places


def _reorderable(func: ast.FunctionDef) -> bool:
    args = func.args
    plain = not (args.posonlyargs or args.vararg or args.kwonlyargs or args.kwarg or args.defaults)
    return plain and len(args.args) > 1


def in_prompt_order(prompt: str, code: str) -> str | None:
    """`code` with its functions' parameters (and their calls' arguments) in the order the prompt
    names them; None where nothing changes or a call cannot be reordered (keywords, starred)."""
    tree = parse_tree(code)
    if tree is None:
        return None
    edits = []
    for func in tree.body:
        if not isinstance(func, ast.FunctionDef) or not _reorderable(func):
            continue
        names = [a.arg for a in func.args.args]
        places = _prompt_order(prompt, names)
        if places is None or len(set(places)) != len(places):
            continue
        order = sorted(range(len(names)), key=places.__getitem__)
        if order == list(range(len(names))):
            continue
        params = func.args.args
        texts = [ast.get_source_segment(code, params[i]) for i in order]
        if None in texts:
            return None
        edits.append((params[0], params[-1], ", ".join(texts)))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == func.name:
                if node.keywords or len(node.args) != len(names) or any(isinstance(a, ast.Starred) for a in node.args):
                    return None
                args = [ast.get_source_segment(code, node.args[i]) for i in order]
                if None in args:
                    return None
                edits.append((node.args[0], node.args[-1], ", ".join(args)))
    if not edits:
        return None
    out = replace_spans(code, edits)
    return out if out is not None and compiles(out) else None
