"""Train-split augmentation that never breaks code.

Two transformations, each checked before an example is kept:
- renaming the code's own variables and parameters, token by token (never inside other words,
  so `random` cannot become `ravar_2dom`), verified by comparing the renamed code's AST with the
  original's AST under the same renaming;
- swapping a prompt's opening for an equivalent one ("write a python function to" ->
  "write a function to").
Function, class and imported names, attributes, keyword-argument names, names inside strings
(f-strings included) and names the prompt mentions are never renamed.
"""

from __future__ import annotations

import ast
import builtins
import io
import keyword
import random
import re
import tokenize
from dataclasses import replace

from ..syntax import parse_tree
from .corpus import Example

# Openings that ask for the same thing; a prompt starting with one may start with any other.
OPENINGS = (
    (
        "write a python function to",
        "write a function to",
        "create a python function to",
        "write python function to",
        "define a function to",
    ),
    (
        "write a python program to",
        "write a program to",
        "create a python program to",
        "write python program to",
        "write a python script to",
    ),
    ("write a function that", "write a python function that", "define a function that", "create a function that"),
    ("write a program that", "write a python program that", "create a program that"),
)

# Replacement names in the corpus's own style, so renamed code still reads like its neighbours.
NAME_POOL = (
    "value",
    "item",
    "result",
    "data",
    "number",
    "total",
    "count",
    "temp",
    "elem",
    "val",
    "res",
    "output",
    "current",
    "entry",
    "seq",
    "arr",
    "lst",
    "text",
    "word",
    "idx",
    "acc",
    "num",
    "x",
    "y",
    "z",
    "a",
    "b",
    "n",
    "m",
    "k",
    "s",
    "items",
    "values",
    "values_list",
    "my_list",
    "my_str",
    "input_list",
    "input_str",
    "first",
    "second",
    "left",
    "right",
    "ans",
)
_KEEP = set(dir(builtins)) | set(keyword.kwlist) | {"self", "cls"}
_WORDS = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def renamable_names(code: str, prompt: str = "") -> list[str]:
    """Variables and parameters `code` binds that can be renamed without changing its meaning."""
    tree = parse_tree(code)
    if tree is None:
        return []
    bound, frozen = set(), set(_KEEP)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            frozen.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            frozen.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Attribute):
            frozen.add(node.attr)
        elif isinstance(node, ast.keyword) and node.arg:
            frozen.add(node.arg)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            frozen.update(node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            frozen.update(_WORDS.findall(node.value))
        elif isinstance(node, ast.JoinedStr):  # f-string text parts and any name inside
            frozen.update(_WORDS.findall(ast.unparse(node)))
    frozen.update(_WORDS.findall(prompt))
    frozen.update(w.lower() for w in _WORDS.findall(prompt))
    return sorted(n for n in bound - frozen if not n.startswith("__"))


class _Renamer(ast.NodeTransformer):
    def __init__(self, mapping: dict[str, str]):
        self.mapping = mapping

    def visit_Name(self, node: ast.Name) -> ast.Name:
        node.id = self.mapping.get(node.id, node.id)
        return node

    def visit_arg(self, node: ast.arg) -> ast.arg:
        node.arg = self.mapping.get(node.arg, node.arg)
        return node


def rename_code(code: str, mapping: dict[str, str]) -> str | None:
    """`code` with the NAME tokens in `mapping` replaced, layout kept; None if the check fails."""
    if not mapping:
        return code
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return None
    lines = code.splitlines(keepends=True)
    # Replace from the end so earlier columns stay valid.
    for i in range(len(tokens) - 1, -1, -1):
        tok = tokens[i]
        if tok.type != tokenize.NAME or tok.string not in mapping:
            continue
        if i > 0 and tokens[i - 1].string == ".":  # an attribute, not the variable
            continue
        (row, start), (_, end) = tok.start, tok.end
        line = lines[row - 1]
        lines[row - 1] = line[:start] + mapping[tok.string] + line[end:]
    renamed = "".join(lines)
    original, new = parse_tree(code), parse_tree(renamed)
    if original is None or new is None:
        return None
    if ast.dump(_Renamer(mapping).visit(original)) != ast.dump(new):
        return None
    return renamed


def paraphrase_prompt(prompt: str, rng: random.Random) -> str:
    """The prompt with its opening swapped for an equivalent one; unchanged if none matches."""
    low = prompt.lower()
    for group in OPENINGS:
        for opening in group:
            if low.startswith(opening + " "):
                choice = rng.choice([o for o in group if o != opening])
                return choice + prompt[len(opening) :]
    return prompt


def augment_example(example: Example, rng: random.Random) -> Example | None:
    """One variant of `example` (renamed variables, paraphrased prompt), or None if none differs."""
    names = renamable_names(example.code, example.prompt)
    code = example.code
    if names:
        taken = set(_WORDS.findall(example.code)) | set(_WORDS.findall(example.prompt))
        free = [n for n in NAME_POOL if n not in taken]
        rng.shuffle(free)
        chosen = [n for n in names if rng.random() < 0.7]
        mapping = dict(zip(chosen, free))
        code = rename_code(example.code, mapping) or example.code
    prompt = paraphrase_prompt(example.prompt, rng)
    if code == example.code and prompt == example.prompt:
        return None
    return replace(example, prompt=prompt, code=code, family=example.family or example.key)


def augment_examples(examples: list[Example], copies: int, seed: int = 0) -> list[Example]:
    """Up to `copies` distinct variants of each example (train split only), originals excluded."""
    rng = random.Random(seed)
    out = []
    for ex in examples:
        seen = {(ex.prompt, ex.code)}
        for _ in range(copies):
            variant = augment_example(ex, rng)
            if variant is not None and (variant.prompt, variant.code) not in seen:
                seen.add((variant.prompt, variant.code))
                out.append(variant)
    return out
