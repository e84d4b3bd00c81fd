"""Copying from the prompt: numbers, quoted strings and names become indexed placeholders.

"print the sum of 15 and 27" becomes "print the sum of NUM0 and NUM1"; where the code uses 15
and 27 it holds NUM0 and NUM1 too, and after decoding the placeholders are put back. So the model
learns *where* a prompt's values go rather than the values themselves, and values it never saw
still reach the code.
"""

from __future__ import annotations

import builtins
import keyword
import re
from dataclasses import dataclass, field

from .tokenizers import CONT, STR_CLOSE_PREFIX, STR_OPEN_PREFIX, code_tokens, split_string

MAX_SLOTS = 8  # placeholders per kind; a prompt rarely holds more distinct values than this

_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.]*\w)")
_QUOTED = re.compile(r"""(?<!\w)(["'])([^"'\n]{1,80}?)\1(?!\w)""")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RESERVED = set(keyword.kwlist) | set(dir(builtins))


def _is_name(word: str) -> bool:
    """Identifier-looking prompt words (`my_list`, `bcdToDecimal`, `num1`), not plain English."""
    if word in _RESERVED or len(word) < 2:
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

    def number(m: re.Match) -> str:
        name = slot(slots.numbers, m.group(0), "NUM")
        return name or m.group(0)

    def word(m: re.Match) -> str:
        if not _is_name(m.group(0)) or re.fullmatch(r"(NUM|STR|NAME)\d+", m.group(0)):
            return m.group(0)
        name = slot(slots.names, m.group(0), "NAME")
        return name or m.group(0)

    text = _QUOTED.sub(quoted, prompt)
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
    """Put the values back; a placeholder with no value stays as an identifier-like token."""
    mapping = slots.mapping()
    out: list[str] = []
    for tok in tokens:
        value = mapping.get(tok)
        if value is None:
            out.append(tok)
        elif tok.startswith("STR"):
            in_string = bool(out) and out[-1].startswith(STR_OPEN_PREFIX)
            out.extend([value] if in_string else split_string(repr(value)))
        else:
            out.append(value)
    return out


def abstract_example(prompt: str, code: str) -> tuple[str, list[str], Slots]:
    text, slots = abstract_prompt(prompt)
    return text, abstract_code(code_tokens(code), slots), slots
