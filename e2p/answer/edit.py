"""Retrieve-and-edit by rule: put this prompt's values where a retrieved program used its own.

A train program answering "print the sum of 3 and 4" holds 3 and 4; asked for "the sum of 15 and
27", the same program with 15 and 27 answers it. The prompts' numbers, quoted strings and
identifier-like names are matched kind by kind, in order of mention, through the same
placeholders the model uses; a kind is edited only when both prompts name the same number of
values and the program uses every one of its prompt's values of that kind (so "divisible by 7
and 5" never maps onto a program that only uses 7), and an edit that does not compile is dropped.

Every edit is checked against the program it came from: the two syntax trees must be equal but
for constant values and the identifiers renamed to the prompt's names, else it is dropped. So a
prompt changes values and names, never what the program does with them.

Programs that name their inputs at the top (`num = 407`, `nums = [11, 5]`) get the prompt's values
there too (`fill_inputs`), where the prompt names as many values of that kind as the program has
inputs; a list, dict or set the prompt writes out fills a container input whole.
"""

from __future__ import annotations

import ast
import re

from ..data.corpus import Example
from ..data.placeholders import Slots, abstract_code, abstract_prompt, restore_code
from ..data.tokenizers import code_tokens, decode_code
from ..syntax import compiles, parse_tree


def _matched(ours: Slots, theirs: Slots) -> tuple[Slots, Slots]:
    """Keep only the kinds both prompts hold equally many values of, and that differ."""
    keep_ours, keep_theirs = Slots(), Slots()
    for kind in ("numbers", "strings", "names"):
        a, b = getattr(ours, kind), getattr(theirs, kind)
        if a and len(a) == len(b) and a != b:
            setattr(keep_ours, kind, list(a))
            setattr(keep_theirs, kind, list(b))
    return keep_ours, keep_theirs


def _uses_all(tokens: list[str], theirs: Slots, kind: str) -> bool:
    only = Slots(**{kind: getattr(theirs, kind)})
    placeholders = set(only.mapping())
    return placeholders <= set(abstract_code(tokens, only))


def adapt_literals(prompt: str, example: Example) -> str | None:
    """`example.code` with its prompt's values replaced by `prompt`'s; None where nothing changes."""
    ours, theirs = _matched(abstract_prompt(prompt)[1], abstract_prompt(example.prompt)[1])
    tokens = code_tokens(example.code)
    for kind in ("numbers", "strings", "names"):
        if getattr(theirs, kind) and not _uses_all(tokens, theirs, kind):
            setattr(theirs, kind, [])
            setattr(ours, kind, [])
    if not theirs:
        return None
    abstract = abstract_code(tokens, theirs)
    code = decode_code(restore_code(abstract, ours))
    renames = dict(zip(theirs.names, ours.names))
    if code.strip() == example.code.strip() or not compiles(code) or not same_shape(example.code, code, renames):
        return None
    return code


_LITERAL_TYPES = {int: (int, float), str: (str,)}  # prompt value type -> literal types it may replace


def _named_inputs(tree: ast.Module) -> list[ast.expr]:
    """The values of the program's top-level `name = <value>` assignments, in order."""
    return [value for _, value in _named_assignments(tree)]


def _named_assignments(tree: ast.Module) -> list[tuple[str, ast.expr]]:
    """(name, value) of the program's top-level `name = <value>` assignments, in order."""
    return [
        (stmt.targets[0].id, stmt.value)
        for stmt in tree.body
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
    ]


def _input_constants(tree: ast.Module, value_type: type) -> list[ast.Constant]:
    """The program's named inputs: top-level `name = <literal>` of one value type, in order."""
    return [
        value
        for value in _named_inputs(tree)
        if isinstance(value, ast.Constant) and type(value.value) in _LITERAL_TYPES[value_type]
    ]


def replace_spans(code: str, edits: list[tuple[ast.AST, ast.AST, str]]) -> str | None:
    """`code` with the source from each edit's first node's start to its last node's end replaced by
    its text; None where two spans overlap or the result is not UTF-8 text (a lone surrogate)."""
    starts = [0]  # byte offset of each line: ast columns count UTF-8 bytes
    for line in code.splitlines(keepends=True):
        starts.append(starts[-1] + len(line.encode()))
    spans = sorted(
        (
            starts[first.lineno - 1] + first.col_offset,
            starts[last.end_lineno - 1] + last.end_col_offset,
            text.encode("utf-8", "surrogatepass"),
        )
        for first, last, text in edits
    )
    source, end_before = code.encode(), None
    for start, end, text in reversed(spans):
        if end_before is not None and end > end_before:
            return None
        source, end_before = source[:start] + text + source[end:], start
    try:
        return source.decode()
    except UnicodeDecodeError:
        return None


_START_VALUES = (0, 1, "")


