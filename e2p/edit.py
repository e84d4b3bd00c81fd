"""Retrieve-and-edit by rule: put this prompt's values where a retrieved program used its own.

A train program answering "print the sum of 3 and 4" holds 3 and 4; asked for "the sum of 15 and
27", the same program with 15 and 27 answers it. The prompts' numbers, quoted strings and
identifier-like names are matched kind by kind, in order of mention, through the same
placeholders the model uses; a kind is edited only when both prompts name the same number of
values and the program uses every one of its prompt's values of that kind (so "divisible by 7
and 5" never maps onto a program that only uses 7), and an edit that does not compile is dropped.

Programs that name their inputs at the top (`num = 407`) get the prompt's values there too
(`fill_inputs`), where the prompt names as many values of that kind as the program has inputs.
"""

from __future__ import annotations

import ast

from .corpus import Example, compiles
from .metrics import parse_tree
from .placeholders import Slots, abstract_code, abstract_prompt, restore_code
from .tokenizers import code_tokens, decode_code


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
    return code if compiles(code) and code.strip() != example.code.strip() else None


_KINDS = {int: (int, float), str: (str,)}  # prompt value kind -> literal types it may replace


def _input_constants(tree: ast.Module, kind: type) -> list[ast.Constant]:
    """The program's named inputs: top-level `name = <literal>` of one kind, in order."""
    found = []
    for stmt in tree.body:
        if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
                and isinstance(stmt.value, ast.Constant) and type(stmt.value.value) in _KINDS[kind]):
            found.append(stmt.value)
    return found


def fill_inputs(prompt: str, code: str) -> str | None:
    """`code` with its named inputs (`num = 407`, `s = "hello"` at the top level) set to the
    values the prompt names, in order, where the counts agree; None where nothing changes.

    "check whether 29 is prime" and a program starting `num = 407` give `num = 29`."""
    tree = parse_tree(code)
    if tree is None:
        return None
    slots = abstract_prompt(prompt)[1]
    lines = code.splitlines(keepends=True)
    edits = []
    for kind, values in ((int, slots.numbers), (str, slots.strings)):
        constants = _input_constants(tree, kind)
        if not values or len(values) != len(constants):
            continue
        for node, value in zip(constants, values):
            if node.lineno != node.end_lineno:
                return None
            edits.append((node.lineno, node.col_offset, node.end_col_offset, value if kind is int else repr(value)))
    for row, start, end, text in sorted(edits, reverse=True):
        line = lines[row - 1]
        lines[row - 1] = line[:start] + text + line[end:]
    filled = "".join(lines)
    return filled if filled != code and compiles(filled) else None
