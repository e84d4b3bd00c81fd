"""A zero-filled result sized from the program's inputs, not written out for the example's own.

The corpus's matrix programs build their result in a list of zeros written for their own data:
`result = [[0, 0, 0], [0, 0, 0], [0, 0, 0]]` beside two 3 x 3 inputs. Given this prompt's 2 x 2
matrices (or, as a function, any matrices), the program indexes past the values or prints the
example's shape. Before the model follows such an example, each zero-filled list whose size matches
the inputs' is written as that size (`[[0] * len(X[0]) for _ in range(len(X))]`): rows prefer an
input's number of rows, row lengths an input's row length, so a transpose (`result` 2 x 3 for a
3 x 2 `X`) gets `len(X[0])` rows of `len(X)`.
"""

from __future__ import annotations

import ast

from ..syntax import parse_tree
from .edit import replace_spans


def sized_buffers(code: str) -> str | None:
    """`code` with its zero-filled lists sized from its inputs (see the module's docstring); None
    where it has none whose size its inputs give."""
    tree = parse_tree(code)
    if tree is None:
        return None
    inputs, zeros = [], []
    for stmt in tree.body:
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)):
            continue
        shape = _shape(stmt.value)
        if shape is None:
            continue
        (zeros if _all_zero(stmt.value) else inputs).append((stmt.targets[0].id, shape, stmt.value))
    edits = []
    for _, shape, node in zeros:
        sized = _sized(shape, [(name, dims) for name, dims, _ in inputs])
        if sized is not None:
            edits.append((node, node, sized))
    return replace_spans(code, edits) if edits else None


def _shape(node: ast.expr) -> tuple[int, ...] | None:
    """(rows,) of a flat list of numbers, (rows, columns) of a list of equal-length lists of numbers."""
    if not isinstance(node, ast.List) or not node.elts:
        return None
    if all(_number(e) for e in node.elts):
        return (len(node.elts),)
    if all(isinstance(e, ast.List) and e.elts and all(_number(x) for x in e.elts) for e in node.elts):
        widths = {len(e.elts) for e in node.elts}
        return (len(node.elts), widths.pop()) if len(widths) == 1 else None
    return None


def _number(node: ast.expr) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node = node.operand
    return isinstance(node, ast.Constant) and type(node.value) in (int, float)


def _all_zero(node: ast.expr) -> bool:
    return all(n.value == 0 for n in ast.walk(node) if isinstance(n, ast.Constant))


def _sized(shape: tuple[int, ...], inputs: list[tuple[str, tuple[int, ...]]]) -> str | None:
    rows = [(f"len({name})", dims[0]) for name, dims in inputs]
    widths = [(f"len({name}[0])", dims[1]) for name, dims in inputs if len(dims) == 2]
    first = _pick(shape[0], rows + widths)
    if first is None:
        return None
    if len(shape) == 1:
        return f"[0] * {first}"
    second = _pick(shape[1], widths + rows)
    return None if second is None else f"[[0] * {second} for _ in range({first})]"


def _pick(size: int, sources: list[tuple[str, int]]) -> str | None:
    return next((text for text, n in sources if n == size), None)