def _accumulators(tree: ast.Module) -> list[ast.Constant]:
    """Top-level `name = 0` / `1` / `""` whose name is assigned again later (`factorial = factorial * i`,
    `total += n`): a running result's start, not a value the program works on."""
    assigned: dict[str, int] = {}
    for node in ast.walk(tree):
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AugAssign) else []
        )
        for target in targets:
            if isinstance(target, ast.Name):
                assigned[target.id] = assigned.get(target.id, 0) + 1
    return [
        value
        for name, value in _named_assignments(tree)
        if isinstance(value, ast.Constant)
        and type(value.value) in (int, float, str)
        and value.value in _START_VALUES
        and assigned.get(name, 0) > 1
    ]


def prompt_containers(prompt: str) -> list[tuple[str, object]]:
    """The list, dict and set literals the prompt writes out (`[4, 8, 15]`, `{"a": 1}`), in order:
    (their text, their value). Bracketed prose that is not a literal is skipped."""
    found, i = [], 0
    while i < len(prompt):
        if prompt[i] in "[{":
            end = _closing(prompt, i)
            if end is not None:
                text = prompt[i : end + 1]
                try:
                    value = ast.literal_eval(text)
                except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                    value = None
                if isinstance(value, (list, dict, set)):
                    found.append((text, value))
                    i = end + 1
                    continue
        i += 1
    return found


def _closing(text: str, start: int) -> int | None:
    """Where the bracket opened at `start` closes (brackets of any kind nested), or None."""
    pairs, stack = {"[": "]", "{": "}", "(": ")"}, []
    for j in range(start, len(text)):
        ch = text[j]
        if ch in pairs:
            stack.append(pairs[ch])
        elif ch in ")]}":
            if not stack or stack.pop() != ch:
                return None
            if not stack:
                return j
    return None


def _container_inputs(tree: ast.Module) -> list[ast.expr]:
    """The program's named container inputs: top-level `name = [...]` / `{...}` literals, in order;
    where it names none, the literals its top-level statements pass to a call
    (`print(min_check([2, 4, 5]))`: the value a function the program defines is shown with)."""
    found = _literals(_named_inputs(tree))
    if found:
        return found
    args = []
    for stmt in tree.body:
        if isinstance(stmt, ast.Expr | ast.Assign):
            for node in ast.walk(stmt):
                if isinstance(node, ast.Call):
                    args += [a for a in node.args if isinstance(a, ast.List | ast.Dict | ast.Set)]
    return _literals(args)


# numbers written as a list in prose: "10, 20, 30 and 45", "4 and 8" (not "from 1 to 15"); a full
# stop may end the sentence after the last one; "1,000" is one number, not a list
_NUMBER = r"-?\d+(?:\.\d+)?"
_NUMBER_RUN = re.compile(rf"(?<![\w.,]){_NUMBER}(?:\s*(?:,\s+(?:and\s+)?|\s+and\s+){_NUMBER})+(?!\w|\.\d|,\d)")


def _numbers_as_list(prompt: str, tree: ast.Module) -> list[tuple[str, list]]:
    """Where every number the prompt names is in one list written in prose ("the average of the
    numbers 10, 20, 30 and 45") and the program's one numeric input is a list of numbers
    (`a = [11, 22, 33]`, no `num = 7`): those numbers as that list's literal."""
    runs = _NUMBER_RUN.findall(prompt)
    listed = re.findall(_NUMBER, runs[0]) if len(runs) == 1 else []
    # every run of digits in the prompt is in the list ("1e5, 2 and 3" is not a list of 2 and 3)
    if not listed or len(listed) != len(re.findall(_NUMBER, prompt)):
        return []
    starts = _accumulators(tree)
    if any(c not in starts for c in _input_constants(tree, int)):
        return []
    if sum(_holds_numbers(n) for n in _container_inputs(tree)) != 1:
        return []
    values = [float(n) if "." in n else int(n) for n in listed]  # "007" is 7
    return [(repr(values), values)]


_RANGE = re.compile(r"\bfrom\s+(\d+)\s+(?:to|till|until|through)\s+(\d+)\b", re.I)


def _without_range_bounds(prompt: str, numbers: list[str], wanted: int) -> list[str]:
    """`numbers` without the bounds of a range the prompt names ("the squares of the numbers from 1
    to 10", "the table of 7 from 1 to 10") where that makes them as many as the program's `wanted`
    inputs: first a start of 0 or 1 (the program's own `range(1, ...)` holds it), then the end (the
    program's loop holds it: `range(1, 11)`); else `numbers` unchanged."""
    match = _RANGE.search(prompt)
    if match is None:
        return numbers
    start, end = match.groups()
    fewer = [n for n in numbers if n != start] if start in ("0", "1") else numbers
    if len(fewer) == wanted:
        return fewer
    fewer = [n for n in fewer if n != end]
    return fewer if len(fewer) == wanted else numbers


