"""`run_benchmark` (python -m e2p benchmark) end to end on the tiny test model, each phase made small."""

from __future__ import annotations

import math
import os
import signal
from contextlib import contextmanager

import pytest

from e2p.evaluation.benchmark import run_benchmark
from e2p.model.training import SPEED_OPTIONS
from e2p.sandbox import runner as sandbox

pytestmark = pytest.mark.slow  # ~35 s on the 2 shared cores (two trainer processes start), fixture aside

LIMIT_S = 240  # the whole call, tiny phases; a hang (e.g. a trainer worker that never answers) fails here

PHASES = ("greedy", "beam5", "default", "ranker", "own")
LATENCIES = (
    [f"{phase}_ms_{q}" for phase in PHASES for q in ("p50", "p95")]
    + [
        "greedy_nocache_ms_p50",
        "beam5_nocache_ms_p50",
        "greedy200_ms_cached",
        "greedy200_ms_nocache",
        "decode_floor_ms",
    ]
    + [f"{case}_ms_per_token{path}" for case in ("greedy", "greedy_guard", "beam5_guard") for path in ("", "_eager")]
)
RATIOS = [
    "default_vs_ranker_p50",
    "own_vs_ranker_p50",
    "greedy_cache_speedup",
    "beam5_cache_speedup",
    "cache_speedup_200",
]
RATIOS += ["train_speedup", "train_speedup_median_batch", "greedy_vs_floor", "greedy_vs_floor_of_minima"]
RATIOS += [f"{case}_speedup" for case in ("greedy", "greedy_guard", "beam5_guard")]


@contextmanager
def time_limit(seconds: int):
    """Fail the test after `seconds` s (SIGALRM: pytest-timeout is not installed); the benchmark's own
    `finally` then stops its trainer workers."""

    def expired(signum, frame):
        raise TimeoutError(f"run_benchmark took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def figures(tiny_artifacts, synthetic_corpus):
    said = []
    with time_limit(LIMIT_S):
        result = run_benchmark(
            str(tiny_artifacts),
            str(synthetic_corpus),
            limit=2,
            threads=1,
            log=said.append,
            uncached=1,
            forced_tokens=8,
            forced_prompts=1,
            sandbox_runs=1,
            train_steps=1,
            first_answers=1,
        )
    return result, said


def test_the_benchmark_times_every_phase_with_the_sizes_asked(figures):
    result, said = figures
    assert set(LATENCIES + RATIOS) <= set(result)
    assert result["prompts"] == 2 and result["threads"] == 1
    assert result["forced_tokens"] == 8  # the tiny model has more positions than that: the size asked
    assert result["train_steps"] == 1 and result["train_threads"] == 1
    assert set(result["train_speed_options"]) == set(SPEED_OPTIONS)
    assert said[0] == "timing 2 test prompts, 1 thread(s)"
    assert "timing 1 prompts without the cache" in said and "timing 8-token greedy decoding" in said
    assert any(line.startswith("timing 1 training steps of 2 trainers") for line in said)
    # the fast decoder step writes what the reference step writes, on every timed prompt
    assert result["fast_vs_eager_prompts"] == 2 and result["fast_vs_eager_differ"] == 0


@pytest.mark.parametrize("key", LATENCIES)
def test_latencies_are_positive_milliseconds(figures, key):
    value = figures[0][key]
    assert isinstance(value, float) and 0 < value < 120_000, (key, value)


def test_percentiles_are_ordered(figures):
    result = figures[0]
    for phase in PHASES:
        assert result[f"{phase}_ms_p50"] <= result[f"{phase}_ms_p95"], phase


@pytest.mark.parametrize("key", RATIOS)
def test_ratios_are_positive_and_finite(figures, key):
    value = figures[0][key]
    assert isinstance(value, float) and 0 < value < 1000 and math.isfinite(value), (key, value)


def test_the_first_answer_is_timed_in_a_fresh_process(figures):
    result, said = figures
    assert "timing 1 first answers, each in a fresh process" in said
    assert 0 < result["first_answer_s_p50"] <= result["first_answer_s_max"] < 120


def test_training_throughput_and_losses(figures):
    result = figures[0]
    assert isinstance(result["train_target_tokens"], int) and result["train_target_tokens"] > 0
    assert result["train_tokens_per_s_plain"] > 0 and result["train_tokens_per_s"] > 0
    # the same batch from the same weights: both trainers see nearly the same loss, ~ln(vocab) untrained
    plain, configured = result["train_loss_plain"], result["train_loss_configured"]
    assert 0 < plain < 20 and 0 < configured < 20
    assert configured == pytest.approx(plain, rel=0.05)


def test_sandbox_cost_is_measured_or_said_unavailable(figures):
    result = figures[0]
    if os.environ.get("E2P_REQUIRE_SANDBOX") == "1":
        assert sandbox.sandbox_status().available, sandbox.sandbox_status().reason
    if sandbox.sandbox_status().available:
        assert result["sandbox_available"] is True
        assert result["sandbox_ms"] > 0 and result["sandbox_plain_ms"] > 0 and result["sandbox_bwrap_ms"] > 0
        assert result["sandbox_vs_plain"] == pytest.approx(result["sandbox_ms"] / result["sandbox_plain_ms"], abs=0.01)
        assert result["sandbox_minus_bwrap_ms"] == pytest.approx(
            result["sandbox_ms"] - result["sandbox_bwrap_ms"], abs=0.2
        )
    else:
        assert result["sandbox_available"] is False and result["sandbox_reason"] == sandbox.sandbox_status().reason


def test_the_floor_is_timed_beside_each_fast_greedy_timing(monkeypatch):
    """The machine's speed drifts within seconds: the floor is timed just before each fast greedy
    timing, `pairs` times, and greedy_vs_floor is the median of those paired ratios, not a ratio of
    minima taken at different moments; the other cases are timed `rounds` times."""
    from types import SimpleNamespace

    from e2p.evaluation import benchmark

    order = []
    floors, greedy = iter([1.0, 2.0, 4.0]), iter([3.0, 3.0, 3.0])

    def floor(model):
        order.append("floor")
        return next(floors)

    def timed(generator, prompts, settings, eager):
        case = (settings.strategy, settings.syntax_guard, eager)
        order.append(case)
        return next(greedy) if case == ("greedy", False, False) else 5.0

    monkeypatch.setattr(benchmark, "arithmetic_floor_ms", floor)
    monkeypatch.setattr(benchmark, "_ms_per_step", timed)
    out = benchmark.decoding_speed(SimpleNamespace(model=None), ["add two numbers"], tokens=6, rounds=1, pairs=3)
    fast_greedy = ("greedy", False, False)
    assert order.count("floor") == order.count(fast_greedy) == 3
    assert all(order[i + 1] == fast_greedy for i, x in enumerate(order) if x == "floor")  # side by side
    assert order.count(("beam", True, True)) == order.count(("greedy", True, False)) == 1
    assert out["greedy_vs_floor"] == 1.5  # the median of 3/1, 3/2 and 3/4; the minima's ratio would say 3
    assert out["decode_floor_ms"] == 1.0 and out["greedy_ms_per_token"] == 3.0
    assert out["greedy_vs_floor_of_minima"] == 3.0  # printed beside it, as it was reported before
