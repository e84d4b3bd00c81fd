"""The Streamlit app through Streamlit's AppTest: every view and every error page.

The artifacts come from $E2P_ARTIFACTS, else ./artifacts when it holds a model, else the shared
tiny models of conftest.py, trained on the synthetic corpus of synthetic.py (see `app_artifacts`).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from models import made_up_result

from e2p.answer.bundle import REBUILD
from e2p.sandbox.runner import sandbox_status
from e2p.views import inputs
from e2p.views import origin_view as ov
from e2p.views.attention import ALL, MEAN, WINDOW, source_parts
from e2p.views.figures import axis_labels
from e2p.views.gallery import PAGE_SIZE, filter_samples
from e2p.views.generate import confidence_pieces, result_key
from e2p.views.inputs import ENV_FOLDER, EXAMPLE_PROMPTS, read_optional_json

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "streamlit_app.py"
TIMEOUT = 90  # seconds per AppTest run (a cold model load plus one generation on a busy CPU)
PROMPT = (
    "write a python function to check if 12 is even"  # a prompt that answers quickly (the app tests generate often)
)

# ------------------------------------------------------------------ artifacts fixture


def app_artifacts(request) -> Path:
    """The folder the app tests run on: $E2P_ARTIFACTS, else ./artifacts when it holds a model, else the
    shared `tiny_artifacts` (conftest.py)."""
    env = os.environ.get(ENV_FOLDER)
    if env:
        return Path(env).resolve()
    if (REPO / "artifacts" / "manifest.json").is_file():
        return REPO / "artifacts"
    return request.getfixturevalue("tiny_artifacts")


def has_copy_attention(folder: Path) -> bool:
    config = read_optional_json(folder / "config.json")
    return isinstance(config, dict) and bool((config.get("model") or {}).get("copy_attention"))


def app_copy_artifacts(request) -> Path:
    """The test artifacts where their model has copy attention (its answers carry token origins),
    else the shared `tiny_copy_artifacts` (conftest.py)."""
    folder = app_artifacts(request)
    return folder if has_copy_attention(folder) else request.getfixturevalue("tiny_copy_artifacts")


@pytest.fixture(scope="session")
def artifacts(request) -> Path:
    return app_artifacts(request)


@pytest.fixture(scope="session")
def copy_artifacts(request) -> Path:
    return app_copy_artifacts(request)


def start_app(folder: Path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv(ENV_FOLDER, str(folder))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture
def app(artifacts, monkeypatch):
    """A fresh AppTest of the app over the test artifacts, already run once."""
    return start_app(artifacts, monkeypatch)


@pytest.fixture
def copy_app(copy_artifacts, monkeypatch):
    """The app over artifacts whose model has copy attention."""
    return start_app(copy_artifacts, monkeypatch)


# ------------------------------------------------------------------ helpers


def generate(at, prompt: str, **controls):
    at.text_area(key="prompt_text").input(prompt)
    for key, value in controls.items():
        widget = [w for kind in ("radio", "slider", "selectbox") for w in getattr(at, kind) if w.key == key]
        assert len(widget) == 1, key
        widget[0].set_value(value)
    generate_button(at).click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def generate_button(at):
    buttons = [b for b in at.button if b.label == "Generate"]
    assert len(buttons) == 1, [b.label for b in at.button]
    return buttons[0]


def open_view(at, name: str):
    """Switch tab as a click would (only the open view is drawn)."""
    at.session_state["view"] = name
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return tab(at, name)


def open_expander(at, key: str):
    """Open a lazy expander as a click would (its content is drawn only while it is open)."""
    at.session_state[key] = True
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def tab(at, name: str):
    return next(t for t in at.tabs if t.label == name)


def heatmaps(block) -> list[dict]:
    """The Plotly figures (as dicts) drawn in a block."""
    return [json.loads(c.proto.spec) for c in block.get("plotly_chart")]


def z_matrix(trace: dict) -> np.ndarray:
    z = trace["z"]
    if isinstance(z, dict):  # plotly's typed-array encoding
        data = np.frombuffer(base64.b64decode(z["bdata"]), dtype=np.dtype(z["dtype"]))
        shape = [int(s) for s in str(z.get("shape", len(data))).split(",")]
        return data.reshape(shape)
    return np.asarray(z, dtype=float)


def texts(block, kind: str) -> list[str]:
    if kind == "html":
        return [e.proto.body for e in block.get("html")]
    return [e.value for e in block.get(kind)]


# ------------------------------------------------------------------ views


def test_views_and_controls(app):
    assert [t.label for t in app.tabs] == ["Generate", "Attention", "Samples", "Compare", "Model"]
    generate_button(app)
    examples = [b for b in app.button if (b.key or "").startswith("example_")]
    assert [b.label for b in examples] == list(EXAMPLE_PROMPTS)
    assert {"strategy", "beam_size", "temperature", "top_p", "max_len", "rerank", "follow_example"} <= {
        w.key for kind in ("radio", "slider", "selectbox") for w in getattr(app, kind)
    }
    assert app.text_area(key="prompt_text").value == ""
    assert not tab(app, "Samples").children  # only the open view is drawn
    assert any("Generate some code first" in i.value for i in open_view(app, "Attention").info)


def test_the_loaded_model_is_frozen_out_of_the_collector(app):
    """Streamlit collects garbage after every run; the loaded model's objects are frozen out of it."""
    import gc

    assert gc.get_freeze_count() > 10_000


