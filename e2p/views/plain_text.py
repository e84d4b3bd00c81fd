"""Text that is not ours (a visitor's prompt, corpus text, model output, program output) shown
where Streamlit renders Markdown: captions, expander labels, alerts.

Streamlit's Markdown fetches images (`![x](http://host/p.png)` makes the visitor's browser load
any URL), and renders emphasis, `:red[...]` colours, `:material/...:` icons and `$...$` maths.
Backslash-escaping every ASCII punctuation character (CommonMark allows it for each of them)
makes all of that print as the characters typed.
"""

from __future__ import annotations

import re
import string

_ESCAPE = str.maketrans({ch: "\\" + ch for ch in string.punctuation})


def plain(text: str) -> str:
    """`text` as Markdown that shows exactly its characters, on one line."""
    return re.sub(r"\s+", " ", text).strip().translate(_ESCAPE)
