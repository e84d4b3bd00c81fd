"""The shipped recipe and the shipped artifact agree, and the benchmark's cheap parts work: fast-tier
checks of `e2p.artifact.export` and `e2p.evaluation.benchmark`, whose full runs are slow tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from e2p.answer.policy import Policy
from e2p.artifact.export import load_preset
from e2p.data.features import FeatureConfig
from e2p.evaluation.benchmark import _percentile

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def shipped() -> dict:
    path = REPO / "artifacts" / "config.json"
    if not path.is_file():
        pytest.skip("no shipped artifact in artifacts/")
    return json.loads(path.read_text())


def test_the_default_recipe_writes_the_policy_the_shipped_artifact_answers_by(shipped):
    cfg, policy = load_preset(REPO / "train" / "configs" / "default.json")
    assert Policy.load(REPO / "artifacts", "rebuild") == policy
    assert FeatureConfig.from_dict(shipped["features"]) == cfg.feature_config()
    assert policy.own_is_default and not policy.default.fallback  # the default answer is the model's own code
    assert policy.default.rerank == "run" and policy.ranker.pool == 10 and policy.example_pool == 10


def test_percentiles_are_nearest_rank():
    assert _percentile([5.0, 1.0, 4.0, 2.0, 3.0], 50) == 3.0 and _percentile([5.0, 1.0, 4.0, 2.0, 3.0], 95) == 5.0
    assert _percentile([], 50) == 0.0  # nearest rank, never an interpolated value