def test_generate_shows_code_status_latency_confidence(app):
    generate(app, PROMPT)
    result = app.session_state["result"]
    assert result.prompt == PROMPT
    gen_tab = tab(app, "Generate")
    codes = [c.value.strip() for c in gen_tab.get("code")]
    assert result.formatted.strip() in codes
    assert result.parses and result.error is None  # a train-like prompt: a candidate or the fallback parses
    # the status is about running, never about parsing
    statuses = [unescaped(e.value) for kind in ("success", "warning", "error", "info") for e in gen_tab.get(kind)]
    assert not any("parses" in s for s in statuses)
    assert any(
        s.startswith(("Ran and printed", "Ran but printed nothing", "Raised", "Stopped", "Not run")) for s in statuses
    )
    labels = {m.label: m.value for m in app.metric}
    assert labels["Latency"].endswith(" s") and float(labels["Latency"][:-2]) > 0
    assert [d.proto.label for d in gen_tab.get("download_button")][:1] == ["Download .py"]
    confidence = [h for h in texts(gen_tab, "html") if "e2p-confidence" in h]
    assert len(confidence) == 1 and confidence[0].count("title=") == len(result.token_probs)
    assert any(f"Result for: {PROMPT}" in c.value for c in app.caption)


def own_answers_only(monkeypatch):
    """The model's own answer always (no pooled training programs, no fallback)."""
    from e2p.answer.generator import Generator

    real = Generator.generate
    monkeypatch.setattr(
        Generator,
        "generate",
        lambda self, *args, **kwargs: real(self, *args, **{**kwargs, "pool": 0, "fallback": False}),
    )


def test_generate_marks_where_each_token_came_from(copy_app, monkeypatch):
    own_answers_only(monkeypatch)
    generate(copy_app, PROMPT)
    result = copy_app.session_state["result"]
    assert result.origin == "model" and result.origins is not None
    gen_tab = tab(copy_app, "Generate")
    assert any(m.value.startswith("Written by the model, token by token") for m in gen_tab.get("markdown"))
    assert "Where each token came from" in [h.value for h in gen_tab.get("subheader")]
    marks = [h for h in texts(gen_tab, "html") if "e2p-origins" in h]
    assert len(marks) == 1 and "e2p-origin-legend" in marks[0]
    tokens = result.tgt_tokens[:-1]
    added = ov.added_html(result.added) if result.added else ""  # a completion line, marked as the rule's
    assert marks[0] == ov.legend_html() + ov.origins_html(confidence_pieces(tokens), result.origins) + added
    first = result.origins[0]
    assert f"gate {first.gate:.2f}: {first.gate:.0%} vocabulary" in marks[0]
    summary = f"Of {len(tokens)} tokens: {ov.origin_summary(result.origins)}"
    assert summary in [c.value for c in gen_tab.get("caption")]
    assert "per-token confidence" in " ".join(h.value.lower() for h in gen_tab.get("subheader"))  # kept


def test_retrieved_code_is_labelled_retrieval_and_not_marked(copy_app, monkeypatch):
    from dataclasses import replace

    from e2p.answer.generator import Generator

    real = Generator.generate
    monkeypatch.setattr(
        Generator, "generate", lambda self, *args, **kwargs: replace(real(self, *args, **kwargs), origin="retrieval")
    )
    generate(copy_app, PROMPT)
    gen_tab = tab(copy_app, "Generate")
    said = [m.value for m in gen_tab.get("markdown")]
    assert ov.origin_sentence("retrieval") in said and not any(m.startswith("Written by the model") for m in said)
    assert not [h for h in texts(gen_tab, "html") if "e2p-origins" in h]
    assert any("did not write this code" in c.value for c in gen_tab.get("caption"))


def test_without_copy_attention_the_view_says_so(app, monkeypatch):
    from dataclasses import replace

    from e2p.answer.generator import Generator

    real, explain = Generator.generate, Generator.explain
    monkeypatch.setattr(
        Generator,
        "generate",
        lambda self, *args, **kwargs: replace(
            real(self, *args, **kwargs), origin="model", tokens_are_code=True, origins=None
        ),
    )
    monkeypatch.setattr(  # a model without copy attention: explaining adds maps, no origins
        Generator,
        "explain",
        lambda self, result, attention=True: replace(explain(self, result, attention), origins=None),
    )
    generate(app, PROMPT)
    no_traceback(app)
    gen_tab = tab(app, "Generate")
    assert any("no copy attention" in c.value for c in gen_tab.get("caption"))
    assert not [h for h in texts(gen_tab, "html") if "e2p-origins" in h]


def test_code_that_does_not_parse_shows_where(app, monkeypatch):
    from dataclasses import replace

    from e2p.answer.generator import Generator

    real = Generator.generate
    bad = "x = 1\nif x\n    pass\n"

    def unparsable(self, *args, **kwargs):  # the model's answer, as if no candidate parsed
        answer = real(self, *args, **kwargs)
        return replace(answer, code=bad, formatted=bad, parses=False, error=(2, "expected ':'"), run=None, added=None)

    monkeypatch.setattr(Generator, "generate", unparsable)
    generate(app, PROMPT)
    assert not app.success
    from e2p.views.plain_text import plain

    # the message quotes code, shown as typed (Markdown-escaped), not rendered
    assert any(e.value == "The code does not parse: line 2: " + plain("expected ':'") for e in app.error), [
        e.value for e in app.error
    ]
    assert bad.strip() in [c.value.strip() for c in tab(app, "Generate").get("code")]


def test_example_prompt_is_one_click(app):
    app.button(key="example_1").click().run()
    assert not app.exception
    assert app.session_state["result"].prompt == EXAMPLE_PROMPTS[1]
    assert app.text_area(key="prompt_text").value == EXAMPLE_PROMPTS[1]


def test_decoding_controls_reach_the_generator(app):
    generate(app, PROMPT, strategy="greedy", max_len=12)
    settings = app.session_state["result"].settings
    assert settings.strategy == "greedy" and settings.max_len == 12
    assert len(app.session_state["result"].tgt_tokens) <= 13
    generate(app, PROMPT, strategy="sample", temperature=0.5, top_p=0.8, max_len=12)
    settings = app.session_state["result"].settings
    assert (settings.strategy, settings.temperature, settings.top_p) == ("sample", 0.5, 0.8)


