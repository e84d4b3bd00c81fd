"""`python -m e2p bench`'s figures on a tiny artifact: every figure present and consistent."""

import pytest

from e2p.benchmark import run_benchmark


@pytest.mark.slow
def test_run_benchmark_reports_every_figure_against_its_baseline(tiny_artifacts, synthetic_corpus):
    out = run_benchmark(str(tiny_artifacts), str(synthetic_corpus), limit=3, log=lambda msg: None)
    assert out["prompts"] == 3 and out["threads"] == 1
    for name in ("greedy", "beam5", "default", "ranker"):
        assert 0 < out[f"{name}_ms_p50"] <= out[f"{name}_ms_p95"]
    assert out["default_vs_ranker_p50"] == pytest.approx(out["default_ms_p50"] / out["ranker_ms_p50"], rel=0.02)
    # decoding 200 tokens re-running the whole prefix costs more than with the cache
    assert out["greedy200_ms_nocache"] > out["greedy200_ms_cached"] and out["cache_speedup_200"] > 1
    assert out["greedy_cache_speedup"] > 0 and out["beam5_cache_speedup"] > 0
    assert out["train_speedup"] > 0 and out["train_tokens_per_s_plain"] > 0 and out["train_tokens_per_s"] > 0
    assert out["train_steps"] == 16 and out["train_speed_options"]
    assert "sandbox_run_ms_p50" in out or "sandbox_unavailable" in out
