"""The app's model selector and Compare view (AppTest), over three tiny models laid out as the
shipped ones are: the main model's folder, with `original/` and `conala/` inside it."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
from test_app import APP, TIMEOUT, open_view

from e2p.answer.bundle import sha256_file
from e2p.answer.generator import Generator
from e2p.answer.policy import Policy
from e2p.views.inputs import ENV_FOLDER

pytestmark = pytest.mark.slow  # three models loaded, one prompt through each


@pytest.fixture(scope="module")
def three_models(tmp_path_factory, tiny_default_artifacts, tiny_artifacts):
    root = tmp_path_factory.mktemp("three") / "artifacts"
    shutil.copytree(tiny_default_artifacts, root)
    shutil.copytree(tiny_artifacts, root / "original")
    conala = root / "conala"
    shutil.copytree(tiny_default_artifacts, conala)
    dataclasses.replace(Policy.load(conala, "rebuild"), runs=False).save(conala)  # answers are snippets
    manifest = json.loads((conala / "manifest.json").read_text())
    manifest["files"]["policy.json"] = sha256_file(conala / "policy.json")
    (conala / "manifest.json").write_text(json.dumps(manifest))
    return root


@pytest.fixture
def app(three_models, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv(ENV_FOLDER, str(three_models))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def parameters(folder) -> str:
    return f"{Generator(folder).model.num_parameters():,}-parameter"


def test_every_view_follows_the_chosen_model(app, three_models):
    picker = app.selectbox(key="model")
    assert picker.options == ["Main model", "CoNaLa model", "Original design"]
    assert parameters(three_models) in app.caption[0].value  # the header: the main model's size
    picker.set_value("original").run()
    assert not app.exception
    assert parameters(three_models / "original") in app.caption[0].value
    # Generate: the original model answers (no copy attention: its answers have no token origins)
    app.text_area(key="prompt_text").set_value("write a function to add two numbers")
    next(b for b in app.button if b.label == "Generate").click().run()
    assert not app.exception
    result = app.session_state["result"]
    assert result.origins is None and result.attention  # explained after the code was drawn
    # Attention: the maps of that answer; Samples and Model: the original's files
    attention = open_view(app, "Attention")
    assert any(e.type == "plotly_chart" for e in attention)
    card = open_view(app, "Model")
    assert any(e.type == "table" for e in card)
    samples = json.loads((three_models / "original" / "samples.json").read_text())["samples"]
    open_view(app, "Samples")
    assert any(samples[0]["prompt"][:40] in e.label for e in app.expander)
    # another model: its own answers, its own defaults in the controls
    app.selectbox(key="model").set_value("main").run()
    assert "result" not in app.session_state


def test_compare_shows_one_answer_per_model_each_labelled(app):
    view = open_view(app, "Compare")
    app.text_input(key="compare_text").set_value("write a python function to add two numbers")
    next(b for b in app.button if b.label == "Compare").click().run()
    assert not app.exception, [e.value for e in app.exception]
    view = open_view(app, "Compare")
    names = [m.value for m in view.markdown if m.value.startswith("**")]
    assert names == ["**Main model**", "**CoNaLa model**", "**Original design**"]
    rows = app.session_state["compare_rows"]
    assert [r.model.key for r in rows] == ["main", "conala", "original"] and all(r.result for r in rows)
    assert rows[1].status.text.startswith("snippet: not run") and rows[1].result.run is None
    assert all(r.seconds > 0 for r in rows)
    assert len(view.code) >= 3
    # "Open its attention": that model chosen, its answer in the Attention view
    next(b for b in app.button if b.key == "compare_attention_original").click().run()
    assert not app.exception
    assert app.session_state["model"] == "original" and app.session_state["view"] == "Attention"
    assert app.session_state["result"] is not None and app.session_state["result"].attention