def test_follow_slider_reaches_the_settings(app):
    slider = app.slider(key="follow_example")
    assert slider.label == "Follow the retrieved example"
    assert (slider.min, slider.max, slider.step) == (0.0, inputs.MAX_FOLLOW, 0.5)
    assert not slider.disabled
    generate(app, PROMPT, strategy="greedy", max_len=12, follow_example=3.5)
    assert app.session_state["result"].settings.follow_example == 3.5
    assert any("greedy" in c.value and "follow example +3.5" in c.value for c in app.caption)


BASELINE_REPLACES = ("strategy", "beam_size", "temperature", "top_p", "rerank", "follow_example")


def test_the_default_answer_is_the_models_own_and_the_baseline_is_retrieval(app, monkeypatch):
    """Unticked, the app asks for the artifact's default answer (the shipped one: the model's own code);
    ticked, the retrieval baseline: the artifact's decoding for it, the learned ranker over the model's
    code and the nearest training programs, with its fallback; the controls it replaces are disabled."""
    from dataclasses import replace

    from e2p.answer.generator import Generator

    calls = []
    real = Generator.generate

    def spy(self, *args, **kwargs):
        calls.append((self, args, kwargs))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Generator, "generate", spy)

    def controls():
        return {w.key: w for kind in ("radio", "slider", "selectbox") for w in getattr(app, kind) if w.key}

    baseline = app.checkbox(key="baseline")
    assert baseline.label.startswith("Retrieval baseline") and baseline.value is False
    assert "--rerank ranker" in baseline.help and "not written by the model" in baseline.help
    assert not any(controls()[key].disabled for key in BASELINE_REPLACES)
    generate(app, PROMPT, max_len=40)
    gen, (prompt,), kwargs = calls[-1]
    settings = kwargs.pop("settings")
    default = gen.policy.default
    assert kwargs.pop("explain") is False and kwargs.pop("attention") is False  # the code first, explained after
    assert kwargs == {"rerank": default.rerank, "pool": default.pool, "fallback": default.fallback, "edit": True}
    assert settings == replace(default.decoding, max_len=40, min_len=min(default.decoding.min_len, 40))
    if default.pool == 0:  # an artifact whose default is the model's own code, as the shipped one
        result = app.session_state["result"]
        assert all(c.origin == "model" for c in result.candidates)
        captions = [c.value for c in tab(app, "Generate").get("caption")]
        assert [c for c in captions if "the model's own code: no training program among the candidates" in c]
    app.checkbox(key="baseline").check().run()  # outside the form: it reruns the page at once
    assert not app.exception, [e.value for e in app.exception]
    assert all(controls()[key].disabled for key in BASELINE_REPLACES) and not controls()["max_len"].disabled
    with pytest.raises(Exception, match="disabled"):
        controls()["strategy"].set_value("sample")
    assert any(c.value.startswith("The retrieval baseline: retrieval: ") for c in app.caption)
    generate(app, PROMPT, max_len=40)
    gen, (prompt,), kwargs = calls[-1]
    settings = kwargs.pop("settings")
    ranker = gen.policy.ranker
    assert kwargs.pop("explain") is False and kwargs.pop("attention") is False
    assert prompt == PROMPT and kwargs == {"rerank": "ranker", "pool": ranker.pool, "fallback": True, "edit": True}
    assert settings == replace(ranker.decoding, max_len=40, min_len=min(ranker.decoding.min_len, 40))
    result = app.session_state["result"]
    assert result.settings == settings
    gen_tab = tab(app, "Generate")
    assert ov.origin_sentence(result.origin, result.tokens_are_code) in [m.value for m in gen_tab.get("markdown")]
    captions = [c.value for c in gen_tab.get("caption")]
    assert any(c.startswith("retrieval: ") and "rerank=ranker" in c for c in captions)
    app.checkbox(key="baseline").uncheck().run()  # untick: the controls are back
    assert not any(controls()[key].disabled for key in BASELINE_REPLACES)
    assert not [c.value for c in app.caption if c.value.startswith("The retrieval baseline")]


def test_attention_view_heatmaps(app):
    generate(app, PROMPT)
    result = app.session_state["result"]
    att = open_view(app, "Attention")
    assert len(heatmaps(att)) == 1  # the chosen map; the grid of every head on demand
    app.toggle(key="att_grid").set_value(True).run()
    att = tab(app, "Attention")
    figs = heatmaps(att)
    assert len(figs) == 2
    main = figs[0]["data"][0]
    assert main["type"] == "heatmap"
    cross = result.attention["cross"]
    assert cross.shape[2:] == (len(result.tgt_tokens), len(result.src_tokens))
    a, b = source_parts(result.src_tokens)["prompt"]
    assert b < len(result.src_tokens)  # a retrieved example follows the prompt: hiding it shows
    pick = ov.peaked_head(cross, (a, b))
    shown = min(len(result.tgt_tokens), WINDOW)  # long outputs: a window of rows
    assert z_matrix(main).shape == (shown, b - a)  # opens on the prompt's columns only
    assert np.allclose(z_matrix(main), cross[pick.layer, pick.head][:shown, a:b])  # on the picked head
    assert main["x"] == axis_labels(result.src_tokens[a:b])
    assert main["y"] == axis_labels(result.tgt_tokens)[:shown]
    assert "<nl>" not in "".join(main["y"])  # readable marks instead of raw layout tokens
    grid = figs[1]["data"]
    assert len(grid) == cross.shape[1] and all(t["type"] == "heatmap" for t in grid)
    config = json.loads(att.get("plotly_chart")[0].proto.config)
    assert config["toImageButtonOptions"]["format"] == "png"
    assert config["toImageButtonOptions"]["filename"] == f"e2p-cross-L{pick.layer}-H{pick.head}"
    assert any(d.proto.label == "Download attention maps (JSON)" for d in att.get("download_button"))
    assert any("e2p-prompt-attention" in h for h in texts(att, "html"))


