"""Code tokens decode back to the same AST; decode_code never raises; English tokens."""

from __future__ import annotations

import ast
import random
import tokenize

import pytest
from conftest import ast_dump
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from e2p.data.tokenizers import (
    CONT,
    DEDENT,
    INDENT,
    NL,
    code_tokens,
    decode_code,
    english_tokens,
    split_identifier,
    split_string,
)

pytestmark = pytest.mark.filterwarnings("ignore::SyntaxWarning", "ignore::DeprecationWarning")


def _round_trip(code: str) -> str:
    return decode_code(code_tokens(code))


SNIPPETS = {
    "fstrings": 'x = 3\nprint(f"value: {x!r:>10} and {x * 2}")\nprint(f\'{x}\' F"{{literal}} {x}")\n',
    "triple_quoted": (
        'def f():\n    """Docstring\n    spanning lines\n\n    with a blank one."""\n'
        "    s = '''a\n  b  '''\n    return s\n"
    ),
    "bytes_and_raw": 'a = b"\\x00\\xff"\nb = r"\\d+\\s*"\nc = rb\'\\n\'\nd = Rb"x"\ne = u"text"\nf = BR"y"\n',
    "nested_blocks": (
        "class A:\n    def m(self):\n        for i in range(3):\n            if i:\n"
        "                while False:\n                    pass\n            else:\n"
        "                try:\n                    x = 1\n"
        "                except (ValueError, TypeError) as e:\n                    raise\n"
        "                finally:\n                    y = 2\n        return 1\nz = A()\n"
    ),
    "decorators": (
        "import functools\n@functools.lru_cache(maxsize=None)\ndef f(n):\n    return n\n"
        "class B:\n    @property\n    def p(self):\n        return 1\n"
        "    @staticmethod\n    def s(): return 2\n"
    ),
    "lambdas": "f = lambda x, *a, k=1, **kw: x + k\ng = lambda: 0\nh = sorted([3, 1], key=lambda t: -t)\n",
    "relative_imports": (
        "from . import x\nfrom .. import y\nfrom ... import z\nfrom .mod import w as v\n"
        "import os.path as osp\nfrom os import *\n"
    ),
    "numbers": (
        "a = 1 .real\nb = 1.0 .real\nc = 0x1F + 0o17 + 0b101 + 1_000_000\n"
        "d = 1e-5 + 2.5E+3 + 3j + .5\ne = (1).bit_length()\nf = x2 .append\ng = -1 ** -2\n"
    ),
    "comprehensions": (
        'd = {k: v for k, v in {"a": 1}.items() if v}\ns = {x * x for x in range(5)}\n'
        "g = list(x for x in s)\nl = [[i, j] for i in range(2) for j in range(i)]\n"
    ),
    "line_continuations": (
        "total = 1 + \\\n    2 + \\\n    3\nif (total > 1 and\n        total < 10):\n"
        "    values = [1,\n              2]\n"
    ),
    "async": (
        "import asyncio\nasync def main():\n    async with lock:\n        await asyncio.sleep(0)\n"
        "    async for x in gen():\n        print(x)\n    return [y async for y in gen()]\n"
    ),
    "walrus": 'if (n := len("abc")) > 2:\n    print(n)\nwhile (line := input()) != "q":\n    pass\n',
    "unicode": "s = \"héllo wörld ✓ 🐍 中文\"\ncafé = 'naïve'\nπ = 3.14159\nprint(s, café, π)\n",
    "signatures_and_operators": (
        "def f(a, /, b, *, c) -> int:\n    global g\n    x: int = 5\n    del x\n"
        '    assert a, "msg"\n    return a @ b if a is not None else not c\n'
        'x = [*range(3), *"ab"]\ny = {**{}, "k": ...}\n'
        'print(x[1:2], x[::-1], y, sep="", end="\\n")\na = 1; b = 2\n'
        "class C(object, metaclass=type): pass\n"
    ),
    "string_edge_cases": (
        'a = ""\nb = \'\'\nc = """"""\nd = "it\'s"\ne = \'say "hi"\'\nf = "a" "b" \'c\'\n'
        'g = "tab\\there"\nh = "  spaced  "\ni = "«»##<nl><indent>"\nj = "a\\\nb"\n'
    ),
    "match_statement": (
        'match command:\n    case [x, y]:\n        pass\n    case {"k": v}:\n        pass\n'
        "    case Point(x=0) | None:\n        pass\n    case _:\n        pass\n"
    ),
    "dunder_and_identifiers": (
        "class K:\n    def __init__(self):\n        self._x = getHTTPResponseCode2(is_valid, if_x)\n"
    ),
    "comments_and_blank_lines": "# hello\nx = 1  # trailing\n\n\n    # odd\n# end\n",
    "empty": "",
}


