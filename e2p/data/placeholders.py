"""Copying from the prompt: numbers, quoted strings and names become indexed placeholders.

"print the sum of 15 and 27" becomes "print the sum of NUM0 and NUM1"; where the code uses 15
and 27 it holds NUM0 and NUM1 too, and after decoding the placeholders are put back. So the model
learns *where* a prompt's values go rather than the values themselves, and values it never saw
still reach the code. A value in backticks (CoNaLa's intents: "sort list `my_list`", "the format
`%Y-%m-%d`") is a name where it is an identifier, even a short or plain one (`df`, `s`), a number
where it is a numeral, a string where it is no Python expression; an expression (`[1, 2]`) keeps
its text, whose own quoted strings, numbers and names are slots as anywhere else.

Prompt text is hostile until shown otherwise, so values go back only in forms that cannot change
how the code around them is read: a quoted value only as a whole string literal written by
`repr`, a number only as a short plain numeral, a name only as an ordinary identifier (no
keyword, builtin, standard module or dunder).
"""

from __future__ import annotations

import ast
import builtins
import keyword
import re
import sys
import warnings
from dataclasses import dataclass, field

from .tokenizers import CONT, DEDENT, INDENT, NL, STR_CLOSE_PREFIX, STR_OPEN_PREFIX, code_tokens, split_string

MAX_SLOTS = 8  # placeholders per kind; a prompt rarely holds more distinct values than this
MAX_NUMBER_CHARS = 20  # longer numbers stay prompt text (train prompts hold at most 4 digits)

_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.]*\w)")
_NUMERAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_QUOTED = re.compile(r"""(?<!\w)(["'])([^"'\n]{1,80}?)\1(?!\w)""")
_BACKTICKED = re.compile(r"`([^`\n]{1,80})`")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RESERVED = set(keyword.kwlist) | set(keyword.softkwlist) | set(dir(builtins)) | set(sys.stdlib_module_names)


def is_numeral(value: str) -> bool:
    """A plain decimal numeral short enough that no computation on it blows up."""
    return len(value) <= MAX_NUMBER_CHARS and bool(_NUMERAL.fullmatch(value))


def is_safe_name(word: str) -> bool:
    """An identifier a prompt may put in code: not a keyword, builtin, standard module or dunder."""
    return bool(_WORD.fullmatch(word)) and word not in _RESERVED and not word.startswith("__")


def _is_name(word: str) -> bool:
    """Identifier-looking prompt words (`my_list`, `bcdToDecimal`, `num1`), not plain English."""
    if not is_safe_name(word) or len(word) < 2:
        return False
    return "_" in word.strip("_") or bool(re.search(r"[a-z][A-Z]|[A-Za-z]\d", word))


@dataclass
class Slots:
    """Which value each placeholder stands for, in order of first mention."""

    numbers: list[str] = field(default_factory=list)
    strings: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)

    def mapping(self) -> dict[str, str]:
        out = {f"NUM{i}": v for i, v in enumerate(self.numbers)}
        out.update({f"STR{i}": v for i, v in enumerate(self.strings)})
        out.update({f"NAME{i}": v for i, v in enumerate(self.names)})
        return out

    def __bool__(self) -> bool:
        return bool(self.numbers or self.strings or self.names)


def _is_expression(text: str) -> bool:
    """Whether `text` reads as one Python expression (parsed, never run)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(text.strip(), mode="eval")
        return True
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False


def all_placeholders() -> list[str]:
    return [f"{kind}{i}" for kind in ("NUM", "STR", "NAME") for i in range(MAX_SLOTS)]


def abstract_prompt(prompt: str) -> tuple[str, Slots]:
    """Replace the prompt's quoted strings, numbers and identifier-like names by placeholders."""
    slots = Slots()

    def slot(values: list[str], value: str, kind: str) -> str | None:
        if value not in values:
            if len(values) >= MAX_SLOTS:
                return None
            values.append(value)
        return f"{kind}{values.index(value)}"

    def quoted(m: re.Match) -> str:
        name = slot(slots.strings, m.group(2), "STR")
        return f" {name} " if name else m.group(0)

    def backticked(m: re.Match) -> str:
        value = m.group(1).strip()
        if is_safe_name(value) and not re.fullmatch(r"(NUM|STR|NAME)\d+", value):
            name = slot(slots.names, value, "NAME")
        elif is_numeral(value):
            name = slot(slots.numbers, value, "NUM")
        elif value and not _is_expression(value):
            name = slot(slots.strings, m.group(1), "STR")
        else:  # an expression, or a reserved word: its text stays, the later passes read inside it
            return m.group(0)
        return f" {name} " if name else m.group(0)

    def number(m: re.Match) -> str:
        name = slot(slots.numbers, m.group(0), "NUM") if is_numeral(m.group(0)) else None
        return name or m.group(0)

    def word(m: re.Match) -> str:
        if not _is_name(m.group(0)) or re.fullmatch(r"(NUM|STR|NAME)\d+", m.group(0)):
            return m.group(0)
        name = slot(slots.names, m.group(0), "NAME")
        return name or m.group(0)

    text = _BACKTICKED.sub(backticked, prompt)
    text = _QUOTED.sub(quoted, text)
    text = _NUMBER.sub(number, text)
    text = _WORD.sub(word, text)
    return re.sub(r"\s+", " ", text).strip(), slots


