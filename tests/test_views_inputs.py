"""The app's inputs: the artifact folder, the prompt, and the decoding settings its controls mean."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from e2p.answer.policy import Answer, Policy
from e2p.constants import RERANKS
from e2p.model.decoding import DecodeSettings, DecodeSettingsError
from e2p.views import inputs


def test_artifact_folder_env_relative_and_absolute(tmp_path):
    assert inputs.artifact_folder(tmp_path, environ={}) == tmp_path / "artifacts"
    assert inputs.artifact_folder(tmp_path, environ={"E2P_ARTIFACTS": "other"}) == tmp_path / "other"
    assert inputs.artifact_folder(tmp_path, environ={"E2P_ARTIFACTS": "/abs/dir"}) == Path("/abs/dir")


def test_folder_stamp_and_optional_json(tmp_path):
    assert inputs.folder_stamp(tmp_path) == 0.0
    (tmp_path / "manifest.json").write_text("{}")
    assert inputs.folder_stamp(tmp_path) > 0
    assert inputs.read_optional_json(tmp_path / "missing.json") is None
    (tmp_path / "bad.json").write_text("{not json")
    assert inputs.read_optional_json(tmp_path / "bad.json") is None
    assert inputs.read_optional_json(tmp_path / "manifest.json") == {}


@pytest.mark.parametrize("text", [None, "", "   \n\t "])
def test_prepare_prompt_empty(text):
    assert inputs.prepare_prompt(text) is None


def test_prepare_prompt_strips():
    assert inputs.prepare_prompt("  add two numbers \n") == "add two numbers"


def test_build_settings_per_strategy():
    d = DecodeSettings(strategy="beam", beam_size=5, n_best=5, max_len=100)
    beam = inputs.build_settings(d, "beam", 3, 1.0, 0.9, 50)
    assert (beam.strategy, beam.beam_size, beam.n_best, beam.max_len) == ("beam", 3, 3, 50)
    greedy = inputs.build_settings(d, "greedy", 3, 1.0, 0.9, 50)
    assert greedy.strategy == "greedy" and greedy.max_len == 50
    sample = inputs.build_settings(d, "sample", 3, 0.7, 0.8, 50)
    assert (sample.strategy, sample.temperature, sample.top_p, sample.seed) == ("sample", 0.7, 0.8, None)


def test_build_settings_caps_length_and_beam():
    d = DecodeSettings()
    s = inputs.build_settings(d, "beam", 99, 1.0, 0.9, 10_000, model_max_len=126)
    assert s.max_len == 126 and s.beam_size == inputs.MAX_BEAM
    s = inputs.build_settings(d, "beam", 2, 1.0, 0.9, 10_000)
    assert s.max_len == inputs.MAX_LEN_CAP
    assert inputs.build_settings(d, "greedy", 1, 1.0, 0.9, 0).max_len == 1


def test_build_settings_rejects_bad_values():
    with pytest.raises(DecodeSettingsError):
        inputs.build_settings(DecodeSettings(), "sample", 1, 0.0, 0.9, 20)
    with pytest.raises(DecodeSettingsError):
        inputs.build_settings(DecodeSettings(), "nucleus", 1, 1.0, 0.9, 20)


@pytest.mark.parametrize("asked, used", [(0, 0.0), (3.5, 3.5), (8, 8.0), (-1, 0.0), (30, inputs.MAX_FOLLOW)])
def test_build_settings_follow_example_is_clamped(asked, used):
    s = inputs.build_settings(DecodeSettings(follow_example=2.0), "greedy", 1, 1.0, 0.9, 20, follow_example=asked)
    assert s.follow_example == used and isinstance(s.follow_example, float)


def test_build_settings_follow_example_default_and_bad_values():
    assert inputs.build_settings(DecodeSettings(follow_example=2.0), "greedy", 1, 1.0, 0.9, 20).follow_example == 2.0
    for bad in (math.nan, math.inf, "much", None):
        with pytest.raises(DecodeSettingsError):
            inputs.follow_weight(bad)


def stand_in_generator():
    """Only what `request_options` reads from a Generator: an artifact whose default answer is the
    model's own code (beam 5, rerank run, no fallback), with a greedy retrieval baseline of pool 10."""
    ranker = DecodeSettings(strategy="greedy", syntax_guard=True, eos_penalty=1.0, max_len=256)
    default = DecodeSettings(beam_size=5, syntax_guard=True, follow_example=5.0, max_len=256)
    policy = Policy(Answer(default, "run", 0, False), Answer(ranker, "ranker", 10, True), example_pool=10)
    return SimpleNamespace(policy=policy, model=SimpleNamespace(config=SimpleNamespace(max_len=130)))


