"""The Attention view's helpers: the maps a picker selects, titles, windows, source parts, the JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest
from models import made_up_result

from e2p.answer.generator import GenerationResult
from e2p.views import attention
from e2p.views.figures import axis_labels, plotly_config

SRC = ["add", "NUM0", "and", "3", "<sep>", "add", "two", "<code>", "x", "+", "y"]
TGT_OUT = ["print", "(", "2", "+", "3", ")"]


def fake_result(attention: bool = True) -> GenerationResult:
    return made_up_result(
        SRC,
        TGT_OUT,
        heads=3,
        prompt="add 2 and 3",
        code="print(2 + 3)\n",
        formatted="print(2 + 3)\n",
        alternatives=[[("x", 0.05)]] * len(TGT_OUT),
        attention=attention,
    )


def test_attention_parts_orientation():
    r = fake_result()
    maps, rows, cols = attention.attention_parts(r, "cross")
    assert maps.shape == (2, 3, len(r.tgt_tokens), len(r.src_tokens))
    assert rows == r.tgt_tokens and cols == r.src_tokens
    maps, rows, cols = attention.attention_parts(r, "decoder")
    assert rows == r.tgt_tokens and cols == r.tgt_input_tokens
    maps, rows, cols = attention.attention_parts(r, "encoder")
    assert rows == cols == r.src_tokens


def test_attention_parts_errors():
    with pytest.raises(ValueError, match="kind"):
        attention.attention_parts(fake_result(), "self")
    with pytest.raises(ValueError, match="no attention"):
        attention.attention_parts(fake_result(attention=False), "cross")
    r = fake_result()
    bad = GenerationResult(**{**r.__dict__, "src_tokens": SRC[:-1]})
    with pytest.raises(ValueError, match="shape"):
        attention.attention_parts(bad, "cross")


def test_select_matrix_head_mean_and_all():
    maps = np.arange(2 * 3 * 2 * 2, dtype=float).reshape(2, 3, 2, 2)
    assert np.array_equal(attention.select_matrix(maps, 1, 2), maps[1, 2])
    assert np.allclose(attention.select_matrix(maps, 0, None), maps[0].mean(0))
    assert np.allclose(attention.select_matrix(maps, None, 1), maps.mean((0, 1)))


def test_layer_head_choices():
    assert attention.layer_head(attention.ALL, 3) == (None, None)
    assert attention.layer_head(1, attention.MEAN) == (1, None)
    assert attention.layer_head(0, 2) == (0, 2)


def test_titles_png_names_and_config():
    assert attention.map_title("cross", 1, 2) == "Cross-attention — layer 1, head 2"
    assert "mean of heads" in attention.map_title("decoder", 0, None)
    assert "all layers" in attention.map_title("encoder", None, None)
    assert attention.png_name("cross", 1, 2) == "e2p-cross-L1-H2"
    assert attention.png_name("cross", 0, None) == "e2p-cross-L0-mean"
    assert attention.png_name("encoder", None, None) == "e2p-encoder-all"
    cfg = plotly_config("x")
    assert cfg["toImageButtonOptions"] == {"format": "png", "filename": "x", "scale": 2}
    assert cfg["displayModeBar"] is True


def test_window_bounds():
    assert not attention.needs_window(attention.WINDOW) and attention.needs_window(attention.WINDOW + 1)
    assert attention.window_bounds(0, 100, 40) == (0, 40)
    assert attention.window_bounds(90, 100, 40) == (60, 100)
    assert attention.window_bounds(-5, 100, 40) == (0, 40)
    assert attention.window_bounds(3, 10, 40) == (0, 10)


def test_source_parts():
    parts = attention.source_parts(SRC)
    assert parts == {"prompt": (0, 4), "retrieved prompt": (5, 7), "retrieved code": (8, 11)}
    assert attention.source_parts(["add", "two"]) == {"prompt": (0, 2)}


def test_token_attention_shares_and_top():
    r = fake_result()
    w = attention.token_attention(r, 2, 1, 0)
    assert np.allclose(w, r.attention["cross"][1, 0, 2])
    shares = attention.attention_shares(r.src_tokens, w)
    assert set(shares) == {"prompt", "retrieved prompt", "retrieved code"}
    assert sum(shares.values()) == pytest.approx(1.0 - (w[4] + w[7]) / w.sum())
    top = attention.top_tokens(r.src_tokens, w, k=3)
    assert len(top) == 3 and top[0][1] == pytest.approx(w.max())
    assert top[0][0] == axis_labels(r.src_tokens)[int(np.argmax(w))]
    with pytest.raises(ValueError, match="out of range"):
        attention.token_attention(r, len(r.tgt_tokens), 0, 0)


def test_attention_json_round_trip():
    r = fake_result()
    doc = json.loads(attention.attention_json(r))
    assert doc["tokens"]["source"] == SRC and doc["tokens"]["target"] == r.tgt_tokens
    for kind in ("encoder", "decoder", "cross"):
        got = np.array(doc["maps"][kind]["weights"])
        assert list(got.shape) == doc["maps"][kind]["shape"] == list(r.attention[kind].shape)
        assert np.allclose(got, r.attention[kind], atol=1e-4)
    assert doc["maps"]["cross"]["rows"] == "target" and doc["maps"]["cross"]["columns"] == "source"
    assert json.loads(attention.attention_json(fake_result(attention=False)))["maps"] == {}