@pytest.mark.parametrize("name", list(SNIPPETS))
def test_round_trip_keeps_theast_dump(name):
    code = SNIPPETS[name]
    assert ast_dump(_round_trip(code)) == ast_dump(code)


def test_tokens_are_readable():
    code = 'def add_two(x):\n    if x:\n        return f"Sum: {x}"\n    return 0\n'
    assert code_tokens(code) == [
        "def", "add", "##_two", "(", "x", ")", ":", NL,
        INDENT, "if", "x", ":", NL,
        INDENT, "return", '«f"', "Sum", ":", " {", "x", "}", '»"', NL,
        DEDENT, "return", "0",
    ]  # fmt: skip


def test_keywords_are_not_split():
    assert code_tokens("is_x = not_y") == ["is", "##_x", "=", "not", "##_y"]
    assert code_tokens("x is not None") == ["x", "is", "not", "None"]


def test_decode_code_indents_four_spaces_and_ends_with_newline():
    assert decode_code(["if", "x", ":", NL, INDENT, "y", "=", "1", NL, DEDENT, "z", "=", "2"]) == (
        "if x:\n    y = 1\nz = 2\n"
    )
    assert decode_code([]) == ""


def test_code_tokens_rejects_untokenizable_code():
    with pytest.raises((tokenize.TokenError, SyntaxError)):
        code_tokens('x = """never closed\n')


@pytest.mark.parametrize(
    "literal",
    [
        '""',
        "''",
        '""""""',
        '"a b"',
        "f'{x}'",
        'rb"\\x00"',
        '"""multi\nline  """',
        '"«»"',
        '"🐍 中文"',
    ],
)
def test_split_string_joins_back(literal):
    pieces = split_string(literal)
    assert pieces[0].startswith("«") and pieces[-1].startswith("»")
    assert pieces[0][1:] + "".join(pieces[1:-1]) + pieces[-1][1:] == literal


@pytest.mark.parametrize(
    "name, pieces",
    [
        ("add_two_numbers", ["add", "##_two", "##_numbers"]),
        ("bcdToDecimal", ["bcd", "##To", "##Decimal"]),
        ("HTTPServer", ["HTTP", "##Server"]),
        ("getHTTPResponseCode2", ["get", "##HTTP", "##Response", "##Code", "##2"]),
        ("num2", ["num", "##2"]),
        ("x2y", ["x", "##2", "##y"]),
        ("list1_2", ["list", "##1", "##_2"]),
        ("CONSTANT_VALUE", ["CONSTANT", "##_VALUE"]),
        ("__init__", ["__init", "##__"]),
        ("_", ["_"]),
        ("x", ["x"]),
    ],
)
def test_split_identifier(name, pieces):
    assert split_identifier(name) == pieces
    assert _join(pieces) == name


def _join(pieces: list[str]) -> str:
    assert not pieces[0].startswith(CONT)
    assert all(p.startswith(CONT) for p in pieces[1:])
    return pieces[0] + "".join(p[len(CONT) :] for p in pieces[1:])


@settings(max_examples=300, deadline=None)
@given(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,24}", fullmatch=True))
def test_split_identifier_always_joins_back(name):
    assert _join(split_identifier(name)) == name


@pytest.mark.parametrize("name", ["café", "naïve_x", "π", "变量", "x_π2"])
def test_split_identifier_non_ascii(name):
    assert _join(split_identifier(name)) == name
    code = f"{name} = 1\nprint({name})\n"
    assert ast_dump(_round_trip(code)) == ast_dump(code)


# ----------------------------------------------------------------------------- decode never raises