def test_attention_view_opens_prompt_only_on_the_most_peaked_head(app):
    generate(app, PROMPT)
    result = app.session_state["result"]
    cross = result.attention["cross"]
    a, b = source_parts(result.src_tokens)["prompt"]
    pick = ov.peaked_head(cross, (a, b))
    att = open_view(app, "Attention")
    assert (app.selectbox(key="att_layer").value, app.selectbox(key="att_head").value) == (pick.layer, pick.head)
    assert ov.pick_caption(pick, pick.layer, pick.head) in [c.value for c in att.get("caption")]
    peaks = cross[..., a:b].max(-1).mean(-1)
    assert pick.peak == pytest.approx(peaks.max()) and (peaks.size == 1 or pick.peak > peaks.min())
    toggle = app.toggle(key="att_example")
    assert toggle.value is False and "retrieved example" in toggle.label
    toggle.set_value(True).run()  # the retrieved example, on demand
    main = heatmaps(tab(app, "Attention"))[0]["data"][0]
    shown = min(len(result.tgt_tokens), WINDOW)
    assert main["x"] == axis_labels(result.src_tokens)
    assert np.allclose(z_matrix(main), cross[pick.layer, pick.head][:shown])


def test_a_chosen_layer_and_head_outlast_a_new_answer(app):
    generate(app, PROMPT)
    open_view(app, "Attention")
    app.selectbox(key="att_head").set_value(MEAN).run()
    open_view(app, "Generate")
    generate(app, EXAMPLE_PROMPTS[0])
    open_view(app, "Attention")
    assert app.selectbox(key="att_head").value == MEAN  # the user's choice, not a new pick
    result = app.session_state["result"]
    pick = ov.peaked_head(result.attention["cross"], source_parts(result.src_tokens)["prompt"])
    layer = app.selectbox(key="att_layer").value
    assert ov.pick_caption(pick, layer, None) in [c.value for c in app.caption]


def test_attention_picker_layer_head_kind_without_regenerating(app):
    generate(app, PROMPT)
    result = app.session_state["result"]
    n_layers, n_heads = result.attention["decoder"].shape[:2]
    open_view(app, "Attention")
    app.radio(key="att_kind").set_value("decoder").run()
    app.selectbox(key="att_layer").set_value(0).run()
    app.selectbox(key="att_head").set_value(n_heads - 1).run()
    assert app.session_state["result"] is result  # the picker never regenerates
    main = heatmaps(tab(app, "Attention"))[0]
    z = z_matrix(main["data"][0])
    shown = min(len(result.tgt_tokens), WINDOW)
    assert z.shape == (shown, len(result.tgt_input_tokens))
    assert np.allclose(z, result.attention["decoder"][0, n_heads - 1][:shown])
    assert main["layout"]["title"]["text"] == f"Decoder self-attention — layer 0, head {n_heads - 1}"
    assert main["data"][0]["x"] == axis_labels(result.tgt_input_tokens)
    app.radio(key="att_kind").set_value("encoder").run()
    app.selectbox(key="att_layer").set_value(ALL).run()
    z = z_matrix(heatmaps(tab(app, "Attention"))[0]["data"][0])
    a, b = source_parts(result.src_tokens)["prompt"]  # the prompt's rows and columns only
    shown = min(b - a, WINDOW)
    assert np.allclose(z, result.attention["encoder"].mean(axis=(0, 1))[a:b, a:b][:shown])
    app.radio(key="att_kind").set_value("cross").run()
    app.selectbox(key="att_layer").set_value(n_layers - 1).run()
    app.selectbox(key="att_token").set_value(0).run()
    shaded = [h for h in texts(tab(app, "Attention"), "html") if "e2p-prompt-attention" in h][0]
    assert shaded.count("<span") == len(result.src_tokens)
    assert app.session_state["result"] is result


def long_result(rows: int = 70, cols: int = 12):
    """A made-up result with a long output, to exercise the attention window."""
    out = [f"t{i}" for i in range(rows - 1)]
    src = [f"w{i}" for i in range(cols)]
    return made_up_result(src, out, seed=1, prompt="long", token_probs=[0.5] * len(out))


def test_attention_window_for_long_outputs(app):
    result = long_result()
    app.session_state["result"] = result
    main = heatmaps(open_view(app, "Attention"))[0]["data"][0]
    assert z_matrix(main).shape == (WINDOW, len(result.src_tokens))
    app.toggle(key="att_grid").set_value(True)
    app.slider(key="att_start").set_value(25).run()
    main, grid = heatmaps(tab(app, "Attention"))
    labels = axis_labels(result.tgt_tokens)
    assert main["data"][0]["y"] == labels[25 : 25 + WINDOW]  # true positions kept
    pick = ov.peaked_head(result.attention["cross"])  # no retrieved example: every column is the prompt's
    assert np.allclose(z_matrix(main["data"][0]), result.attention["cross"][pick.layer, pick.head][25:65])
    assert grid["layout"]["yaxis"]["range"] == [25 + WINDOW - 0.5, 24.5]


