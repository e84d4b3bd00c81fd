"""The app's inputs: the artifact folder, the prompt, and the decoding settings its controls mean."""

from __future__ import annotations

from pathlib import Path

import pytest

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


def test_describe_settings():
    assert inputs.describe_settings(DecodeSettings(beam_size=4)) == "beam 4"
    assert inputs.describe_settings(DecodeSettings(strategy="greedy", syntax_guard=True, eos_penalty=2)) == (
        "greedy + syntax guard, EOS -2"
    )
    assert inputs.describe_settings(DecodeSettings(strategy="sample", temperature=0.5)) == "sample 5 T=0.5 top-p=0.95"
    assert inputs.describe_settings(None) == ""