POOL = [
    NL, INDENT, DEDENT, "«\"", "»\"", "«f'", "»'", "«'''", "»'''", "«rb\"", "«zz\"", "«", "»", "»\"\"\"",
    "##", "##_x", "##2", "##»", "x", "def", "if", "(", ")", "[", "]", "{", "}", ":", "1", ".", "real",
    "@", "\n", "  ", "", "#", "\\", "'", '"', "<unk>", "<pad>", "<bos>", "<eos>", "NUM0", "STR1",
    "NAME2", "\x00", "🐍", "中文", "\ud800",
]  # fmt: skip


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.sampled_from(POOL), st.text(max_size=6)), max_size=60))
def test_decode_code_never_raises_hypothesis(tokens):
    _check_decoded(tokens, decode_code(tokens))


def _kept_text(tokens) -> str:
    """What decode_code must write, whitespace aside: every token's text, less layout tokens and
    stray closing quotes, `##` pieces glued on, and each string closed by its own quote."""
    out, quote = [], None
    for tok in map(str, tokens):
        if quote is not None:
            if tok == "»" + quote or tok in (NL, INDENT, DEDENT):
                out.append(quote)
                quote = None
                if tok.startswith("»"):
                    continue
            else:
                out.append(tok)
                continue
        if tok in (NL, INDENT, DEDENT) or tok.startswith("»"):
            continue
        if tok.startswith("«") and len(tok) > 1:
            quote = tok[1:].lstrip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
            quote = quote if quote in ('"', "'", '"' * 3, "'" * 3) else '"'
            out.append(tok[1:])
        else:
            out.append(tok[len(CONT) :] if tok.startswith(CONT) and len(tok) > len(CONT) else tok)
    if quote is not None:
        out.append(quote)
    return "".join("".join(out).split())


def _check_decoded(tokens, out) -> None:
    assert isinstance(out, str)
    assert out == "" or out.endswith("\n")
    assert "".join(out.split()) == _kept_text(tokens)  # no text lost or made up, whatever the soup


def test_decode_code_never_raises_seeded_soup():
    rng = random.Random(1234)
    for _ in range(3000):
        tokens = [rng.choice(POOL) for _ in range(rng.randint(0, 40))]
        _check_decoded(tokens, decode_code(tokens))


def test_decode_code_accepts_non_string_tokens():
    assert decode_code([1, None, 2.5, NL]) == "1 None 2.5\n"


def test_decode_closes_an_unterminated_string():
    out = decode_code(["x", "=", '«"', "abc", NL, "y", "=", "1"])
    assert ast.parse(out)


# ----------------------------------------------------------------------------- English


def test_english_tokens_lowercase_but_keep_placeholders():
    assert english_tokens("Print the SUM of NUM0 and NUM1, then STR0 to NAME3.") == [
        "print", "the", "sum", "of", "NUM0", "and", "NUM1", ",", "then", "STR0", "to", "NAME3", ".",
    ]  # fmt: skip


def test_english_tokens_spacing_and_punctuation():
    assert english_tokens("  Write a Python\tprogram\n to add 2 numbers!  ") == [
        "write", "a", "python", "program", "to", "add", "2", "numbers", "!",
    ]  # fmt: skip
    assert english_tokens("") == []


@pytest.mark.parametrize(
    "text, expected",
    [
        ("print 🐍 and 👍🏽 emoji", ["print", "🐍", "and", "👍", "🏽", "emoji"]),
        ("中文 句子 打印", ["中文", "句子", "打印"]),
        ("اطبع مجموع الأرقام", ["اطبع", "مجموع", "الأرقام"]),
        ("Ünïcödé ß ΣΑΣ", ["ünïcödé", "ß", "σας"]),
        ("\u200b\ufeff", ["\u200b\ufeff"]),  # not whitespace to spaCy: kept as one token
        ("\x00", ["\x00"]),
    ],
)
def test_english_tokens_other_scripts_do_not_crash(text, expected):
    assert english_tokens(text) == expected  # every word kept, lowercased


def test_code_tokens_with_emoji_and_other_scripts():
    code = 'msg = "🐍 中文 عربى"\nprint(msg)\n'
    assert ast_dump(_round_trip(code)) == ast_dump(code)


# ----------------------------------------------------------------------------- the real corpus


@pytest.mark.slow
def test_full_corpus_round_trip_is_exact(full_corpus):
    examples = full_corpus.examples
    failures = [ex.line for ex in examples if ast_dump(_round_trip(ex.code)) != ast_dump(ex.code)]
    assert len(examples) > 2500
    assert failures == []
