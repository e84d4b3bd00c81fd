"""HTML of generated code for the app: a line diff against the reference (Samples view) and
tokens shaded by confidence (Generate view). Black formatting is `e2p.formatting`.

Pure (no Streamlit, no model, no torch) and never raises on odd code: the model can emit anything.
Token text is HTML-escaped. The HTML emits no literal newlines between lines (``<br>`` or one
``<div>`` per line), so the markup survives Markdown renderers such as
``st.markdown(unsafe_allow_html=True)``.
"""

from __future__ import annotations

import difflib
import html

MONO = "font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.9em"  # code blocks


_DIFF_STYLES = {
    " ": "",
    "-": "background-color: #ffebe9; color: #82071e;",
    "+": "background-color: #dafbe1; color: #116329;",
}


def diff_html(reference: str, generated: str) -> str:
    """Line diff of reference vs generated code: removed lines red, added lines green."""
    ref_lines, gen_lines = reference.splitlines(), generated.splitlines()
    rows = []
    matcher = difflib.SequenceMatcher(a=ref_lines, b=gen_lines, autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal":
            rows += [(" ", line) for line in ref_lines[a0:a1]]
            continue
        rows += [("-", line) for line in ref_lines[a0:a1]]
        rows += [("+", line) for line in gen_lines[b0:b1]]
    body = "".join(
        f'<div style="white-space: pre; {_DIFF_STYLES[sign]}">' f"{sign} {html.escape(line)}</div>"
        for sign, line in rows
    )
    return f'<div class="e2p-diff" style="{MONO}; overflow-x: auto;">{body}</div>'


def _confidence_title(prob: float, alternatives: list[tuple[str, float]]) -> str:
    parts = [f"p = {prob:.3f}"]
    if alternatives:
        shown = ", ".join(f"{tok!r} {p:.3f}" for tok, p in alternatives)
        parts.append(f"alternatives: {shown}")
    return " | ".join(parts)


def confidence_html(
    tokens: list[str],
    probs: list[float],
    alternatives: list[list[tuple[str, float]]],
) -> str:
    """Code tokens shaded by probability (low = red, high = clear) with runner-up tooltips.

    ``tokens`` are display strings: ``"\\n"`` is a newline, ``"    "`` an indent.
    """
    if len(tokens) != len(probs):
        raise ValueError(f"{len(tokens)} tokens but {len(probs)} probabilities")
    spans = []
    for i, (tok, prob) in enumerate(zip(tokens, probs)):
        prob = min(max(float(prob), 0.0), 1.0)
        alts = alternatives[i] if i < len(alternatives) else []
        title = html.escape(_confidence_title(prob, alts), quote=True)
        alpha = 0.75 * (1.0 - prob)
        style = f"background-color: rgba(220, 50, 47, {alpha:.2f});"
        if tok == "\n":  # a shaded blank cell, then the line break
            spans.append(f'<span title="{title}" style="{style}"> </span><br>')
            continue
        text = html.escape(tok).replace("\n", "<br>")
        spans.append(f'<span title="{title}" style="{style}">{text}</span>')
    return (
        f'<div class="e2p-confidence" style="{MONO}; white-space: pre; '
        f'line-height: 1.5; overflow-x: auto;">{"".join(spans)}</div>'
    )
