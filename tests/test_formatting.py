"""Black formatting of generated code (`e2p.formatting`): never raises, whatever the model emits."""

import pytest

from e2p.formatting import format_code
from e2p.syntax import syntax_error


def test_format_code_formats_valid_code():
    assert format_code("x=[1,2 ,3]\nprint( x )") == "x = [1, 2, 3]\nprint(x)\n"


def test_format_code_wraps_at_88_columns():
    args = ", ".join(f"argument_{i}" for i in range(12))
    out = format_code(f"result = some_function({args})\n")
    assert max(len(line) for line in out.splitlines()) <= 88
    assert len(out.splitlines()) > 1


def test_format_code_leaves_invalid_code_unchanged():
    for code in ["def (", "x = (1,\n", "print 'a'", "for x in :\n  pass"]:
        assert format_code(code) == code


def _without_layout(code: str) -> str:
    return "".join(ch for ch in code if ch not in " \n()")


@pytest.mark.parametrize(
    "garbage, formatted, line, message",
    [
        ("\x00", "\x00", 1, "null bytes"),
        ("x = 1\x00", "x = 1\x00", 1, "null bytes"),
        ("def (", "def (", 1, "invalid syntax"),
        ("", "", None, None),
        ("\ufeff", "", 1, "U+FEFF"),  # black drops a lone byte-order mark; compile rejects it
        ("(" * 500, "(" * 500, 1, "too many nested parentheses"),
        ("x = " + "1 + " * 3000 + "1", None, 1, "RecursionError"),  # formatted: parenthesised, same tokens
    ],
)
def test_format_code_and_syntax_error_never_raise(garbage, formatted, line, message):
    out = format_code(garbage)
    if formatted is None:
        assert out != garbage and _without_layout(out) == _without_layout(garbage)
    else:
        assert out == formatted  # code black cannot format comes back unchanged
    error = syntax_error(garbage)
    if line is None:
        assert error is None
    else:
        assert error[0] == line and message in error[1], error
