"""Tokenizers: English prompts through spaCy, Python code through Python's own `tokenize`.

Code tokens are readable and lossless up to the AST: NEWLINE/INDENT/DEDENT become `<nl>`,
`<indent>`, `<dedent>`; identifiers split into sub-words whose continuation pieces carry a `##`
prefix (`add_two` -> `add`, `##_two`), so unseen names are made of known pieces; string literals
split into their words between an opening token (prefix and quote, `f"`) and a closing quote
token, so words in strings are tokens too.
"""

from __future__ import annotations

import io
import keyword
import re
import tokenize
from functools import lru_cache

NL, INDENT, DEDENT = "<nl>", "<indent>", "<dedent>"
CONT = "##"  # marks a piece that continues the previous identifier
STR_OPEN_PREFIX = "«"  # opening token of a string: «f" ; its inner pieces follow
STR_CLOSE_PREFIX = "»"  # closing token: »"

_IDENT_PIECES = re.compile(r"_+[A-Za-z]*[a-z0-9]*|[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+|[^\W_]+")
_STRING_PIECES = re.compile(r" ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]|\s")
_STRING_TOKEN = re.compile(r"(?s)^([A-Za-z]*)('''|\"\"\"|'|\")(.*)\2$")


@lru_cache(maxsize=1)
def _spacy_tokenizer():
    import spacy

    return spacy.blank("en").tokenizer


PLACEHOLDER = re.compile(r"^(NUM|STR|NAME)\d+$")


def english_tokens(text: str) -> list[str]:
    """Lowercased spaCy tokens of a prompt; copy placeholders (`NUM0`) keep their case."""
    tokens = []
    for tok in _spacy_tokenizer()(text):
        if tok.is_space:
            continue
        tokens.append(tok.text if PLACEHOLDER.match(tok.text) else tok.text.lower())
    return tokens


def split_identifier(name: str) -> list[str]:
    """`add_twoNumbers2` -> [`add`, `##_two`, `##Numbers`, `##2`]; pieces join back exactly."""
    pieces = _IDENT_PIECES.findall(name)
    if "".join(pieces) != name:  # exotic identifier (non-ASCII mix): keep it whole
        return [name]
    return [pieces[0]] + [CONT + p for p in pieces[1:]]


def split_string(literal: str) -> list[str]:
    """`f"Sum: {x}"` -> [`«f"`, `Sum`, `:`, ` {`, `x`, `}`, `»"`]; pieces join back exactly."""
    match = _STRING_TOKEN.match(literal)
    if not match:
        return [literal]
    prefix, quote, inner = match.groups()
    pieces = _STRING_PIECES.findall(inner)
    if "".join(pieces) != inner:
        pieces = [inner]
    return [STR_OPEN_PREFIX + prefix + quote, *pieces, STR_CLOSE_PREFIX + quote]


def code_tokens(code: str) -> list[str]:
    """Tokens of Python source. Raises tokenize.TokenError / SyntaxError on untokenizable code."""
    out: list[str] = []
    for tok in tokenize.generate_tokens(io.StringIO(code).readline):
        kind = tok.type
        if kind in (tokenize.COMMENT, tokenize.NL, tokenize.ENDMARKER, tokenize.ENCODING):
            continue
        if kind == tokenize.NEWLINE:
            out.append(NL)
        elif kind == tokenize.INDENT:
            out.append(INDENT)
        elif kind == tokenize.DEDENT:
            out.append(DEDENT)
        elif kind == tokenize.NAME and not keyword.iskeyword(tok.string):
            out.extend(split_identifier(tok.string))
        elif kind == tokenize.STRING:
            out.extend(split_string(tok.string))
        elif kind == tokenize.ERRORTOKEN and not tok.string.strip():
            continue
        else:
            out.append(tok.string)
    while out and out[-1] in (NL, DEDENT):  # the end of the file says nothing
        out.pop()
    return out


def _is_wordlike(tok: str) -> bool:
    return bool(tok) and (tok[0].isalnum() or tok[0] == "_" or tok[0] in "«»")


def decode_code(tokens: list[str]) -> str:
    """Source text from code tokens. Never raises: any token sequence gives some text."""
    lines: list[str] = []
    line: list[str] = []
    depth = 0
    quote = None  # closing quote of the string being rebuilt
    prev = ""
    for tok in tokens:
        tok = str(tok)
        if quote is not None:
            if tok == STR_CLOSE_PREFIX + quote or tok in (NL, INDENT, DEDENT):
                line.append(quote)
                quote = None
                if tok.startswith(STR_CLOSE_PREFIX):
                    prev = '"'
                    continue
            else:
                line.append(tok)
                continue
        if tok == NL:
            if line:
                lines.append("    " * depth + "".join(line).strip())
            line, prev = [], ""
        elif tok == INDENT:
            depth += 1
        elif tok == DEDENT:
            depth = max(0, depth - 1)
        elif tok.startswith(STR_OPEN_PREFIX) and len(tok) > 1:
            body = tok[len(STR_OPEN_PREFIX) :]
            quote = body.lstrip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
            if quote not in ('"', "'", '"""', "'''"):
                quote = '"'
            line.append((" " if _needs_space(prev, "x") else "") + body)
            prev = "x"
        elif tok.startswith(STR_CLOSE_PREFIX):
            continue  # a closing quote with no open string: nothing to close
        elif tok.startswith(CONT) and len(tok) > len(CONT):
            line.append(tok[len(CONT) :])
            prev = tok[len(CONT) :]
        else:
            line.append((" " if _needs_space(prev, tok) else "") + tok)
            prev = tok
    if quote is not None:
        line.append(quote)
    if line:
        lines.append("    " * depth + "".join(line).strip())
    return "\n".join(lines) + ("\n" if lines else "")


_NO_SPACE_AFTER = {"(", "[", "{", ".", "~", "@"}
_NO_SPACE_BEFORE = {")", "]", "}", ",", ":", ".", "(", "[", ";"}


def _needs_space(prev: str, tok: str) -> bool:
    if not prev:
        return False
    if prev[0].isdigit() and tok == ".":
        return True  # `1 .real`, not the float `1.`
    if prev in _NO_SPACE_AFTER or tok in _NO_SPACE_BEFORE:
        return _is_wordlike(prev) and _is_wordlike(tok)
    return True
