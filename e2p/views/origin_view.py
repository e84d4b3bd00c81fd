"""What the app shows about where an answer came from: who wrote the code, where each token
came from (written, copied from the prompt, copied from the retrieved example), and which
attention head to open on. No Streamlit, and no model is run here; importing this module imports
torch, through `e2p.model.origins` (for `TokenOrigin` and the origin names). Token text is HTML-escaped
(the model can emit `<`, quotes, anything).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..model.origins import FROM_EXAMPLE, FROM_PROMPT, ORIGINS, WRITTEN, TokenOrigin, origin_split
from .code_html import MONO


class OriginStyle(NamedTuple):
    css_class: str
    css: str
    line: str  # the underline, in words, for the legend


# Colour and underline style both differ, so the marks read without telling the colours apart.
ORIGIN_STYLES = {
    WRITTEN: OriginStyle(
        "e2p-written", "background-color: #e9ecef; border-bottom: 2px solid #495057;", "solid underline"
    ),
    FROM_PROMPT: OriginStyle(
        "e2p-from-prompt", "background-color: #cfe8ff; border-bottom: 2px dashed #0b5cad;", "dashed underline"
    ),
    FROM_EXAMPLE: OriginStyle(
        "e2p-from-example", "background-color: #ffe1c2; border-bottom: 3px dotted #a04000;", "dotted underline"
    ),
}
_SPAN = "color: #1f2328; padding: 0 1px;"


# ---------------------------------------------------------------- who wrote the code


def origin_sentence(origin: str, tokens_are_code: bool = True) -> str:
    """One plain sentence saying where the shown code comes from."""
    if not tokens_are_code:
        return (
            "Retrieved, not written: no program the model wrote parsed, so this is the code of "
            "the nearest training example."
        )
    if origin == "model":
        return (
            "Written by the model, token by token: at each step it writes a token from its "
            "vocabulary or copies one from the prompt or from the retrieved training example."
        )
    if origin == "edited":
        return (
            "Retrieved, not written by the model: a training program chosen by the ranker, with "
            "this prompt's values put in."
        )
    return "Retrieved, not written by the model: a training program chosen by the ranker."


def origin_notice(origin: str, tokens_are_code: bool, origins, n_tokens: int) -> str | None:
    """Why the tokens cannot be marked by origin, or None where they can."""
    if origin != "model" or not tokens_are_code:
        return "The model did not write this code, so its tokens have no origin to mark."
    if origins is None:
        return (
            "This model has no copy attention: every token is written from its vocabulary, "
            "so there is nothing else to mark."
        )
    if len(origins) != n_tokens:
        return "The token origins do not match the shown tokens, so they are not marked."
    return None


# ---------------------------------------------------------------- where each token came from


def origin_title(origin: TokenOrigin) -> str:
    """Hover text: the origin, the copy gate and the probability each route gave the token."""
    shares = " · ".join(f"{name} {share:.3f}" for name, share in zip(ORIGINS, origin.shares))
    return f"{origin.origin} | gate {origin.gate:.2f}: {origin.gate:.0%} vocabulary | {shares}"


def _span(origin: str, text: str, title: str = "") -> str:
    style = ORIGIN_STYLES[origin]
    title_attr = f' title="{html.escape(title, quote=True)}"' if title else ""
    return f'<span class="e2p-origin {style.css_class}"{title_attr} style="{style.css} {_SPAN}">{text}</span>'


def legend_html() -> str:
    """A key to the three marks."""
    items = " ".join(
        f"{_span(name, html.escape(name))} <small>({ORIGIN_STYLES[name].line})</small>" for name in ORIGINS
    )
    style = f"{MONO}; line-height: 2; margin-bottom: 0.5em;"
    return f'<div class="e2p-origin-legend" style="{style}">{items}</div>'


def origins_html(pieces: list[str], origins: list[TokenOrigin]) -> str:
    """Code tokens (display text, as from `generate.confidence_pieces`) marked by origin."""
    if len(pieces) != len(origins):
        raise ValueError(f"{len(pieces)} tokens but {len(origins)} origins")
    spans = []
    for text, origin in zip(pieces, origins):
        if origin.origin not in ORIGIN_STYLES:
            raise ValueError(f"unknown origin {origin.origin!r}")
        title = origin_title(origin)
        if text == "\n":  # a marked blank cell, then the line break
            spans.append(_span(origin.origin, " ", title) + "<br>")
            continue
        body = text.lstrip(" ") or text  # leading spacing stays unmarked (unless it is all there is)
        lead = text[: len(text) - len(body)]
        spans.append(html.escape(lead) + _span(origin.origin, html.escape(body).replace("\n", "<br>"), title))
    return (
        f'<div class="e2p-origins" style="{MONO}; white-space: pre; line-height: 1.7; '
        f'overflow-x: auto;">{"".join(spans)}</div>'
    )


ADDED_STYLE = OriginStyle(
    "e2p-added", "background-color: #e6f4ea; border-bottom: 2px double #1e7b34;", "double underline"
)


def added_sentence(line: str) -> str:
    """Under the code: the line a rule added, said to be the rule's (plain text, no Markdown)."""
    return (
        f"The last line, {line}, was added by a rule, not written by the model: the model's code defines "
        "a function and never calls it, so the rule calls it with the prompt's values and prints the result."
    )


