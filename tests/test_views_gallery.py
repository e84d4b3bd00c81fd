"""The Samples view's helpers: filters, pages, the summary and each sample's label."""

from __future__ import annotations

import pytest

from e2p.views import gallery


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
    assert idx(gallery.filter_samples(SAMPLES)) == [0, 1, 2]
    assert idx(gallery.filter_samples(SAMPLES, "beam", "passed")) == [0]
    assert idx(gallery.filter_samples(SAMPLES, "beam", "failed")) == [1, 2]
    assert idx(gallery.filter_samples(SAMPLES, "beam", "does not parse")) == [2]
    assert idx(gallery.filter_samples(SAMPLES, "beam", "does not run")) == [2]
    assert idx(gallery.filter_samples(SAMPLES, "greedy", "passed")) == []
    assert idx(gallery.filter_samples(SAMPLES, "retrieval", "parses")) == []
    with pytest.raises(ValueError):
        gallery.filter_samples(SAMPLES, "beam", "green")


def test_filter_samples_search_and_bleu():
    idx = lambda kept: [i for i, _ in kept]  # noqa: E731
    assert idx(gallery.filter_samples(SAMPLES, query="STRING reverse")) == [2]
    assert idx(gallery.filter_samples(SAMPLES, "beam", query="print(2)")) == [1, 2]
    assert idx(gallery.filter_samples(SAMPLES, "greedy", query="x = 1")) == [0, 1, 2]
    assert idx(gallery.filter_samples(SAMPLES, min_bleu=20)) == [0, 1]


def test_pages():
    items = list(range(23))
    assert gallery.page_count(23, 10) == 3 and gallery.page_count(0, 10) == 1
    assert gallery.page(items, 3, 10) == [20, 21, 22]
    assert gallery.page(items, 9, 10) == [20, 21, 22]
    assert gallery.page(items, 0, 10) == list(range(10))


def test_gallery_summary_and_labels():
    s = gallery.gallery_summary(SAMPLES, "beam")
    assert s["samples"] == 3 and s["passed"] == pytest.approx(1 / 3)
    assert s["parses"] == pytest.approx(2 / 3)
    assert s["mean BLEU"] == pytest.approx(125 / 3)
    assert [gallery.sample_status(x, "beam") for x in SAMPLES] == ["passed", "parses", "fails"]
    assert gallery.sample_label(SAMPLES[0], "beam") == "print one — BLEU 100.0"
    assert gallery.sample_label({"prompt": "x" * 150}, "beam") == "x" * 100 + "…"
    assert gallery.metric_line(gallery.sample_metrics(SAMPLES[2], "beam")).startswith("BLEU 5.0 · parses no")
    assert gallery.metric_line({}) == "BLEU — · parses — · exact — · runs — · exec match —"
