"""Plotly figures of the app: attention maps, training curves, metrics; and the Plotly config
they are drawn with. Pure functions (no Streamlit, no torch).

Orientation, fixed here once: rows (y) are query positions, columns (x) are key positions.
Cross-attention: rows = generated code tokens, columns = English source tokens.
Decoder self-attention: code x code. Encoder self-attention: English x English.
"""

from __future__ import annotations

import html
import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

_GLYPHS = {"<nl>": "↵", "\n": "↵", "<indent>": "⇥", "<dedent>": "⇤"}
_COLORSCALE = "Blues"
_HOVER = "%{customdata[0]} → %{customdata[1]}: %{z:.3f}<extra></extra>"
_ROW_PX, _MIN_HEIGHT, _MAX_HEIGHT = 22, 320, 900


def display_token(tok: str) -> str:
    """Readable glyph for a token: newline, indent, dedent, spaces and empty made visible."""
    if tok in _GLYPHS:
        return _GLYPHS[tok]
    if tok == "":
        return "∅"
    return tok.replace("\n", "↵").replace("\t", "⇥").replace(" ", "·")


def axis_labels(tokens: list[str]) -> list[str]:
    """Position-prefixed labels ("3:print"): unique, so Plotly never merges duplicates."""
    return [f"{i}:{display_token(tok)}" for i, tok in enumerate(tokens)]


def plotly_config(filename: str) -> dict:
    """Plotly config: mode bar always on, its camera button saves a 2× PNG named `filename`."""
    return {
        "displayModeBar": True,
        "displaylogo": False,
        "scrollZoom": True,
        "toImageButtonOptions": {"format": "png", "filename": filename, "scale": 2},
    }


def _check_shape(matrix: np.ndarray, row_tokens: list[str], col_tokens: list[str]) -> None:
    if matrix.ndim != 2:
        raise ValueError(f"attention matrix must be 2-D (rows, cols), got shape {matrix.shape}")
    rows, cols = matrix.shape
    if len(row_tokens) != rows or len(col_tokens) != cols:
        raise ValueError(
            f"attention matrix has shape {matrix.shape} (rows = query tokens, cols = key "
            f"tokens) but got {len(row_tokens)} row tokens and {len(col_tokens)} column tokens"
        )


def _customdata(row_tokens: list[str], col_tokens: list[str]) -> np.ndarray:
    """(rows, cols, 2) array of (query token, key token) display strings for hover."""
    rows = [display_token(t) for t in row_tokens]
    cols = [display_token(t) for t in col_tokens]
    data = np.empty((len(rows), len(cols), 2), dtype=object)
    data[..., 0] = np.array(rows, dtype=object)[:, None]
    data[..., 1] = np.array(cols, dtype=object)[None, :]
    return data


def _tick_size(n: int) -> int:
    return 12 if n <= 30 else 10 if n <= 60 else 8


def attention_heatmap(
    matrix: np.ndarray,
    row_tokens: list[str],
    col_tokens: list[str],
    title: str,
    *,
    window: tuple[int, int] | None = None,
) -> go.Figure:
    """Heatmap of one attention matrix (rows = queries, cols = keys), weights on a 0..1 scale.

    ``window=(start, end)`` shows only rows start..end-1 (for long outputs); labels keep
    their true positions.
    """
    matrix = np.asarray(matrix, dtype=float)
    _check_shape(matrix, row_tokens, col_tokens)
    y_labels = axis_labels(row_tokens)
    x_labels = axis_labels(col_tokens)
    if window is not None:
        start, end = window
        start, end = max(0, start), min(len(row_tokens), end)
        if start >= end:
            raise ValueError(f"window {window} selects no rows of {len(row_tokens)}")
        matrix, row_tokens, y_labels = matrix[start:end], row_tokens[start:end], y_labels[start:end]
    heatmap = go.Heatmap(
        z=matrix,
        x=x_labels,
        y=y_labels,
        zmin=0.0,
        zmax=1.0,
        colorscale=_COLORSCALE,
        customdata=_customdata(row_tokens, col_tokens),
        hovertemplate=_HOVER,
        colorbar=dict(title=dict(text="weight")),
    )
    fig = go.Figure(heatmap)
    rows = matrix.shape[0]
    fig.update_layout(
        title=dict(text=title),
        height=min(_MAX_HEIGHT, max(_MIN_HEIGHT, 140 + _ROW_PX * rows)),
        margin=dict(l=10, r=10, t=60, b=10),
    )
    fig.update_xaxes(type="category", tickangle=-60, tickfont=dict(size=_tick_size(len(x_labels))))
    fig.update_yaxes(type="category", autorange="reversed", tickfont=dict(size=_tick_size(rows)))
    return fig


