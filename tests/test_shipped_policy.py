"""The shipped recipe and the shipped artifact agree, and the benchmark's cheap parts work: fast-tier
checks of `e2p.artifact.export` and `e2p.evaluation.benchmark`, whose full runs are slow tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from e2p.artifact.export import inference_config, own_is_default
from e2p.data.features import FeatureConfig
from e2p.evaluation.benchmark import _percentile, sandbox_cost
from e2p.model.decoding import DecodeSettings
from e2p.model.training import TrainConfig

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def shipped() -> dict:
    path = REPO / "artifacts" / "config.json"
    if not path.is_file():
        pytest.skip("no shipped artifact in artifacts/")
    return json.loads(path.read_text())


def test_the_default_recipe_writes_the_policy_the_shipped_artifact_answers_by(shipped):
    cfg = TrainConfig.load(REPO / "train" / "configs" / "default.json")
    written = inference_config(cfg)
    for key in ("decoding", "ranker_decoding"):
        assert DecodeSettings.from_config(shipped[key]) == DecodeSettings(**written[key]), key
    assert DecodeSettings.from_config(shipped["own"]["decoding"]) == DecodeSettings(**written["own"]["decoding"])
    assert shipped["own"]["rerank"] == written["own"]["rerank"] == "run"
    for key in ("rerank", "pool", "fallback", "ranker_pool"):
        assert shipped[key] == written[key], key
    assert FeatureConfig.from_dict(shipped["features"]) == FeatureConfig.from_dict(written["features"])
    assert own_is_default(cfg)  # the default answer is the model's own code


def test_percentiles_and_the_sandbox_cost():
    assert _percentile([5.0, 1.0, 4.0, 2.0, 3.0], 50) == 3.0 and _percentile([5.0, 1.0, 4.0, 2.0, 3.0], 95) == 5.0
    assert _percentile([], 50) == 0.0  # nearest rank, never an interpolated value
    cost = sandbox_cost(runs=2)
    if "sandbox_unavailable" not in cost:
        assert cost["sandbox_run_ms_p50"] > 0 and cost["subprocess_run_ms_p50"] > 0
        assert cost["sandbox_cost_ratio"] > 0