def test_samples_view_gallery_filters_and_open_attention(app, artifacts):
    samples = json.loads((artifacts / "samples.json").read_text())["samples"]
    gallery = open_view(app, "Samples")
    captions = [c.value for c in gallery.get("caption")]
    assert any(c.startswith(f"{len(samples)} of {len(samples)} samples match") for c in captions)
    shown = gallery.get("expander")
    assert len(shown) == min(PAGE_SIZE, len(samples))
    first = samples[0]
    codes = [c.value.strip() for c in gallery.get("code")]
    assert first["reference"].strip() in codes and first["default"].strip() in codes
    assert any("e2p-diff" in h for h in texts(gallery, "html"))
    app.radio(key="gal_decoding").set_value("greedy").run()
    assert first["greedy"].strip() in [c.value.strip() for c in tab(app, "Samples").get("code")]
    app.text_input(key="gal_query").input(first["prompt"]).run()
    kept = filter_samples(samples, "greedy", "all", first["prompt"])
    assert any(c.value.startswith(f"{len(kept)} of {len(samples)} samples match") for c in app.caption)
    app.text_input(key="gal_query").input("zzz-no-such-prompt").run()
    assert any(c.value.startswith(f"0 of {len(samples)} samples match") for c in app.caption)
    app.text_input(key="gal_query").input("").run()
    app.selectbox(key="gal_status").set_value("passed").run()
    n_passed = len(filter_samples(samples, "greedy", "passed"))
    assert any(c.value.startswith(f"{n_passed} of {len(samples)} samples match") for c in app.caption)
    app.selectbox(key="gal_status").set_value("all").run()
    app.button(key="open_0").click().run()
    assert not app.exception
    assert app.session_state["view"] == "Attention"
    assert app.session_state["result"].prompt == first["prompt"].strip()
    assert heatmaps(tab(app, "Attention"))


def test_model_view_card_curves_metrics(app, artifacts):
    model = open_view(app, "Model")
    manifest = json.loads((artifacts / "manifest.json").read_text())
    card = model.get("table")[0].value
    assert f"{manifest['parameters']:,}" in list(card["value"])
    figs = heatmaps(model)
    assert figs[0]["data"][0]["type"] == "scatter"  # training curves
    assert "train loss" in {t["name"] for t in figs[0]["data"]}
    table = model.get("dataframe")[0].value
    assert {"model", "retrieval"} <= set(table["system"])
    assert REBUILD in [c.value for c in model.get("code")]


# ------------------------------------------------------------------ errors


def test_empty_prompt_asks_for_one(app):
    generate(app, "   ")
    assert any("type a description" in w.value for w in app.warning)
    assert "result" not in app.session_state


def test_long_prompt_is_cut_with_notice(app):
    generate(app, "write a python function to add two numbers " * 250, strategy="greedy", max_len=40)
    assert not app.exception
    assert any("cut" in w.value and "characters" in w.value for w in app.warning)
    assert app.session_state["result"].code


def test_typed_text_reaches_code_only_as_data_and_runs_only_in_the_sandbox(app, artifacts, monkeypatch):
    """What a user types is never run as typed: its quoted values reach the candidates only as string
    constants, no name it spells (`__import__`) becomes code, and every program that does run (the
    ranker runs candidates, and its edits of train programs carry the prompt's values) runs through
    the sandbox's runner, in bubblewrap."""
    from test_placeholders import FORBIDDEN, assert_values_only_in_strings

    from e2p.data.placeholders import abstract_prompt
    from e2p.sandbox import runner as sandbox

    value = "e2p + __import__(chr(111)).system(chr(120))"  # would run os.system("x") if it became code
    payload = f'write a python program to print "{value}"'
    ran, started = [], []
    real_run, real_popen = sandbox._run, subprocess.Popen

    def spy_run(program, *args, **kwargs):
        result = real_run(program, *args, **kwargs)
        ran.append((program, result))
        return result

    def spy_popen(args, *rest, **kwargs):
        started.append([args] if isinstance(args, (str, bytes)) else list(args))
        return real_popen(args, *rest, **kwargs)

    monkeypatch.setattr(sandbox, "_run", spy_run)
    monkeypatch.setattr(subprocess, "Popen", spy_popen)
    generate(app, payload, rerank="ranker")
    result = app.session_state["result"]
    assert result.prompt == payload
    values = abstract_prompt(payload)[1].strings
    assert values == [value]
    programs = [result.code] + [c.code for c in result.candidates]
    if artifacts == REPO / "artifacts":  # its train programs hold strings: an edit carries the value
        assert any(values[0] in program for program in programs), programs  # so the check below has teeth
    for program in programs:
        # train programs may use `os`; what the prompt spells (`__import__`) never becomes a name
        assert_values_only_in_strings(program, values, allowed=FORBIDDEN - {"__import__"})
    if os.environ.get("E2P_REQUIRE_SANDBOX") == "1":  # CI: a sandbox that cannot isolate is a failure
        assert sandbox.sandbox_status().available, sandbox.sandbox_status().reason
    if sandbox.sandbox_status().available:
        assert ran  # candidates did run: the checks below mean something
    assert all(r.isolated for _, r in ran)
    assert {c.code for c in result.candidates if c.runs is not None} <= {p for p, _ in ran}
    assert all(os.path.basename(str(argv[0])) == "bwrap" for argv in started), started  # no other process
    assert bool(started) == bool(ran)


def _error_page(monkeypatch, folder: Path):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv(ENV_FOLDER, str(folder))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    assert not at.exception, "an error page, not a traceback"
    assert not at.tabs
    assert REBUILD in [c.value for c in at.code]
    return at


def test_missing_artifacts_page(monkeypatch, tmp_path):
    at = _error_page(monkeypatch, tmp_path / "nowhere")
    assert any("does not exist" in e.value for e in at.error)


def test_corrupt_weights_page(monkeypatch, tmp_path, artifacts):
    copy = tmp_path / "artifacts"
    shutil.copytree(artifacts, copy)
    weights = copy / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    at = _error_page(monkeypatch, copy)
    assert any("weights.safetensors" in e.value and "corrupt" in e.value for e in at.error)


