"""Names the model can write: rename an example's own names that hold a piece outside the vocabulary.

The model writes identifiers as vocabulary pieces (`add_two` -> `add`, `##_two`); a piece outside
the target vocabulary (`Kilometers` in `Kilometers_to_Miles`) cannot be written, so following an
example breaks at that name and the model goes its own way from there (the example's follow rule
bans the unknown token). Before the model follows an example, each name the example binds itself
(a function, class, parameter or assigned name) that holds such a piece is renamed, everywhere in
it, to one made of known pieces: the piece lower-cased where that is known, else left out
(`Kilometers_to_Miles` -> `kilometers_to_miles`, `simpleIntereset` -> `simple`). The program is
the same program; a name that would clash with another, or come out empty, is left as it is.

A string's text is written as pieces too (`"aeiouAEIOU"` -> `aeiouAEIOU`, one piece outside the
vocabulary): such a piece is split into known pieces that join back to the same text
(`aeiou`, `AEIOU`), so that the model can write the example's string as it is.

The corpus's older programs also call Python 2's `raw_input`, which Python 3 (what runs the code)
calls `input`: followed as written, the code fails at that name before it can read anything.
"""

from __future__ import annotations

import ast
import builtins
import io
import keyword
import tokenize
from collections.abc import Callable

from ..data.tokenizers import CONT, STR_CLOSE_PREFIX, STR_OPEN_PREFIX, split_identifier
from ..syntax import parse_tree


def with_known_names(code: str, known: Callable[[str], bool]) -> str | None:
    """`code` with its own names renamed to ones whose pieces are all `known` (a vocabulary test
    of one token); None where no name needs it or none can be renamed."""
    tree = parse_tree(code)
    if tree is None:
        return None
    used = _all_names(tree)
    renames: dict[str, str] = {}
    for name in sorted(_bound_names(tree)):
        if all(known(p) for p in split_identifier(name)):
            continue
        new = _known_form(name, known)
        if new and new not in used and new not in renames.values():
            renames[name] = new
    if not renames:
        return None
    return _renamed(code, renames)


# Python 2 builtins the corpus's programs call, by the names Python 3 gives them
PYTHON3_NAMES = {"raw_input": "input"}


def with_python3_names(code: str) -> str | None:
    """`code` with the Python 2 builtins it calls (and does not define or import itself) renamed to
    their Python 3 names; None where it calls none."""
    tree = parse_tree(code)
    if tree is None:
        return None
    called = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    own = _bound_names(tree) | {(a.asname or a.name).split(".")[0] for a in ast.walk(tree) if isinstance(a, ast.alias)}
    renames = {old: new for old, new in PYTHON3_NAMES.items() if old in called and old not in own}
    return _renamed(code, renames) if renames else None


_LONGEST_PIECE = 24


def with_known_string_pieces(tokens: list[str], known: Callable[[str], bool]) -> list[str]:
    """`tokens` (code tokens) with each piece of a string's text that is not `known` split into known
    pieces that join back to it, longest first from its start; a piece that cannot be is kept."""
    out, inside = [], False
    for tok in tokens:
        if tok.startswith(STR_OPEN_PREFIX):
            inside = True
        elif tok.startswith(STR_CLOSE_PREFIX):
            inside = False
        elif inside and not known(tok):
            out.extend(_known_split(tok, known) or [tok])
            continue
        out.append(tok)
    return out


def _known_split(text: str, known: Callable[[str], bool]) -> list[str] | None:
    pieces, start = [], 0
    while start < len(text):
        end = next((e for e in range(min(len(text), start + _LONGEST_PIECE), start, -1) if known(text[start:e])), None)
        if end is None:
            return None
        pieces.append(text[start:end])
        start = end
    return pieces


def _known_form(name: str, known: Callable[[str], bool]) -> str | None:
    pieces = []
    for piece in split_identifier(name):
        if known(piece):
            pieces.append(piece)
        elif known(piece.lower()):
            pieces.append(piece.lower())
    text = "".join(p.removeprefix(CONT) for p in pieces).lstrip("_")
    if not text.isidentifier() or keyword.iskeyword(text) or hasattr(builtins, text):
        return None
    return text if all(known(p) for p in split_identifier(text)) else None


def _bound_names(tree: ast.AST) -> set[str]:
    """Names the code binds itself: what renaming everywhere cannot take from a library."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    # a name also imported or used as an attribute or a keyword may belong to a library: leave it
    for node in ast.walk(tree):
        if isinstance(node, ast.alias):
            names.discard((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.Attribute):
            names.discard(node.attr)
        elif isinstance(node, ast.keyword) and node.arg:
            names.discard(node.arg)
    return names


def _all_names(tree: ast.AST) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.Attribute):
            found.add(node.attr)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            found.add(node.name)
        elif isinstance(node, ast.arg):
            found.add(node.arg)
        elif isinstance(node, ast.alias):
            found.add((node.asname or node.name).split(".")[0])
    return found


def _renamed(code: str, renames: dict[str, str]) -> str | None:
    """Every NAME token in `renames` replaced (strings and comments untouched)."""
    lines = code.splitlines(keepends=True)
    edits = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type == tokenize.NAME and tok.string in renames:
                edits.append((tok.start, tok.end, renames[tok.string]))
    except (tokenize.TokenError, SyntaxError):
        return None
    for (row, col), (_, end), text in reversed(edits):  # a NAME never spans lines
        line = lines[row - 1]
        lines[row - 1] = line[:col] + text + line[end:]
    out = "".join(lines)
    return out if parse_tree(out) is not None else None
