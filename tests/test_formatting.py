import pytest

from e2p.formatting import (
    confidence_html,
    diff_html,
    format_code,
)
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


def test_diff_html_marks_added_and_removed_lines_and_escapes():
    ref = "x = 1\nprint(x)\n"
    gen = "x = 1\nprint('<b>')\n"
    out = diff_html(ref, gen)
    assert "<b>" not in out
    assert "&lt;b&gt;" in out
    assert "- print(x)" in out
    assert "+ print(&#x27;&lt;b&gt;&#x27;)" in out
    assert "  x = 1" in out
    assert "#ffebe9" in out and "#dafbe1" in out  # removed and added colours


def test_diff_html_identical_has_no_changes():
    out = diff_html("a = 1\n", "a = 1\n")
    assert "#ffebe9" not in out and "#dafbe1" not in out


def test_confidence_html_escapes_and_titles_every_token():
    tokens = ["if", " ", "x", " ", "<", " ", "y", ":", "\n", "    ", "print", "(", "'&'", ")"]
    probs = [0.9, 1.0, 0.2, 1.0, 0.5, 1.0, 0.99, 1.0, 0.95, 1.0, 0.8, 1.0, 0.1, 1.0]
    alternatives = [[("<b>", 0.05), ("elif", 0.03)]] + [[] for _ in tokens[1:]]
    out = confidence_html(tokens, probs, alternatives)
    assert out.count("title=") == len(tokens)
    assert out.count("<span") == len(tokens)
    assert "<b>" not in out
    assert "&lt;b&gt;" in out  # runner-up escaped inside the tooltip
    assert "&lt;" in out and "&#x27;&amp;&#x27;" in out
    assert "<br>" in out
    assert "\n" not in out  # markdown-safe: line breaks are <br>
    assert "p = 0.200" in out


def test_confidence_html_shades_low_probability_more():
    out = confidence_html(["a", "b"], [0.0, 1.0], [[], []])
    assert "rgba(220, 50, 47, 0.75)" in out
    assert "rgba(220, 50, 47, 0.00)" in out


def test_confidence_html_length_mismatch():
    with pytest.raises(ValueError):
        confidence_html(["a", "b"], [0.5], [[]])