def test_request_options_from_the_controls():
    gen = stand_in_generator()
    values = dict(
        strategy="beam", beam_size=3, temperature=0.5, top_p=0.8, max_len=40, rerank="run", follow_example=2.5
    )
    ask = inputs.request_options(gen, False, values)
    settings = ask.settings
    assert (settings.strategy, settings.beam_size, settings.max_len, settings.follow_example) == ("beam", 3, 40, 2.5)
    assert settings.syntax_guard and settings.eos_penalty == 0.0  # the rest: the artifact's defaults
    assert (ask.rerank, ask.pool, ask.fallback) == ("run", 0, False)  # the policy's default answer
    # the ranker picked in the controls: the policy's pool and fallback for it, the controls' decoding
    ranked = inputs.request_options(gen, False, {**values, "rerank": "ranker"})
    assert (ranked.rerank, ranked.pool, ranked.fallback, ranked.settings) == ("ranker", 10, True, settings)


def test_request_options_defaults_where_no_control_was_drawn():
    gen = stand_in_generator()
    ask = inputs.request_options(gen, False, {})
    assert ask.settings == replace(gen.policy.default.decoding, max_len=128)  # the model's limit: max_len - 2
    assert (ask.rerank, ask.pool, ask.fallback) == ("run", 0, False)


def test_request_options_retrieval_baseline_ignores_all_controls_but_the_length():
    gen = stand_in_generator()
    values = dict(strategy="sample", beam_size=1, temperature=0.5, top_p=0.8, max_len=40, rerank="score")
    values["follow_example"] = 3.0
    ask = inputs.request_options(gen, True, values)
    assert ask.settings == replace(gen.policy.ranker.decoding, max_len=40)
    assert (ask.rerank, ask.pool, ask.fallback) == ("ranker", 10, True)  # the policy's ranker pool, its fallback
    assert inputs.request_options(gen, True, {**values, "max_len": 10_000}).settings.max_len == 128
    assert inputs.request_options(gen, True, {}).settings == replace(gen.policy.ranker.decoding, max_len=128)


def test_describe_request():
    own = DecodeSettings(beam_size=5, syntax_guard=True, follow_example=5.0)
    assert inputs.describe_request(own, "run", 0, fallback=False) == (
        "beam 5 + syntax guard, follow example +5, rerank=run — the model's own code: no training program "
        "among the candidates, no fallback"
    )
    assert inputs.describe_request(own, "run", 0).endswith("no training program among the candidates")
    greedy = DecodeSettings(strategy="greedy", syntax_guard=True, eos_penalty=1.0)
    assert inputs.describe_request(greedy, "ranker", 10) == (
        "retrieval: greedy + syntax guard, EOS -1, rerank=ranker, pool=10"
    )


def test_describe_settings():
    assert inputs.describe_settings(DecodeSettings(beam_size=4)) == "beam 4"
    assert inputs.describe_settings(DecodeSettings(strategy="greedy", syntax_guard=True, eos_penalty=2)) == (
        "greedy + syntax guard, EOS -2"
    )
    assert inputs.describe_settings(DecodeSettings(strategy="sample", temperature=0.5)) == "sample 5 T=0.5 top-p=0.95"
    assert inputs.describe_settings(None) == ""


def test_every_rerank_has_a_label_and_no_label_names_an_unknown_rerank():
    """The app's selectbox offers RERANKS and shows each through `rerank_label`."""
    unlabelled = [r for r in RERANKS if not inputs.RERANK_LABELS.get(r)]
    assert not unlabelled, f"reranks without a label: {unlabelled}"
    unknown = set(inputs.RERANK_LABELS) - set(RERANKS)
    assert not unknown, f"labels for reranks that do not exist: {unknown}"
    assert [inputs.rerank_label(r) for r in RERANKS] == [inputs.RERANK_LABELS[r] for r in RERANKS]
