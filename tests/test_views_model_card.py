"""The Model view's helpers: the model card, the answer rule, the metrics table and bars."""

from __future__ import annotations

from e2p.answer.policy import Answer, Policy
from e2p.model.decoding import DecodeSettings
from e2p.views import model_card


def test_answer_rule_says_whether_the_model_or_the_ranker_answers():
    model = Answer(DecodeSettings(strategy="greedy", syntax_guard=True), "score", 0)
    assert model_card.answer_rule(model) == "greedy + syntax guard, rerank=score — the model's own code"
    own = Answer(DecodeSettings(strategy="greedy"), "run", 0, fallback=False)
    assert model_card.answer_rule(own).endswith("the model's own code, no fallback to a training program")
    ranker = Answer(DecodeSettings(strategy="greedy"), "ranker", 10)
    assert model_card.answer_rule(ranker).startswith("retrieval: greedy, rerank=ranker, pool=10 — ")


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
    rows = model_card.metrics_rows(metrics)
    assert [r["system"] for r in rows] == ["model", "retrieval"]
    assert rows[0]["corpus BLEU"] == 40.1 and rows[0]["parses"] == 90.0 and rows[1]["exec match"] is None
    config = {
        "model": {"d_model": 64, "n_heads": 4, "enc_layers": 2, "dec_layers": 3},
        "features": {"copy": True, "retrieval": False},
    }
    own = Policy(Answer(DecodeSettings(), "run", 0), Answer(DecodeSettings(strategy="greedy"), "ranker", 10))
    card = dict(model_card.model_card(config, {"epochs": 7}, 12345, own))
    assert card["parameters"] == "12,345" and card["layers"] == "2 encoder, 3 decoder"
    assert "4 heads" in card["width"] and card["inputs"].startswith("copy")
    assert card["answer"] == "beam 5, rerank=run — the model's own code"  # the policy's default answer
    ranked = Policy(own.ranker, own.ranker)
    assert "10 nearest training programs" in dict(model_card.model_card(config, {}, 1, ranked))["answer"]
    assert model_card.rebuild_command().startswith("python -m train")


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
    rows = model_card.metrics_rows(metrics)
    assert rows[0]["exec match"] is None and rows[0]["runs"] is None and rows[1]["exec match"] == 50.0
    bars = model_card.metric_bars(metrics)
    assert bars["model"] == {"corpus BLEU": 40.0, "parse %": 90.0, "exec match %": None}
    assert bars["retrieval"]["exec match %"] == 50.0
    assert model_card.unmeasured_note(metrics) == (
        "Runs and exec match are unavailable for model: programs were " "not run (bubblewrap (bwrap) is not installed)."
    )
    assert model_card.unmeasured_note({"retrieval": metrics["retrieval"]}) is None