def test_missing_manifest_page(monkeypatch, tmp_path, artifacts):
    copy = tmp_path / "artifacts"
    shutil.copytree(artifacts, copy)
    (copy / "manifest.json").unlink()
    at = _error_page(monkeypatch, copy)
    assert any("manifest.json is missing" in e.value for e in at.error)


# ------------------------------------------------------------------ no tracebacks, ever


def no_traceback(at) -> None:
    """No exception element, and nothing on the page reads like Python internals."""
    assert not at.exception, [e.value for e in at.exception]
    shown = " ".join(e.value for kind in ("error", "warning", "info", "caption", "markdown") for e in getattr(at, kind))
    assert "Traceback" not in shown and 'File "' not in shown


def test_error_details_are_hidden_from_visitors():
    import tomllib

    from streamlit.config import ShowErrorDetailsConfigOptions

    config = tomllib.loads((REPO / ".streamlit/config.toml").read_text())
    assert config["client"]["showErrorDetails"] == ShowErrorDetailsConfigOptions.NONE.value


def test_corrupt_memory_line_page(monkeypatch, tmp_path, artifacts):
    from e2p.answer.bundle import sha256_file

    copy = tmp_path / "artifacts"
    shutil.copytree(artifacts, copy)
    memory = copy / "memory.jsonl"
    memory.write_text(memory.read_text(encoding="utf-8") + '{"prompt": "broken\n', encoding="utf-8")
    at = _error_page(monkeypatch, copy)
    no_traceback(at)
    assert any("memory.jsonl is corrupt" in e.value for e in at.error)
    # the same line with a manifest that vouches for it: the loader still names the file
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["files"]["memory.jsonl"] = sha256_file(memory)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    at = _error_page(monkeypatch, copy)
    no_traceback(at)
    assert any("memory.jsonl line" in e.value for e in at.error), [e.value for e in at.error]


@pytest.mark.parametrize(
    "prompt", ["", "   ", "\x00", "write a python function to add \x00 and 3", "add 3 and 4 " * 2000]
)
def test_bad_prompts_show_no_traceback(app, prompt):
    generate(app, prompt, strategy="greedy", max_len=16)
    no_traceback(app)
    if prompt.strip():
        assert app.session_state["result"].code
    else:
        assert any("type a description" in w.value for w in app.warning)


MARKDOWN_PROMPT = "print ![x](http://127.0.0.1:9/p.png) **b** :red[r] $x^2$ <b>h</b> 1. `c`"


def test_a_prompt_is_shown_as_typed_not_as_markdown(app):
    from e2p.views.plain_text import plain

    generate(app, MARKDOWN_PROMPT, strategy="greedy", max_len=16)
    no_traceback(app)
    caption = next(c.value for c in app.caption if c.value.startswith("Result for:"))
    assert caption == "Result for: " + plain(MARKDOWN_PROMPT)
    # every ASCII punctuation mark is escaped: no image, emphasis, colour or maths is left to render
    attention_tab = open_view(app, "Attention")
    shown = " ".join(c.value for c in attention_tab.get("caption"))
    assert "Prompt: " + plain(MARKDOWN_PROMPT) in shown and "**" + MARKDOWN_PROMPT not in shown
    assert "\\!\\[x\\]" in caption and "\\*\\*b\\*\\*" in caption and "\\:red\\[" in caption and "\\$x" in caption


def test_a_prompt_that_is_not_text_gets_one_sentence_and_is_kept(app):
    # A lone surrogate cannot reach the app through a widget (the page encodes UTF-8), but it can
    # through a request queued with it, as a sample's "Open its attention" queues its prompt.
    prompt = "reverse the string \ud800 now"
    app.session_state["request"] = {"prompt": prompt}
    app.run()
    no_traceback(app)
    errors = [e.value for e in app.error]
    assert len(errors) == 1 and "not text" in errors[0] and "surrogate" in errors[0], errors
    assert "result" not in app.session_state


def test_unexpected_error_while_generating_is_one_sentence(app, monkeypatch, caplog):
    from e2p.answer.generator import Generator

    def broken(*args, **kwargs):
        raise KeyError("secret internals")

    monkeypatch.setattr(Generator, "generate", broken)
    generate(app, PROMPT)
    no_traceback(app)
    errors = [e.value for e in app.error]
    assert any(e.startswith("Something went wrong while generating") for e in errors), errors
    assert not any("secret" in e for e in errors)
    assert "secret internals" in caplog.text  # the details stay on the server


@pytest.mark.parametrize(
    "view, helper", [("Model", "model_card"), ("Samples", "gallery_summary"), ("Attention", "attention_parts")]
)
def test_unexpected_error_in_a_view_is_one_sentence(app, monkeypatch, caplog, view, helper):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("secret internals")

    if view == "Attention":
        generate(app, PROMPT)
    module = {"Model": "model_card", "Samples": "gallery", "Attention": "attention"}[view]
    monkeypatch.setattr(f"e2p.views.{module}.{helper}", broken)
    open_view(app, view)
    no_traceback(app)
    errors = [e.value for e in tab(app, view).get("error")]
    assert len(errors) == 1 and errors[0].startswith(f"Something went wrong in the {view} view"), errors
    assert "secret" not in errors[0] and "secret internals" in caplog.text
    assert [t.label for t in app.tabs] == [
        "Generate",
        "Attention",
        "Samples",
        "Compare",
        "Model",
    ]  # the rest still works