def abstract_code(tokens: list[str], slots: Slots) -> list[str]:
    """Code tokens with the prompt's values replaced by the placeholders of `slots`."""
    numbers = {v: f"NUM{i}" for i, v in enumerate(slots.numbers)}
    names = {v: f"NAME{i}" for i, v in enumerate(slots.names)}
    strings = {v: f"STR{i}" for i, v in enumerate(slots.strings)}
    out: list[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.startswith(STR_OPEN_PREFIX):  # a whole string literal equal to a quoted prompt value
            end = next((j for j in range(i + 1, len(tokens)) if tokens[j].startswith(STR_CLOSE_PREFIX)), None)
            if end is not None and "".join(tokens[i + 1 : end]) in strings:
                out += [tok, strings["".join(tokens[i + 1 : end])], tokens[end]]
                i = end + 1
                continue
        if not tok.startswith(CONT):  # a whole identifier: this piece and its continuations
            end = i + 1
            while end < len(tokens) and tokens[end].startswith(CONT):
                end += 1
            whole = tok + "".join(t[len(CONT) :] for t in tokens[i + 1 : end])
            if whole in names:
                out.append(names[whole])
                i = end
                continue
            if end == i + 1 and tok in numbers:
                out.append(numbers[tok])
                i += 1
                continue
        out.append(tok)
        i += 1
    return out


def restore_code(tokens: list[str], slots: Slots) -> list[str]:
    """Put the values back; a placeholder with no valid value stays as an identifier-like token.

    A quoted value is never pasted inside a literal: where its placeholder is a literal's whole
    content the literal is replaced by one of its own, elsewhere inside a literal the placeholder
    stays as text. Numbers and names go back inside literals too: their characters (letters,
    digits, `_`, `.`) cannot end a literal, escape a quote or open an f-string field."""
    mapping = {k: v for k, v in slots.mapping().items() if _valid(k, v)}
    out: list[str] = []
    close = None  # the token that ends the literal being copied, as decode_code reads it
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        value = mapping.get(tok)
        if close is not None:
            if tok == close or tok in (NL, INDENT, DEDENT):
                close = None
            elif value is not None and not tok.startswith("STR"):
                tok = value
            out.append(tok)
        elif tok.startswith(STR_OPEN_PREFIX) and len(tok) > 1:
            body = tok[len(STR_OPEN_PREFIX) :]
            quote = body.lstrip(_LETTERS)
            prefix, quote = body[: len(body) - len(quote)], quote if quote in _QUOTES else '"'
            close = STR_CLOSE_PREFIX + quote
            inner = tokens[i + 1] if i + 1 < len(tokens) else ""
            whole = prefix + quote == body and tokens[i + 2 : i + 3] == [close]  # the literal is just `inner`
            if whole and inner.startswith("STR") and inner in mapping:
                out.extend(split_string(_string_literal(mapping[inner], prefix, quote)))
                close, i = None, i + 3
                continue
            out.append(tok)
        elif value is None:
            out.append(tok)
        else:
            out.extend(split_string(repr(value)) if tok.startswith("STR") else [value])
        i += 1
    return out


_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_QUOTES = ('"', "'", '"""', "'''")


def _valid(placeholder: str, value: str) -> bool:
    if placeholder.startswith("NUM"):
        return is_numeral(value)
    if placeholder.startswith("NAME"):
        return is_safe_name(value)
    return True  # a quoted value only ever goes back through repr


def _string_literal(value: str, prefix: str, quote: str) -> str:
    """`value` as one whole literal: the original prefix and quotes where they read it unchanged
    (nothing to escape, no quote of that kind, ASCII for bytes, no braces for an f-string), else repr."""
    kinds = prefix.lower()
    if (
        repr(value)[1:-1] == value
        and quote[0] not in value
        and ("f" not in kinds or not {"{", "}"} & set(value))
        and ("b" not in kinds or value.isascii())
    ):
        return prefix + quote + value + quote
    return repr(value)


def abstract_example(prompt: str, code: str) -> tuple[str, list[str], Slots]:
    text, slots = abstract_prompt(prompt)
    return text, abstract_code(code_tokens(code), slots), slots
