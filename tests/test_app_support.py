"""The app's pure helpers: settings from controls, attention selection, gallery filters, JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from e2p import app_support as sup
from e2p.decoding import DecodeSettings, DecodeSettingsError
from e2p.figures import axis_labels
from e2p.generator import GenerationResult
from e2p.tokenizers import code_tokens, decode_code

SRC = ["add", "NUM0", "and", "3", "<sep>", "add", "two", "<code>", "x", "+", "y"]
TGT_OUT = ["print", "(", "2", "+", "3", ")"]


def fake_result(layers: int = 2, heads: int = 3, attention: bool = True) -> GenerationResult:
    rng = np.random.default_rng(0)
    S, T = len(SRC), len(TGT_OUT) + 1

    def maps(rows, cols):
        m = rng.random((layers, heads, rows, cols))
        return m / m.sum(-1, keepdims=True)

    att = {"encoder": maps(S, S), "decoder": maps(T, T), "cross": maps(T, S)} if attention else {}
    return GenerationResult(
        prompt="add 2 and 3",
        code="print(2 + 3)\n",
        formatted="print(2 + 3)\n",
        parses=True,
        error=None,
        origin="model",
        src_tokens=SRC,
        tgt_tokens=TGT_OUT + ["<eos>"],
        tgt_input_tokens=["<bos>"] + TGT_OUT,
        token_probs=[0.9] * len(TGT_OUT),
        alternatives=[[("x", 0.05)]] * len(TGT_OUT),
        candidates=[],
        attention=att,
    )


# ------------------------------------------------------------------ folder and prompt


def test_artifact_folder_env_relative_and_absolute(tmp_path):
    assert sup.artifact_folder(tmp_path, environ={}) == tmp_path / "artifacts"
    assert sup.artifact_folder(tmp_path, environ={"E2P_ARTIFACTS": "other"}) == tmp_path / "other"
    assert sup.artifact_folder(tmp_path, environ={"E2P_ARTIFACTS": "/abs/dir"}) == Path("/abs/dir")


def test_folder_stamp_and_optional_json(tmp_path):
    assert sup.folder_stamp(tmp_path) == 0.0
    (tmp_path / "manifest.json").write_text("{}")
    assert sup.folder_stamp(tmp_path) > 0
    assert sup.read_optional_json(tmp_path / "missing.json") is None
    (tmp_path / "bad.json").write_text("{not json")
    assert sup.read_optional_json(tmp_path / "bad.json") is None
    assert sup.read_optional_json(tmp_path / "manifest.json") == {}


@pytest.mark.parametrize("text", [None, "", "   \n\t "])
def test_prepare_prompt_empty(text):
    assert sup.prepare_prompt(text) is None


def test_prepare_prompt_strips():
    assert sup.prepare_prompt("  add two numbers \n") == "add two numbers"


# ------------------------------------------------------------------ decoding controls


def test_build_settings_per_strategy():
    d = DecodeSettings(strategy="beam", beam_size=5, n_best=5, max_len=100)
    beam = sup.build_settings(d, "beam", 3, 1.0, 0.9, 50)
    assert (beam.strategy, beam.beam_size, beam.n_best, beam.max_len) == ("beam", 3, 3, 50)
    greedy = sup.build_settings(d, "greedy", 3, 1.0, 0.9, 50)
    assert greedy.strategy == "greedy" and greedy.max_len == 50
    sample = sup.build_settings(d, "sample", 3, 0.7, 0.8, 50)
    assert (sample.strategy, sample.temperature, sample.top_p, sample.seed) == ("sample", 0.7, 0.8, None)


def test_build_settings_caps_length_and_beam():
    d = DecodeSettings()
    s = sup.build_settings(d, "beam", 99, 1.0, 0.9, 10_000, model_max_len=126)
    assert s.max_len == 126 and s.beam_size == sup.MAX_BEAM
    s = sup.build_settings(d, "beam", 2, 1.0, 0.9, 10_000)
    assert s.max_len == sup.MAX_LEN_CAP
    assert sup.build_settings(d, "greedy", 1, 1.0, 0.9, 0).max_len == 1


def test_build_settings_rejects_bad_values():
    with pytest.raises(DecodeSettingsError):
        sup.build_settings(DecodeSettings(), "sample", 1, 0.0, 0.9, 20)
    with pytest.raises(DecodeSettingsError):
        sup.build_settings(DecodeSettings(), "nucleus", 1, 1.0, 0.9, 20)


def test_describe_settings():
    assert sup.describe_settings(DecodeSettings(beam_size=4)) == "beam 4"
    assert sup.describe_settings(DecodeSettings(strategy="greedy", syntax_guard=True, eos_penalty=2)) == (
        "greedy + syntax guard, EOS -2"
    )
    assert sup.describe_settings(DecodeSettings(strategy="sample", temperature=0.5)) == "sample 5 T=0.5 top-p=0.95"
    assert sup.describe_settings(None) == ""


def test_answer_rule_says_whether_the_model_or_the_ranker_answers():
    model = {"decoding": {"strategy": "greedy", "syntax_guard": True}, "rerank": "score", "pool": 0}
    assert sup.answer_rule(model) == "greedy + syntax guard, rerank=score — the model's own code"
    ranker = {"decoding": {"strategy": "greedy"}, "rerank": "ranker", "pool": 10}
    assert sup.answer_rule(ranker).startswith("retrieval: greedy, rerank=ranker, pool=10 — ")


# ------------------------------------------------------------------ confidence view


def test_confidence_pieces_read_like_the_code():
    code = "def add_two(a, b):\n    return f'{a}' + \"x y\"\nprint(add_two(1, 2))\n"
    tokens = code_tokens(code)
    pieces = sup.confidence_pieces(tokens)
    assert len(pieces) == len(tokens)  # one piece per token: probabilities line up
    text = "".join(pieces).replace("⇥", "").replace("⇤", "")
    assert text.split("\n") == decode_code(tokens).rstrip("\n").split("\n")


def test_confidence_pieces_marks_layout_and_end():
    pieces = sup.confidence_pieces(["if", "x", ":", "<nl>", "<indent>", "pass", "<nl>", "<dedent>", "y", "<eos>"])
    assert pieces[3] == "\n" and pieces[4] == "⇥" and pieces[5] == "    pass"
    assert pieces[7] == "⇤" and pieces[8] == "y" and pieces[-1] == "⏎end"


# ------------------------------------------------------------------ attention


def test_attention_parts_orientation():
    r = fake_result()
    maps, rows, cols = sup.attention_parts(r, "cross")
    assert maps.shape == (2, 3, len(r.tgt_tokens), len(r.src_tokens))
    assert rows == r.tgt_tokens and cols == r.src_tokens
    maps, rows, cols = sup.attention_parts(r, "decoder")
    assert rows == r.tgt_tokens and cols == r.tgt_input_tokens
    maps, rows, cols = sup.attention_parts(r, "encoder")
    assert rows == cols == r.src_tokens


def test_attention_parts_errors():
    with pytest.raises(ValueError, match="kind"):
        sup.attention_parts(fake_result(), "self")
    with pytest.raises(ValueError, match="no attention"):
        sup.attention_parts(fake_result(attention=False), "cross")
    r = fake_result()
    bad = GenerationResult(**{**r.__dict__, "src_tokens": SRC[:-1]})
    with pytest.raises(ValueError, match="shape"):
        sup.attention_parts(bad, "cross")


def test_select_matrix_head_mean_and_all():
    maps = np.arange(2 * 3 * 2 * 2, dtype=float).reshape(2, 3, 2, 2)
    assert np.array_equal(sup.select_matrix(maps, 1, 2), maps[1, 2])
    assert np.allclose(sup.select_matrix(maps, 0, None), maps[0].mean(0))
    assert np.allclose(sup.select_matrix(maps, None, 1), maps.mean((0, 1)))


def test_layer_head_choices():
    assert sup.layer_head(sup.ALL, 3) == (None, None)
    assert sup.layer_head(1, sup.MEAN) == (1, None)
    assert sup.layer_head(0, 2) == (0, 2)


def test_titles_png_names_and_config():
    assert sup.map_title("cross", 1, 2) == "Cross-attention — layer 1, head 2"
    assert "mean of heads" in sup.map_title("decoder", 0, None)
    assert "all layers" in sup.map_title("encoder", None, None)
    assert sup.png_name("cross", 1, 2) == "e2p-cross-L1-H2"
    assert sup.png_name("cross", 0, None) == "e2p-cross-L0-mean"
    assert sup.png_name("encoder", None, None) == "e2p-encoder-all"
    cfg = sup.plotly_config("x")
    assert cfg["toImageButtonOptions"] == {"format": "png", "filename": "x", "scale": 2}
    assert cfg["displayModeBar"] is True


def test_window_bounds():
    assert not sup.needs_window(sup.WINDOW) and sup.needs_window(sup.WINDOW + 1)
    assert sup.window_bounds(0, 100, 40) == (0, 40)
    assert sup.window_bounds(90, 100, 40) == (60, 100)
    assert sup.window_bounds(-5, 100, 40) == (0, 40)
    assert sup.window_bounds(3, 10, 40) == (0, 10)


def test_source_parts():
    parts = sup.source_parts(SRC)
    assert parts == {"prompt": (0, 4), "retrieved prompt": (5, 7), "retrieved code": (8, 11)}
    assert sup.source_parts(["add", "two"]) == {"prompt": (0, 2)}


def test_token_attention_shares_and_top():
    r = fake_result()
    w = sup.token_attention(r, 2, 1, 0)
    assert np.allclose(w, r.attention["cross"][1, 0, 2])
    shares = sup.attention_shares(r.src_tokens, w)
    assert set(shares) == {"prompt", "retrieved prompt", "retrieved code"}
    assert sum(shares.values()) == pytest.approx(1.0 - (w[4] + w[7]) / w.sum())
    top = sup.top_tokens(r.src_tokens, w, k=3)
    assert len(top) == 3 and top[0][1] == pytest.approx(w.max())
    assert top[0][0] == axis_labels(r.src_tokens)[int(np.argmax(w))]
    with pytest.raises(ValueError, match="out of range"):
        sup.token_attention(r, len(r.tgt_tokens), 0, 0)


def test_attention_json_round_trip():
    r = fake_result()
    doc = json.loads(sup.attention_json(r))
    assert doc["tokens"]["source"] == SRC and doc["tokens"]["target"] == r.tgt_tokens
    for kind in ("encoder", "decoder", "cross"):
        got = np.array(doc["maps"][kind]["weights"])
        assert list(got.shape) == doc["maps"][kind]["shape"] == list(r.attention[kind].shape)
        assert np.allclose(got, r.attention[kind], atol=1e-4)
    assert doc["maps"]["cross"]["rows"] == "target" and doc["maps"]["cross"]["columns"] == "source"
    assert json.loads(sup.attention_json(fake_result(attention=False)))["maps"] == {}


# ------------------------------------------------------------------ gallery


def _sample(prompt, ok, parses=True, bleu=50.0, runs=True):
    m = {"bleu": bleu, "parses": parses, "exact": ok, "runs": runs, "exec_match": ok}
    code = "print(1)" if ok else "print(2)"
    return {
        "prompt": prompt,
        "reference": "print(1)",
        "default": code,
        "beam": code,
        "greedy": "x = 1",
        "retrieval": "y = 2",
        "metrics": {
            "model": m,
            "model-beam": m,
            "model-greedy": dict(m, exact=False, exec_match=False, bleu=10.0),
            "retrieval": dict(m, parses=False),
        },
    }


SAMPLES = [
    _sample("print one", True, bleu=100.0),
    _sample("add two numbers", False, bleu=20.0),
    _sample("reverse a string", False, parses=False, bleu=5.0, runs=False),
]


def test_filter_samples_status():
    idx = lambda kept: [i for i, _ in kept]  # noqa: E731
    assert idx(sup.filter_samples(SAMPLES)) == [0, 1, 2]
    assert idx(sup.filter_samples(SAMPLES, "beam", "passed")) == [0]
    assert idx(sup.filter_samples(SAMPLES, "beam", "failed")) == [1, 2]
    assert idx(sup.filter_samples(SAMPLES, "beam", "does not parse")) == [2]
    assert idx(sup.filter_samples(SAMPLES, "beam", "does not run")) == [2]
    assert idx(sup.filter_samples(SAMPLES, "greedy", "passed")) == []
    assert idx(sup.filter_samples(SAMPLES, "retrieval", "parses")) == []
    with pytest.raises(ValueError):
        sup.filter_samples(SAMPLES, "beam", "green")


def test_filter_samples_search_and_bleu():
    idx = lambda kept: [i for i, _ in kept]  # noqa: E731
    assert idx(sup.filter_samples(SAMPLES, query="STRING reverse")) == [2]
    assert idx(sup.filter_samples(SAMPLES, "beam", query="print(2)")) == [1, 2]
    assert idx(sup.filter_samples(SAMPLES, "greedy", query="x = 1")) == [0, 1, 2]
    assert idx(sup.filter_samples(SAMPLES, min_bleu=20)) == [0, 1]


def test_pages():
    items = list(range(23))
    assert sup.page_count(23, 10) == 3 and sup.page_count(0, 10) == 1
    assert sup.page(items, 3, 10) == [20, 21, 22]
    assert sup.page(items, 9, 10) == [20, 21, 22]
    assert sup.page(items, 0, 10) == list(range(10))


def test_gallery_summary_and_labels():
    s = sup.gallery_summary(SAMPLES, "beam")
    assert s["samples"] == 3 and s["passed"] == pytest.approx(1 / 3)
    assert s["parses"] == pytest.approx(2 / 3)
    assert s["mean BLEU"] == pytest.approx(125 / 3)
    assert [sup.sample_status(x, "beam") for x in SAMPLES] == ["passed", "parses", "fails"]
    assert sup.sample_label(SAMPLES[0], "beam") == "print one — BLEU 100.0"
    assert sup.sample_label({"prompt": "x" * 150}, "beam") == "x" * 100 + "…"
    assert sup.metric_line(sup.sample_metrics(SAMPLES[2], "beam")).startswith("BLEU 5.0 · parses no")
    assert sup.metric_line({}) == "BLEU — · parses — · exact — · runs — · exec match —"


# ------------------------------------------------------------------ model card


def test_metrics_rows_and_model_card():
    metrics = {
        "model": {
            "n": 10,
            "bleu": 40.123,
            "parse_rate": 0.9,
            "exact_match": 0.2,
            "exec_match": 0.3,
            "runs_rate": 0.5,
            "settings": "beam 5",
        },
        "retrieval": {
            "n": 10,
            "bleu": 30.0,
            "parse_rate": 1.0,
            "exact_match": 0.1,
            "exec_match": None,
            "runs_rate": 1.0,
            "settings": "tf-idf",
        },
    }
    rows = sup.metrics_rows(metrics)
    assert [r["system"] for r in rows] == ["model", "retrieval"]
    assert rows[0]["BLEU"] == 40.1 and rows[0]["parses"] == 90.0 and rows[1]["exec match"] is None
    config = {
        "model": {"d_model": 64, "n_heads": 4, "enc_layers": 2, "dec_layers": 3},
        "features": {"copy": True, "retrieval": False},
    }
    card = dict(sup.model_card(config, {"epochs": 7}, 12345))
    assert card["parameters"] == "12,345" and card["layers"] == "2 encoder, 3 decoder"
    assert "4 heads" in card["width"] and card["inputs"].startswith("copy")
    # no decoding or rerank in the config: what the Generator then uses (DecodeSettings(), DEFAULT_RERANK)
    assert card["answer"] == "beam 5, rerank=run — the model's own code"
    config.update(decoding={"strategy": "greedy"}, rerank="ranker", pool=10)
    assert "10 nearest training programs" in dict(sup.model_card(config, {}, 1))["answer"]
    assert sup.rebuild_command().startswith("python -m train")


def test_unmeasured_runs_in_metrics():
    metrics = {
        "model": {
            "n": 10,
            "bleu": 40.0,
            "parse_rate": 0.9,
            "exact_match": 0.2,
            "exec_match": "unavailable",
            "runs_rate": "unavailable",
            "runs_unavailable": "bubblewrap (bwrap) is not installed",
        },
        "retrieval": {
            "n": 10,
            "bleu": 30.0,
            "parse_rate": 1.0,
            "exact_match": 0.1,
            "exec_match": 0.5,
            "runs_rate": 1.0,
        },
    }
    rows = sup.metrics_rows(metrics)
    assert rows[0]["exec match"] is None and rows[0]["runs"] is None and rows[1]["exec match"] == 50.0
    bars = sup.metric_bars(metrics)
    assert bars["model"] == {"BLEU": 40.0, "parse %": 90.0, "exec match %": None}
    assert bars["retrieval"]["exec match %"] == 50.0
    assert sup.unmeasured_note(metrics) == (
        "Runs and exec match are unavailable for model: programs were " "not run (bubblewrap (bwrap) is not installed)."
    )
    assert sup.unmeasured_note({"retrieval": metrics["retrieval"]}) is None


# ------------------------------------------------------------------ errors and what is run


def test_error_sentence_keeps_user_errors_and_hides_internals():
    from e2p.errors import E2PError

    assert sup.error_sentence(E2PError("the prompt is empty")) == "the prompt is empty"
    text = sup.error_sentence(KeyError("secret internals"), "in the Model view")
    assert text.startswith("Something went wrong in the Model view;") and "secret" not in text
    assert "KeyError" not in text and "\n" not in text


def test_execution_texts_follow_the_sandbox_status():
    from e2p.sandbox import SandboxStatus

    off = SandboxStatus(False, "bubblewrap (bwrap) is not installed", "off")
    assert sup.execution_notice(off) == "Programs are not run: bubblewrap (bwrap) is not installed."
    said = ["programs are not run: bubblewrap (bwrap) is not installed; the answer was chosen without running"]
    assert sup.execution_notice(off, said) is None  # the result's warning says it already: one line
    assert sup.execution_text(off, "limits").startswith("No program is run on this server")
    on = SandboxStatus(True, "", "bubblewrap, then uid 65534")
    assert sup.execution_notice(on) is None
    text = sup.execution_text(on, "each program runs with no network")
    assert "(bubblewrap, then uid 65534)" in text and "Each program runs with no network" in text
    assert "never run as code" in text and "nearest training programs" in text
