import json

import numpy as np
import plotly.graph_objects as go
import pytest

from e2p.views.figures import (
    attention_heatmap,
    axis_labels,
    display_token,
    head_grid,
    metrics_bar,
    prompt_attention_html,
    training_curves,
)

CODE = ["print", "(", "x"]  # rows: generated code tokens (queries)
ENGLISH = ["print", "the", "value", "of", "x"]  # columns: English source tokens (keys)


def cross_matrix():
    rng = np.random.default_rng(0)
    m = rng.random((len(CODE), len(ENGLISH)))
    return m / m.sum(axis=1, keepdims=True)


def test_display_token_glyphs():
    assert display_token("<nl>") == "↵"
    assert display_token("\n") == "↵"
    assert display_token("<indent>") == "⇥"
    assert display_token("<dedent>") == "⇤"
    for special in ["<bos>", "<eos>", "<pad>", "<unk>"]:
        assert display_token(special) == special
    assert display_token("    ") == "····"
    assert display_token("a b") == "a·b"
    assert display_token("") == "∅"
    assert display_token("print") == "print"


def test_axis_labels_unique_and_position_prefixed():
    labels = axis_labels(["x", "=", "x", "\n", "x"])
    assert labels == ["0:x", "1:=", "2:x", "3:↵", "4:x"]
    assert len(set(labels)) == len(labels)


def test_cross_attention_orientation_not_transposed():
    m = cross_matrix()
    fig = attention_heatmap(m, CODE, ENGLISH, "cross-attention")
    (trace,) = fig.data
    assert trace.type == "heatmap"
    z = np.asarray(trace.z)
    assert z.shape == (3, 5)
    np.testing.assert_allclose(z, m)
    assert list(trace.y) == ["0:print", "1:(", "2:x"]  # code tokens on rows
    assert list(trace.x) == ["0:print", "1:the", "2:value", "3:of", "4:x"]  # English on columns
    assert (trace.zmin, trace.zmax) == (0.0, 1.0)
    assert fig.layout.yaxis.autorange == "reversed"
    assert fig.layout.xaxis.tickangle not in (None, 0)


def test_heatmap_hover_uses_raw_tokens():
    fig = attention_heatmap(cross_matrix(), CODE, ENGLISH, "t")
    trace = fig.data[0]
    custom = np.asarray(trace.customdata)
    assert custom.shape == (3, 5, 2)
    assert tuple(custom[1, 2]) == ("(", "value")  # query → key
    assert "customdata[0]" in trace.hovertemplate and "customdata[1]" in trace.hovertemplate
    assert "→" in trace.hovertemplate


def test_duplicate_tokens_get_distinct_labels():
    tokens = ["x", "=", "x", "+", "x"]
    fig = attention_heatmap(np.eye(5), tokens, tokens, "decoder self-attention")
    assert len(set(fig.data[0].x)) == 5
    assert len(set(fig.data[0].y)) == 5


@pytest.mark.parametrize("rows, cols", [(CODE[:2], ENGLISH), (CODE, ENGLISH[:4]), (ENGLISH, CODE)])
def test_size_mismatch_raises_useful_error(rows, cols):
    with pytest.raises(ValueError, match=r"shape \(3, 5\).*row tokens.*column tokens"):
        attention_heatmap(cross_matrix(), rows, cols, "bad")


def test_window_slices_rows_and_keeps_true_positions():
    tokens = [f"t{i}" for i in range(40)]
    m = np.full((40, 5), 0.2)
    m[12] = [1, 0, 0, 0, 0]
    fig = attention_heatmap(m, tokens, ENGLISH, "long", window=(10, 20))
    trace = fig.data[0]
    assert np.asarray(trace.z).shape == (10, 5)
    assert trace.y[0] == "10:t10" and trace.y[-1] == "19:t19"
    assert np.asarray(trace.z)[2, 0] == 1.0
    assert np.asarray(trace.customdata)[2, 0, 0] == "t12"


def test_window_selecting_nothing_raises():
    with pytest.raises(ValueError):
        attention_heatmap(cross_matrix(), CODE, ENGLISH, "t", window=(5, 9))


def test_height_grows_with_rows_but_is_capped():
    short = attention_heatmap(np.ones((3, 3)) / 3, ["a"] * 3, ["b"] * 3, "s")
    medium = attention_heatmap(np.ones((25, 3)) / 3, ["a"] * 25, ["b"] * 3, "m")
    long = attention_heatmap(np.ones((500, 3)) / 3, ["a"] * 500, ["b"] * 3, "l")
    assert short.layout.height < medium.layout.height <= long.layout.height <= 900


