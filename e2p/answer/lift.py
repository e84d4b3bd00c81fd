"""A script example followed as a function, where the prompt asks for a function.

Many of the corpus's best matches for "write a python function to ..." are scripts: for "convert a
string to uppercase" the nearest train prompt (0.94 similar) is a script that reads a string and
prints it upper-cased, while the nearest that defines a function converts a string to a list. The
model follows the example it is shown, so showing the script gets a script (no function) and showing
the function gets the wrong function. Here the script is rewritten as the function it computes,
before the model is shown it:

- its inputs (top-level `name = <literal>`, `name = input(...)` or `int(input(...))`; where it has
  none, the names it reads and never binds) become the parameters, in the order it has them;
- its answer, what its last top-level statement prints, becomes the return value: the last printed
  value that is not text (`print("Largest element is:", list1[-1])` -> `list1[-1]`; an f-string's
  one value), the condition of a final `if`/`else` that only prints text ("is a palindrome" / "is
  not"), or the list a final loop prints item by item;
- the rest of the script is the function's body, less its other top-level prints.

The name comes from the prompt's words. A script that defines anything, has no inputs, or whose
last statement prints nothing, is left as it is (None).
"""

from __future__ import annotations

import ast
import builtins
import re

from ..syntax import literal, parse_tree

# Words of the prompt left out of the function's name: the request's boilerplate and small words.
_NOT_IN_NAME = frozenset(
    "write python function program code return returns find get compute calculate given "
    "that which takes accepts a an the to of in and or is are for from with by its it".split()
)
_INPUT_READERS = frozenset({"input", "int", "float", "eval", "str", "list"})


def as_function(prompt: str, code: str) -> str | None:
    """`code`, a script, as a function named from `prompt` (see the module's docstring), or None.
    Whether the prompt asks for a function is the caller's to know."""
    tree = parse_tree(code)
    if tree is None or not tree.body or _defines(tree):
        return None
    *rest, last = tree.body
    answer = _answer(last)
    if answer is None:
        return None
    inputs = _inputs(tree, rest)
    # a name it reads and never binds is its input only where it sets none itself; beside inputs it
    # sets, such a name is a slip (`print(soreted_list)` after building `sorted_list`), not a parameter
    params = [name for name, _ in inputs] or _free_names(tree)
    if not params:
        return None
    dropped = {id(stmt) for _, stmt in inputs}
    imports = [s for s in rest if isinstance(s, ast.Import | ast.ImportFrom)]  # stay at the top
    body = [s for s in rest if id(s) not in dropped and not _only_prints(s) and s not in imports]
    func = ast.FunctionDef(
        name=function_name(prompt),
        args=ast.arguments(
            posonlyargs=[], args=[ast.arg(arg=p) for p in params], kwonlyargs=[], kw_defaults=[], defaults=[]
        ),
        body=body + [ast.Return(value=answer)],
        decorator_list=[],
        returns=None,
        type_params=[],
    )
    module = ast.Module(body=imports + [func], type_ignores=[])
    ast.fix_missing_locations(module)
    try:
        return ast.unparse(module)
    except (ValueError, RecursionError):
        return None


def function_name(prompt: str) -> str:
    """Up to three of the prompt's words after "function to": "return the largest number in a
    list" -> `largest_number_list`."""
    match = re.search(r"\bfunctions?\b(.*)", prompt, re.I | re.S)
    words = re.findall(r"[a-z]+", (match.group(1) if match else prompt).lower())
    kept = [w for w in words if w not in _NOT_IN_NAME and len(w) > 1][:3]
    name = "_".join(kept) or "answer"
    return name if name.isidentifier() and not hasattr(builtins, name) else f"{name}_"


def _defines(tree: ast.Module) -> bool:
    return any(
        isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda | ast.Return | ast.Yield)
        for n in ast.walk(tree)
    )