def head_grid(maps: np.ndarray, row_tokens: list[str], col_tokens: list[str], title: str) -> go.Figure:
    """All heads of one layer, ``maps`` shaped (heads, rows, cols), one shared colour bar."""
    maps = np.asarray(maps, dtype=float)
    if maps.ndim != 3:
        raise ValueError(f"head maps must be 3-D (heads, rows, cols), got shape {maps.shape}")
    _check_shape(maps[0], row_tokens, col_tokens)
    heads = maps.shape[0]
    ncols = min(heads, 4)
    nrows = math.ceil(heads / ncols)
    fig = make_subplots(
        rows=nrows,
        cols=ncols,
        subplot_titles=[f"head {h}" for h in range(heads)],
        shared_xaxes=True,
        shared_yaxes=True,
        horizontal_spacing=0.02,
        vertical_spacing=0.08 if nrows > 1 else 0.0,
    )
    x_labels, y_labels = axis_labels(col_tokens), axis_labels(row_tokens)
    customdata = _customdata(row_tokens, col_tokens)
    for h in range(heads):
        fig.add_trace(
            go.Heatmap(
                z=maps[h],
                x=x_labels,
                y=y_labels,
                coloraxis="coloraxis",
                customdata=customdata,
                hovertemplate=f"head {h}<br>{_HOVER}",
            ),
            row=h // ncols + 1,
            col=h % ncols + 1,
        )
    fig.update_layout(
        title=dict(text=title),
        coloraxis=dict(colorscale=_COLORSCALE, cmin=0.0, cmax=1.0, colorbar=dict(title="weight")),
        height=min(_MAX_HEIGHT * 2, nrows * max(260, 100 + 14 * maps.shape[1])),
        margin=dict(l=10, r=10, t=80, b=10),
    )
    small = dict(size=8)
    fig.update_xaxes(type="category", tickangle=-60, tickfont=small)
    fig.update_yaxes(type="category", autorange="reversed", tickfont=small)
    return fig


def prompt_attention_html(src_tokens: list[str], weights: np.ndarray) -> str:
    """The English prompt, each token shaded by the attention it received (max = darkest)."""
    weights = np.asarray(weights, dtype=float).reshape(-1)
    if len(src_tokens) != len(weights):
        raise ValueError(f"{len(src_tokens)} source tokens but {len(weights)} weights")
    peak = float(weights.max()) if len(weights) and weights.max() > 0 else 1.0
    spans = []
    for tok, w in zip(src_tokens, weights):
        alpha = max(0.0, float(w)) / peak
        spans.append(
            f'<span title="{float(w):.3f}" style="background-color: rgba(31, 119, 180, '
            f'{0.85 * alpha:.2f}); padding: 1px 3px; margin: 1px; border-radius: 3px;">'
            f"{html.escape(display_token(tok))}</span>"
        )
    return f'<div class="e2p-prompt-attention" style="line-height: 2;">{" ".join(spans)}</div>'


def training_curves(log: list[dict]) -> go.Figure:
    """Train/valid loss on the left axis, valid BLEU (when logged) on the right axis."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    series = [
        ("train_loss", "train loss", False),
        ("valid_loss", "valid loss", False),
        ("valid_bleu", "valid BLEU", True),
    ]
    for key, name, secondary in series:
        points = [(entry.get("epoch", i + 1), entry[key]) for i, entry in enumerate(log) if entry.get(key) is not None]
        if not points:
            continue
        epochs, values = zip(*points)
        fig.add_trace(
            go.Scatter(
                x=list(epochs),
                y=list(values),
                name=name,
                mode="lines+markers",
                line=dict(dash="dot") if secondary else None,
            ),
            secondary_y=secondary,
        )
    fig.update_layout(title=dict(text="Training curves"), hovermode="x unified")
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text="loss", secondary_y=False)
    fig.update_yaxes(title_text="BLEU", secondary_y=True)
    return fig


def metrics_bar(rows: dict[str, dict[str, float]], metrics: list[str]) -> go.Figure:
    """Grouped bars: one group per metric, one bar per system; missing values are left out."""
    fig = go.Figure()
    for system, values in rows.items():
        y = [values.get(m) for m in metrics]
        fig.add_trace(
            go.Bar(
                name=system,
                x=list(metrics),
                y=y,
                text=[f"{v:.3g}" if v is not None else "" for v in y],
                textposition="outside",
            )
        )
    fig.update_layout(barmode="group", title=dict(text="Systems compared"), yaxis_title="score")
    return fig