def _holds_numbers(node: ast.expr) -> bool:
    """A list literal of two or more numbers."""
    return (
        isinstance(node, ast.List)
        and len(node.elts) > 1
        and all(isinstance(e, ast.Constant) and type(e.value) in (int, float) for e in node.elts)
    )


def _literals(values: list[ast.expr]) -> list[ast.expr]:
    """The list, dict and set literals among `values` that hold only constants."""
    found = []
    for value in values:
        if isinstance(value, (ast.List, ast.Dict, ast.Set)):
            try:
                ast.literal_eval(value)
            except (ValueError, SyntaxError, TypeError):
                continue
            found.append(value)
    return found


def _fill_containers(written: list[tuple[str, object]], code: str, tree: ast.Module) -> str:
    """`code` with its container inputs set to the prompt's `written` container literals of the same
    type, in order, where the counts agree type by type (else unchanged)."""
    edits, inputs = [], _container_inputs(tree)
    for kind in (list, dict, set):
        values = [text for text, value in written if type(value) is kind]
        nodes = [n for n in inputs if type(ast.literal_eval(n)) is kind]
        if values and len(values) == len(nodes):
            edits += [(node, node, text) for node, text in zip(nodes, values)]
    filled = replace_spans(code, edits) if edits else None
    return filled if filled is not None and compiles(filled) else code


def fill_inputs(prompt: str, code: str) -> str | None:
    """`code` with its named inputs (`num = 407`, `s = "hello"`, `nums = [1, 2]` at the top level)
    set to the values the prompt names, in order, where the counts agree kind by kind; None where
    nothing changes.

    "check whether 29 is prime" and a program starting `num = 407` give `num = 29`; "the sum of
    the list [4, 8, 15]" and `list1 = [11, 5, 17]` give `list1 = [4, 8, 15]` (the numbers inside a
    written-out list are its own, not inputs of their own)."""
    tree = parse_tree(code)
    if tree is None:
        return None
    original, written = code, prompt_containers(prompt) or _numbers_as_list(prompt, tree)
    code = _fill_containers(written, code, tree)
    tree = parse_tree(code) if code != original else tree
    for text, _ in written:
        prompt = prompt.replace(text, " ")
    slots = abstract_prompt(prompt)[1]
    starts = _accumulators(tree)
    edits = []
    for value_type, values in ((int, slots.numbers), (str, slots.strings)):
        # a running result's start (`factorial = 1` beside `num = 7`, `sum_n = 0`) is no input
        constants = [c for c in _input_constants(tree, value_type) if c not in starts]
        if value_type is str and values and len(values) != len(constants) and all(" " in v.strip() for v in values):
            # a sentence fills the program's sentence, not its table (`vowels = "aeiou"`)
            constants = [c for c in constants if " " in c.value]
        if value_type is int and values and len(values) != len(constants):
            values = _without_range_bounds(prompt, values, len(constants))
        if not values or len(values) != len(constants):
            continue
        for node, value in zip(constants, values):
            if node.lineno != node.end_lineno:
                return None
            edits.append((node, node, value if value_type is int else repr(value)))
    filled = replace_spans(code, edits)
    if filled is None:
        return None
    changed = filled != original
    return filled if changed and compiles(filled) and same_shape(code, filled) else None


_RENAMABLE = {
    ast.Name: "id",
    ast.arg: "arg",
    ast.keyword: "arg",
    ast.FunctionDef: "name",
    ast.AsyncFunctionDef: "name",
    ast.ClassDef: "name",
}


def same_shape(old_code: str, new_code: str, renames: dict[str, str] | None = None) -> bool:
    """Whether `new_code`'s syntax tree is `old_code`'s but for constant values and identifiers
    renamed by `renames` (old name -> new name; Name, argument, keyword and def names only)."""
    old, new = parse_tree(old_code), parse_tree(new_code)
    return old is not None and new is not None and _same(old, new, renames or {})


def _same(a, b, renames: dict[str, str]) -> bool:
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_same(x, y, renames) for x, y in zip(a, b))
    if not isinstance(a, ast.AST):
        return a == b
    if type(a) is not type(b):
        return False
    for name, x in ast.iter_fields(a):
        y = getattr(b, name, None)
        if isinstance(a, ast.Constant) and name in ("value", "kind"):
            continue  # a constant's value may change (its type too: 7 -> 2.5), nothing else
        if name == _RENAMABLE.get(type(a)) and x != y:
            if renames.get(x) != y:
                return False
        elif not _same(x, y, renames):
            return False
    return True


def edit_to_prompt(prompt: str, example: Example) -> str | None:
    """`example.code` edited to `prompt`: its prompt's values replaced (`adapt_literals`), else the
    prompt's values put into the inputs it names at the top (`fill_inputs`); None where neither applies."""
    return adapt_literals(prompt, example) or fill_inputs(prompt, example.code)