def _is_print(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"


def _only_prints(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and _is_print(stmt.value)


def _is_text(node: ast.expr) -> bool:
    """Text a print labels its value with: a string constant or an f-string with no values."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return True
    return isinstance(node, ast.JoinedStr) and not any(isinstance(v, ast.FormattedValue) for v in node.values)


def _printed_value(call: ast.Call) -> ast.expr | None:
    if call.keywords and any(k.arg not in ("sep", "end") for k in call.keywords):
        return None
    values = [a for a in call.args if not _is_text(a)]
    if not values or any(isinstance(a, ast.Starred) for a in values):
        return None
    value = values[-1]
    if isinstance(value, ast.JoinedStr):  # f"Area: {side * side}": the one value it formats
        formatted = [v for v in value.values if isinstance(v, ast.FormattedValue)]
        return formatted[0].value if len(formatted) == 1 else None
    if (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Attribute)
        and value.func.attr == "format"
        and _is_text(value.func.value)
    ):  # "Sum is {}".format(s)
        return value.args[-1] if len(value.args) == 1 and not value.keywords else None
    return value


def _prints_text_only(block: list[ast.stmt]) -> bool:
    return bool(block) and all(_only_prints(s) and all(_is_text(a) for a in s.value.args) for s in block)


def _answer(stmt: ast.stmt) -> ast.expr | None:
    """The value the script's last statement prints (see the module's docstring), or None."""
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
        # celsius = (fahrenheit - 32) * 5 / 9: what it computes last (not a constant it sets)
        return None if _literal(stmt.value) else stmt.value
    if _only_prints(stmt):
        return _printed_value(stmt.value)
    if isinstance(stmt, ast.If) and _prints_text_only(stmt.body) and _prints_text_only(stmt.orelse):
        test = stmt.test
        negation = isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not)
        if isinstance(test, ast.Compare | ast.BoolOp) or negation:
            return test
        return ast.Call(func=ast.Name(id="bool", ctx=ast.Load()), args=[test], keywords=[])
    if (
        isinstance(stmt, ast.For)
        and isinstance(stmt.target, ast.Name)
        and isinstance(stmt.iter, ast.Name)
        and not stmt.orelse
        and len(stmt.body) == 1
        and _only_prints(stmt.body[0])
    ):  # for row in result: print(row)
        value = _printed_value(stmt.body[0].value)
        if isinstance(value, ast.Name) and value.id == stmt.target.id:
            return ast.Name(id=stmt.iter.id, ctx=ast.Load())
    return None


def _literal(node: ast.expr) -> bool:
    return literal(node)[0]


def _empty(node: ast.expr) -> bool:
    """`[]`, `{}`, `set()`, `""`, `0`: a result the script builds, not a value it works on."""
    ok, value = literal(node)
    return ok and not value


def _reads_input(node: ast.expr) -> bool:
    """`input(...)`, or `int(input(...))` and the like."""
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _INPUT_READERS:
        if node.func.id == "input":
            return True
        if len(node.args) != 1:
            return False
        node = node.args[0]
    return False


def _inputs(tree: ast.Module, statements: list[ast.stmt]) -> list[tuple[str, ast.stmt]]:
    """(name, statement) of the script's top-level inputs: a name given a literal or the user's
    input, and not assigned again (a running result's start is not an input)."""
    assigned: dict[str, int] = {}
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AugAssign):
            targets = [node.target]
        for target in targets:
            for name in ast.walk(target):
                if isinstance(name, ast.Name):
                    assigned[name.id] = assigned.get(name.id, 0) + 1
            if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):  # result[i] = ...
                assigned[target.value.id] = assigned.get(target.value.id, 0) + 2
    out = []
    for stmt in statements:
        if (
            isinstance(stmt, ast.Assign)
            and len(stmt.targets) == 1
            and isinstance(stmt.targets[0], ast.Name)
            and assigned.get(stmt.targets[0].id) == 1
            and ((_literal(stmt.value) and not _empty(stmt.value)) or _reads_input(stmt.value))
        ):
            out.append((stmt.targets[0].id, stmt))
    # Beside a text to work on (a string with a space), a string without one is the script's table
    # (`punctuations = "!()-[]{};:"`, `vowels = "aeiou"`), which stays in its body.
    texts = [_text(stmt.value) for _, stmt in out]
    if any(t is not None and " " in t for t in texts):
        out = [pair for pair, t in zip(out, texts) if t is None or " " in t]
    return out


def _text(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _free_names(tree: ast.Module) -> list[str]:
    """Names the script reads and never binds, imports or gets from builtins, in order."""
    bound = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound.add(node.id)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.comprehension):
            bound.update(n.id for n in ast.walk(node.target) if isinstance(n, ast.Name))
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    seen = []
    names = sorted((n for n in ast.walk(tree) if isinstance(n, ast.Name)), key=lambda n: (n.lineno, n.col_offset))
    for node in names:
        if (
            isinstance(node, ast.Name)
            and isinstance(node.ctx, ast.Load)
            and node.id not in bound
            and not hasattr(builtins, node.id)
            and node.id not in seen
        ):
            seen.append(node.id)
    return seen