def test_app_says_programs_are_not_run_without_the_sandbox(sandbox_off, app):
    no_traceback(app)

    def not_run_lines():
        return [
            e.value
            for kind in ("info", "warning")
            for e in getattr(app, kind)
            if "programs are not run" in e.value.lower()
        ]

    assert len(not_run_lines()) == 1 and sandbox_off.SWITCH in not_run_lines()[0]
    assert any(c.value.startswith("No program is run on this server") for c in app.caption)
    generate(app, PROMPT, strategy="greedy", max_len=16, rerank="ranker")
    assert all(c.runs is None for c in app.session_state["result"].candidates)
    assert len(not_run_lines()) == 1, not_run_lines()  # said once, not once per source


def test_app_says_what_is_run_where_and_with_which_limits(monkeypatch, artifacts):
    from streamlit.testing.v1 import AppTest

    from e2p.sandbox import runner as sandbox

    monkeypatch.setattr(
        sandbox, "sandbox_status", lambda: sandbox.SandboxStatus(True, "", "bubblewrap, then uid 65534")
    )
    monkeypatch.setenv(ENV_FOLDER, str(artifacts))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    no_traceback(at)
    assert not [i.value for i in at.info if "not run" in i.value]
    text = " ".join(c.value for c in at.caption)
    limits = sandbox.describe_limits()
    assert limits[1:] in text and "bubblewrap, then uid 65534" in text
    assert "training programs" in text and "never run as code" in text


