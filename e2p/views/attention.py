"""What the Attention view shows: which maps of a result a picker selects (kind, layer, head),
their titles and file names, the window of rows drawn for long outputs, how a token's attention
splits over the parts of the source, and the JSON download.

No Streamlit, no torch: a result's maps are numpy arrays. Figures are `figures`.
"""

from __future__ import annotations

import json

import numpy as np

from ..data.features import CODE, SEP
from .figures import axis_labels

WINDOW = 40  # attention rows shown at once for long outputs
ATTENTION_KINDS = {
    "cross": "Cross-attention (code tokens × English tokens)",
    "decoder": "Decoder self-attention (code × code)",
    "encoder": "Encoder self-attention (English × English)",
}


def attention_parts(result, kind: str) -> tuple[np.ndarray, list[str], list[str]]:
    """(maps [L, H, rows, cols], row tokens, column tokens) of one attention kind of a result.

    Rows are query positions, columns key positions: cross-attention rows are the predicted
    code tokens and columns the English source; decoder self-attention rows are the predicted
    tokens and columns the decoder input (<bos> + generated); encoder rows and columns are the
    source.
    """
    if kind not in ATTENTION_KINDS:
        raise ValueError(f"attention kind must be one of {', '.join(ATTENTION_KINDS)}, got {kind!r}")
    if not result.attention or kind not in result.attention:
        raise ValueError("this result holds no attention maps (generated with attention=False)")
    maps = np.asarray(result.attention[kind], dtype=float)
    rows, cols = {
        "encoder": (result.src_tokens, result.src_tokens),
        "decoder": (result.tgt_tokens, result.tgt_input_tokens),
        "cross": (result.tgt_tokens, result.src_tokens),
    }[kind]
    if maps.ndim != 4 or maps.shape[2] != len(rows) or maps.shape[3] != len(cols):
        raise ValueError(
            f"{kind} attention has shape {maps.shape} but {len(rows)} row and " f"{len(cols)} column tokens"
        )
    return maps, list(rows), list(cols)


ALL, MEAN = "all", "mean"  # picker choices: mean over every layer / over the heads of a layer


def layer_head(layer, head) -> tuple[int | None, int | None]:
    """Picker values to (layer, head) indices; None means averaged (a head needs a layer)."""
    layer = None if layer == ALL else int(layer)
    head = None if layer is None or head == MEAN else int(head)
    return layer, head


def select_matrix(maps: np.ndarray, layer: int | None, head: int | None) -> np.ndarray:
    """One head's matrix; head None = mean over the layer's heads; layer None = over all."""
    maps = np.asarray(maps, dtype=float)
    if layer is None:
        return maps.mean(axis=(0, 1))
    if head is None:
        return maps[layer].mean(axis=0)
    return maps[layer, head]


KIND_NAMES = {"cross": "Cross-attention", "decoder": "Decoder self-attention", "encoder": "Encoder self-attention"}


def where_label(layer: int | None, head: int | None) -> str:
    if layer is None:
        return "mean of all layers and heads"
    return f"layer {layer}, mean of heads" if head is None else f"layer {layer}, head {head}"


def map_title(kind: str, layer: int | None, head: int | None) -> str:
    return f"{KIND_NAMES[kind]} — {where_label(layer, head)}"


def png_name(kind: str, layer: int | None, head: int | None) -> str:
    """File name (no extension) Plotly's camera button gives the PNG of a figure."""
    return (
        f"e2p-{kind}-"
        + ("all" if layer is None else f"L{layer}")
        + ("" if layer is None else "-mean" if head is None else f"-H{head}")
    )


def needs_window(n_rows: int, size: int = WINDOW) -> bool:
    return n_rows > size


def window_bounds(start: int, n_rows: int, size: int = WINDOW) -> tuple[int, int]:
    """(start, end) of a window of at most `size` rows that lies inside 0..n_rows."""
    size = max(1, min(size, n_rows))
    start = max(0, min(int(start), n_rows - size))
    return start, start + size


def source_parts(src_tokens: list[str]) -> dict[str, tuple[int, int]]:
    """Spans of the encoder input: the user's prompt, then (with retrieval) the retrieved
    example's prompt after `<sep>` and its code after `<code>`."""
    n = len(src_tokens)
    sep = src_tokens.index(SEP) if SEP in src_tokens else n
    code = src_tokens.index(CODE) if CODE in src_tokens[sep:] else n
    parts = {"prompt": (0, sep)}
    if sep < n:
        parts["retrieved prompt"] = (sep + 1, code)
    if code < n:
        parts["retrieved code"] = (code + 1, n)
    return parts


def token_attention(result, index: int, layer: int | None, head: int | None) -> np.ndarray:
    """Cross-attention weights over the source tokens for predicted token `index`."""
    maps, rows, _ = attention_parts(result, "cross")
    if not 0 <= index < len(rows):
        raise ValueError(f"token index {index} out of range for {len(rows)} generated tokens")
    return select_matrix(maps, layer, head)[index]


def attention_shares(src_tokens: list[str], weights: np.ndarray) -> dict[str, float]:
    """Fraction of a token's attention that fell on each part of the source."""
    weights = np.asarray(weights, dtype=float)
    total = float(weights.sum()) or 1.0
    return {name: float(weights[a:b].sum()) / total for name, (a, b) in source_parts(src_tokens).items()}


def top_tokens(tokens: list[str], weights: np.ndarray, k: int = 5) -> list[tuple[str, float]]:
    """The k most attended tokens, position-labelled ("3:add"), heaviest first."""
    weights = np.asarray(weights, dtype=float)
    labels = axis_labels(tokens)
    order = np.argsort(-weights, kind="stable")[:k]
    return [(labels[i], float(weights[i])) for i in order]


def attention_json(result, decimals: int = 4) -> str:
    """The maps of a result with their token labels, as JSON (bertviz-like contract)."""
    doc = {
        "prompt": result.prompt,
        "code": result.code,
        "orientation": "rows are query positions, columns are key positions",
        "tokens": {"source": result.src_tokens, "target": result.tgt_tokens, "target_input": result.tgt_input_tokens},
        "maps": {},
    }
    for kind in ATTENTION_KINDS:
        if kind not in (result.attention or {}):
            continue
        maps, rows, cols = attention_parts(result, kind)
        doc["maps"][kind] = {
            "shape": list(maps.shape),
            "axes": ["layer", "head", "row", "column"],
            "rows": {"cross": "target", "decoder": "target", "encoder": "source"}[kind],
            "columns": {"cross": "source", "decoder": "target_input", "encoder": "source"}[kind],
            "weights": np.round(maps, decimals).tolist(),
        }
    return json.dumps(doc, ensure_ascii=False)
