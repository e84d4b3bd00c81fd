"""Text that is not ours, shown where Streamlit renders Markdown, prints as typed."""

from __future__ import annotations

import string

import pytest

from e2p.views.plain_text import plain


@pytest.mark.parametrize(
    "text",
    [
        "![x](http://host/p.png)",
        "**b** and _i_ and ~~s~~",
        ":red[red] :material/home: :smile:",
        "$x^2$ and $$y$$",
        "# heading\n1. item\n- item\n> quote",
        "<img src=x onerror=alert(1)> &amp;",
        "[link](javascript:alert(1)) www.example.com",
        "a \\*backslash\\* already",
    ],
)
def test_every_markdown_sign_is_escaped(text):
    shown = plain(text)
    # Each ASCII punctuation mark is preceded by a backslash, so CommonMark prints it as itself.
    i = 0
    while i < len(shown):
        if shown[i] == "\\":
            assert shown[i + 1] in string.punctuation, (shown, i)
            i += 2
            continue
        assert shown[i] not in string.punctuation, (shown, i)
        i += 1
    # and taking the escapes away gives back the text, whitespace folded to single spaces
    assert shown.replace("\\\\", "\0").replace("\\", "").replace("\0", "\\") == " ".join(text.split())


def test_plain_words_are_unchanged():
    assert plain("reverse a string  in python\n") == "reverse a string in python"