def test_model_view_with_unmeasured_runs(monkeypatch, tmp_path, artifacts):
    from streamlit.testing.v1 import AppTest

    copy = Path(shutil.copytree(artifacts, tmp_path / "artifacts"))
    manifest = json.loads((copy / "manifest.json").read_text())
    model = manifest["test_metrics"]["model"]
    model.update(exec_match="unavailable", runs_rate="unavailable", runs_unavailable="bwrap is missing")
    (copy / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setenv(ENV_FOLDER, str(copy))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    model_tab = open_view(at, "Model")
    no_traceback(at)
    assert any("unavailable for model" in c.value and "bwrap is missing" in c.value for c in model_tab.get("caption"))
    table = model_tab.get("dataframe")[0].value
    assert table[table["system"] == "model"]["exec match"].isna().all()


def test_widget_values_survive_switching_views(app):
    generate(app, PROMPT, strategy="greedy", max_len=12)
    open_view(app, "Samples")
    app.text_input(key="gal_query").input("add").run()
    open_view(app, "Attention")
    app.radio(key="att_kind").set_value("encoder").run()
    open_view(app, "Model")
    open_view(app, "Samples")
    assert app.text_input(key="gal_query").value == "add"
    open_view(app, "Attention")
    assert app.radio(key="att_kind").value == "encoder"
    open_view(app, "Generate")
    assert app.radio(key="strategy").value == "greedy" and app.slider(key="max_len").value == 12
    app.checkbox(key="baseline").check().run()
    open_view(app, "Model")
    open_view(app, "Generate")
    assert app.checkbox(key="baseline").value is True and app.radio(key="strategy").disabled


# ------------------------------------------------------------------ what the code does (the run panel)


def shown_result(app, code: str, run):
    """The app's last answer with `code` and its run replaced, drawn again: the status under it."""
    from dataclasses import replace

    result = app.session_state["result"]
    app.session_state["result"] = replace(result, code=code, formatted=code, run=run, added=None)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    gen_tab = tab(app, "Generate")
    return [unescaped(e.value) for kind in ("success", "warning", "error", "info") for e in gen_tab.get(kind)]


def unescaped(markdown: str) -> str:
    """Text the app wrote through `plain` (every ASCII punctuation mark backslash-escaped), as shown."""
    import re

    return re.sub(r"\\(.)", r"\1", markdown)


@pytest.mark.skipif(not sandbox_status().available, reason="the sandbox cannot isolate here")
def test_the_run_panel_says_what_the_code_did(app):
    from e2p.sandbox.runner import RunResult

    generate(app, PROMPT)
    result = app.session_state["result"]
    assert "What the code does" in [h.value for h in tab(app, "Generate").get("subheader")]
    # the answer's own run, as the server made it to choose it
    if result.run is not None and result.run.ok and result.run.stdout.strip():
        assert any(s.startswith("Ran and printed") for s in shown_result(app, result.code, result.run))
    printed = shown_result(app, "print(42)\n", RunResult(0, "42\n", "", False))
    assert any(s.startswith("Ran and printed 42") for s in printed)
    never = shown_result(app, "def fib(n):\n    return n\n", RunResult(0, "", "", False))
    assert any("printed nothing: `fib` is defined and never called" in s for s in never), never
    trace = 'Traceback (most recent call last):\n  File "main.py", line 3, in <module>\n'
    trace += "NameError: name 'x' is not defined\n"
    raised = shown_result(app, "a = 1\nb = 2\nprint(x)\n", RunResult(1, "", trace, False))
    assert any(s.startswith("Raised NameError on line 3") for s in raised), raised
    labels = [m.label for m in tab(app, "Generate").get("metric")]
    assert "Model's confidence" in labels and "Mean confidence" not in labels
    # a line the completion rule added is said to be the rule's, under the code and among the token marks
    from dataclasses import replace

    app.session_state["result"] = replace(result, added="print(add(15, 27))")
    app.run()
    gen_tab = tab(app, "Generate")
    assert any("was added by a rule, not written by the model" in unescaped(c.value) for c in gen_tab.get("caption"))
    if result.origins is not None and result.tokens_are_code:
        assert any("e2p-added" in h for h in texts(gen_tab, "html"))


def test_the_run_panel_says_when_nothing_ran(app, sandbox_off):
    generate(app, PROMPT)
    shown = [unescaped(e.value) for e in tab(app, "Generate").get("info")]
    assert any(s.startswith("Not run: the sandbox is off") for s in shown), shown


@pytest.mark.skipif(not sandbox_status().available, reason="the sandbox cannot isolate here")
def test_run_runs_the_edited_code_in_the_sandbox_within_a_limit(app, monkeypatch):
    from e2p.sandbox import runner

    calls = []
    real = runner._run
    monkeypatch.setattr(runner, "_run", lambda code, timeout: calls.append(code) or real(code, timeout))
    generate(app, PROMPT)
    calls.clear()
    area = [t for t in app.text_area if t.label.startswith("Edit the code")][0]
    area.input("print(6 * 7)\nprint(undefined)\n")
    [b for b in app.button if b.label == "Run"][0].click()
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert calls and calls[-1] == "print(6 * 7)\nprint(undefined)\n"  # through the sandbox's runner
    gen_tab = tab(app, "Generate")
    assert any(unescaped(e.value).startswith("Raised NameError on line 2") for e in gen_tab.get("error"))
    assert "42" in [c.value for c in gen_tab.get("code")]
    for _ in range(5):  # past the limit: said on the page, nothing more runs
        [b for b in app.button if b.label == "Run"][0].click()
        app.run()
    assert any("runs a minute" in unescaped(w.value) for w in tab(app, "Generate").get("warning"))
    assert len(calls) <= 5


# ------------------------------------------------------------------ polish (issue 28)


@pytest.mark.slow  # another full generation in the app; the fast tier keeps the run panel's
def test_switching_the_attention_kind_keeps_the_layer_where_it_exists(app):
    generate(app, PROMPT)
    result = app.session_state["result"]
    dec_layers, enc_layers = result.attention["decoder"].shape[0], result.attention["encoder"].shape[0]
    attention_tab = open_view(app, "Attention")
    assert result.formatted.strip() in [c.value.strip() for c in attention_tab.get("code")]  # the code it explains
    app.radio(key="att_kind").set_value("decoder").run()
    app.selectbox(key="att_layer").set_value(0).run()
    app.radio(key="att_kind").set_value("encoder").run()
    assert app.selectbox(key="att_layer").value == 0  # layer 0 exists in both: kept
    captions = [unescaped(c.value) for c in tab(app, "Attention").get("caption")]
    assert any(c.startswith("Showing Encoder self-attention") and ": layer 0" in c for c in captions), captions
    if dec_layers > enc_layers:
        app.radio(key="att_kind").set_value("decoder").run()
        app.selectbox(key="att_layer").set_value(dec_layers - 1).run()
        app.radio(key="att_kind").set_value("encoder").run()
        assert not app.exception and app.selectbox(key="att_layer").value == enc_layers - 1  # its last


@pytest.mark.slow  # another full generation in the app; the fast tier keeps the run panel's
def test_every_figure_says_what_it_is_and_the_model_card_shows_no_server_path(app, artifacts):
    gallery = open_view(app, "Samples")
    labels = [m.label for m in gallery.get("metric")]
    assert "Mean sentence BLEU" in labels and "Mean BLEU" not in labels
    model = open_view(app, "Model")
    table = model.get("dataframe")[0].value
    assert "corpus BLEU" in table.columns
    shown = [str(e.value) for kind in ("caption", "markdown", "code") for e in model.get(kind)]
    assert not any(str(artifacts.resolve()) in text for text in shown)  # no server path
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert REBUILD in [c.value for c in model.get("code")] and REBUILD in readme


def test_no_deploy_button_and_no_usage_statistics():
    import tomllib

    config = tomllib.loads((Path(__file__).resolve().parents[1] / ".streamlit" / "config.toml").read_text())
    assert config["client"]["toolbarMode"] == "viewer" and config["browser"]["gatherUsageStats"] is False


@pytest.mark.slow  # another full generation in the app; the fast tier keeps the run panel's
def test_the_candidates_show_their_code_readably(app):
    generate(app, PROMPT)
    result = app.session_state["result"]
    if len(result.candidates) > 1:
        closed = [c.value for c in tab(app, "Generate").get("caption")]
        assert not [c for c in closed if c.startswith("Candidate ")]  # not drawn (nor sent) until opened
        open_expander(app, "candidates_open")
        codes = [c.value.strip() for c in tab(app, "Generate").get("code")]
        assert all(c.code.strip() in codes for c in result.candidates)  # each candidate as code, lines kept
        assert app.session_state["result"] is result  # opening it generated nothing


@pytest.mark.skipif(not sandbox_status().available, reason="the sandbox cannot isolate here")
def test_the_followed_example_is_diffed_and_run_only_when_opened(app):
    generate(app, PROMPT)
    result = app.session_state["result"]
    if result.neighbour_code is None:
        pytest.skip("this model's answer followed no example")
    run_key = f"example_run_{result_key(result)}"
    assert run_key not in app.session_state and "diff" not in [c.language for c in app.code]
    open_expander(app, "example_open")
    assert run_key in app.session_state and "diff" in [c.language for c in app.code]
    assert "The example's own run:" in [c.value for c in app.caption]


@pytest.mark.skipif(not (REPO / "artifacts" / "manifest.json").is_file(), reason="needs the shipped model")
def test_a_script_example_shown_as_a_function_is_said_to_be_a_rules_rewriting(monkeypatch):
    """Asked for a function whose nearest example is a script, the model is shown the function the
    script computes: the page says so and shows the script as written beside it."""
    prompt = "write a python function to convert a string to uppercase"
    app = generate(start_app(REPO / "artifacts", monkeypatch), prompt)
    result = app.session_state["result"]
    assert result.neighbour_rewritten is not None and result.neighbour_rewritten.startswith("def ")
    assert "def " not in result.neighbour_code  # the training example as written: a script
    open_expander(app, "example_open")
    assert any("a script, shown as the function it computes" in c.value for c in app.caption)
    assert any(c.value == result.neighbour_code for c in app.code)
