"""The app's HTML of code: the diff against the reference and the confidence shading."""

import pytest

from e2p.views.code_html import confidence_html, diff_html


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