def test_head_grid_one_subplot_per_head():
    heads = 6
    maps = np.random.default_rng(1).random((heads, 3, 5))
    fig = head_grid(maps, CODE, ENGLISH, "layer 0")
    assert len(fig.data) == heads
    assert all(t.type == "heatmap" for t in fig.data)
    assert all(np.asarray(t.z).shape == (3, 5) for t in fig.data)
    assert [a.text for a in fig.layout.annotations] == [f"head {h}" for h in range(heads)]
    assert all(t.coloraxis == "coloraxis" for t in fig.data)  # one shared colour bar
    assert (fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax) == (0.0, 1.0)
    assert list(fig.data[0].y) == axis_labels(CODE)
    assert list(fig.data[0].x) == axis_labels(ENGLISH)


def test_head_grid_checks_sizes():
    with pytest.raises(ValueError):
        head_grid(np.ones((2, 3, 5)), ENGLISH, CODE, "bad")
    with pytest.raises(ValueError):
        head_grid(np.ones((3, 5)), CODE, ENGLISH, "bad")


def test_prompt_attention_html_escapes_and_shades():
    out = prompt_attention_html(["print", "<script>", "x"], np.array([0.1, 0.5, 0.25]))
    assert "<script>" not in out
    assert "&lt;script&gt;" in out
    assert "0.85)" in out  # the maximum gets full shading
    assert "0.17)" in out  # 0.1 / 0.5 * 0.85
    assert 'title="0.500"' in out and 'title="0.100"' in out  # actual values


def test_prompt_attention_html_all_zero_and_mismatch():
    out = prompt_attention_html(["a", "b"], np.zeros(2))
    assert out.count("<span") == 2
    with pytest.raises(ValueError):
        prompt_attention_html(["a"], np.zeros(2))


def test_training_curves_with_and_without_bleu():
    log = [
        {"epoch": 1, "train_loss": 3.0, "valid_loss": 3.2, "valid_bleu": 5.0},
        {"epoch": 2, "train_loss": 2.0, "valid_loss": 2.5, "valid_bleu": 12.0},
    ]
    fig = training_curves(log)
    names = [t.name for t in fig.data]
    assert names == ["train loss", "valid loss", "valid BLEU"]
    assert fig.data[2].yaxis == "y2"
    assert list(fig.data[0].x) == [1, 2]

    no_bleu = training_curves([{k: v for k, v in e.items() if k != "valid_bleu"} for e in log])
    assert [t.name for t in no_bleu.data] == ["train loss", "valid loss"]

    partial = training_curves([{"epoch": 1, "train_loss": 1.0}, {"train_loss": 0.5}])
    assert [t.name for t in partial.data] == ["train loss"]
    assert list(partial.data[0].x) == [1, 2]
    assert len(training_curves([]).data) == 0


def test_metrics_bar_groups_systems():
    rows = {"model": {"bleu": 30.0, "exact": 0.2}, "retrieval": {"bleu": 20.0}}
    fig = metrics_bar(rows, ["bleu", "exact"])
    assert fig.layout.barmode == "group"
    assert [t.name for t in fig.data] == ["model", "retrieval"]
    assert all(t.type == "bar" for t in fig.data)
    assert list(fig.data[0].x) == ["bleu", "exact"]
    assert list(fig.data[1].y) == [20.0, None]


def _values(v) -> np.ndarray:
    """A trace array read back from figure JSON (plotly may write numpy arrays as typed arrays)."""
    if isinstance(v, dict):
        import base64

        data = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
        return data.reshape([int(n) for n in str(v.get("shape", len(data))).split(",")])
    return np.asarray(v, dtype=float)


def test_figures_serialise_to_json_with_their_values():
    maps = np.random.default_rng(2).random((2, 4, 3, 5))
    expected = [  # (figure, the values each of its traces must carry after a JSON round trip)
        (attention_heatmap(cross_matrix(), CODE, ENGLISH, "cross", window=(1, 3)), [cross_matrix()[1:3]]),
        (head_grid(maps[0], CODE, ENGLISH, "heads"), list(maps[0])),
        (attention_heatmap(maps.mean(axis=(0, 1)), CODE, ENGLISH, "avg"), [maps.mean(axis=(0, 1))]),
        (training_curves([{"epoch": 1, "train_loss": 1.0, "valid_loss": 1.1}]), [[1.0], [1.1]]),
        (metrics_bar({"model": {"bleu": 1.0}}, ["bleu"]), [[1.0]]),
    ]
    for fig, values in expected:
        assert isinstance(fig, go.Figure)
        data = json.loads(fig.to_json())["data"]
        assert len(data) == len(values)
        for trace, want in zip(data, values):
            got = _values(trace["z"] if trace["type"] == "heatmap" else trace["y"])
            np.testing.assert_allclose(got, want)
    window = json.loads(expected[0][0].to_json())["data"][0]
    assert window["y"] == axis_labels(CODE)[1:3] and window["x"] == axis_labels(ENGLISH)  # true positions