def added_html(line: str) -> str:
    """The completion line (e2p.answer.completion), marked as added by rule, after the marked tokens."""
    style = ADDED_STYLE
    span = (
        f'<span class="e2p-origin {style.css_class}" title="added by rule, not by the model" '
        f'style="{style.css} {_SPAN}">{html.escape(line)}</span>'
    )
    legend = f"<small>added by rule, not by the model ({style.line})</small>"
    return f'<div class="e2p-added-line" style="{MONO}; white-space: pre; line-height: 1.7;">{span} {legend}</div>'


def origin_summary(origins: list[TokenOrigin]) -> str:
    """One line: the share of the tokens from each origin."""
    split = origin_split([origins])
    if split is None:
        return "no tokens"
    return " · ".join(f"{name} {share:.0%}" for name, share in split.items())


# ---------------------------------------------------------------- which head to open on


@dataclass(frozen=True)
class HeadPick:
    layer: int
    head: int
    peak: float  # mean over rows of the largest weight in the shown columns


def peaked_head(maps: np.ndarray, columns: tuple[int, int] | None = None) -> HeadPick:
    """The (layer, head) of `maps` [L, H, rows, cols] whose rows are most peaked over
    columns[0]:columns[1]: the highest mean row maximum. The maps are drawn on a fixed 0..1
    scale, so this is the head whose map shows the clearest marks, not one whose few weights
    on the shown columns merely look sharp once rescaled."""
    maps = np.asarray(maps, dtype=float)
    if maps.ndim != 4:
        raise ValueError(f"attention maps must be 4-D (layers, heads, rows, cols), got shape {maps.shape}")
    if columns is not None:
        maps = maps[..., columns[0] : columns[1]]
    if maps.shape[2] == 0 or maps.shape[3] == 0:
        return HeadPick(0, 0, 0.0)
    peaks = np.nan_to_num(maps).max(axis=3).mean(axis=2)  # (L, H)
    layer, head = np.unravel_index(int(np.argmax(peaks)), peaks.shape)
    return HeadPick(int(layer), int(head), float(peaks[layer, head]))


def pick_caption(pick: HeadPick, layer: int | None, head: int | None) -> str:
    """Why the view opened on this layer and head (or which head it would open on)."""
    where = f"layer {pick.layer}, head {pick.head}"
    sharpness = f"mean largest weight {pick.peak:.2f} per row"
    if (layer, head) == (pick.layer, pick.head):
        return (
            f"Opened on {where}: of the cross-attention heads, it attends most sharply to the "
            f"prompt's tokens ({sharpness}), so its map is the least flat."
        )
    return (
        f"The cross-attention head that attends most sharply to the prompt's tokens is {where} "
        f"({sharpness}): its map is the least flat."
    )
