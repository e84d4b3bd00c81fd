"""Latency and throughput figures, each compared with its baseline in the same run.

Decoding is timed end to end through `Generator.generate` (retrieval, decoding, placeholders,
parse check; no attention pass, no sandbox rerank, no retrieved candidates), once with the
key/value cache and once re-running the whole prefix at every step; the shipped default decoding
(with its rerank and retrieved candidates) is timed as well. Training throughput is target tokens per second over
real batches of the train split with the artifact's configuration.
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import replace

import torch

from .decoding import DecodeSettings, decode
from .vocab import Vocab


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def _time_generate(generator, prompts, settings, rerank="parse", pool=0) -> list[float]:
    out = []
    for prompt in prompts:
        start = time.perf_counter()
        generator.generate(prompt, settings, rerank=rerank, attention=False, pool=pool)
        out.append(1000 * (time.perf_counter() - start))
    return out


def _time_forced(generator, prompts, tokens: int, use_cache: bool) -> list[float]:
    """ms to decode exactly `tokens` tokens greedily (EOS banned until then)."""
    b = generator.bundle
    settings = DecodeSettings(strategy="greedy", min_len=tokens, max_len=tokens, use_cache=use_cache)
    out = []
    for prompt in prompts:
        src_ids = b.src_vocab.encode(b.featurizer.source(prompt).tokens)
        start = time.perf_counter()
        decode(b.model, src_ids, settings, bos_id=Vocab.bos_id, eos_id=Vocab.eos_id, pad_id=Vocab.pad_id)
        out.append(1000 * (time.perf_counter() - start))
    return out


def _train_throughput(generator, data: str, steps: int = 6) -> float:
    from .corpus import load_corpus
    from .loss import weighted_cross_entropy
    from .model import Seq2Seq
    from .training import TrainConfig, collate, make_batches, prepare

    cfg = TrainConfig.from_dict(generator.bundle.config["train"])
    prep = prepare(load_corpus(data), cfg)
    model = Seq2Seq(generator.model.config)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batches = make_batches(prep.train_pairs, cfg.batch_tokens, seed=0)[: steps + 1]
    tokens, elapsed = 0, 0.0
    for n, index in enumerate(batches):
        src, tgt_in, tgt_out = collate(prep.train_pairs, index, "cpu")
        start = time.perf_counter()
        loss = weighted_cross_entropy(model(src, tgt_in), tgt_out, None, cfg.label_smoothing, Vocab.pad_id)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if n:  # the first step warms up allocators and is not counted
            elapsed += time.perf_counter() - start
            tokens += int((tgt_out != Vocab.pad_id).sum())
    return tokens / max(elapsed, 1e-9)


PROBE = "print(6 * 7)"  # a fixed, harmless program: the only one ever run outside the sandbox


def sandbox_cost(runs: int = 20) -> dict:
    """Wall ms per run of one tiny program in the sandbox against a plain `python -I`
    subprocess (the pre-sandbox runner), interleaved so that machine load hits both alike."""
    import subprocess

    from .sandbox import run_code, sandbox_status

    if not sandbox_status().available:
        return {"sandbox_unavailable": sandbox_status().reason}
    boxed, plain = [], []
    for _ in range(runs):
        start = time.perf_counter()
        assert run_code(PROBE).stdout == "42\n"
        boxed.append(1000 * (time.perf_counter() - start))
        start = time.perf_counter()
        subprocess.run([sys.executable, "-I", "-c", PROBE], capture_output=True, stdin=subprocess.DEVNULL, check=True)
        plain.append(1000 * (time.perf_counter() - start))
    return {
        "sandbox_run_ms_p50": round(statistics.median(boxed), 1),
        "subprocess_run_ms_p50": round(statistics.median(plain), 1),
        "sandbox_overhead_ms_p50": round(statistics.median(boxed) - statistics.median(plain), 1),
        "sandbox_cost_ratio": round(statistics.median(boxed) / statistics.median(plain), 2),
    }


def run_benchmark(artifacts: str, data: str, limit: int = 60, threads: int = 1, log=None) -> dict:
    from .corpus import load_corpus
    from .generator import Generator

    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    torch.set_num_threads(threads)
    generator = Generator(artifacts)
    prompts = [ex.prompt for ex in load_corpus(data).split("test")][:limit]
    few = prompts[: max(1, min(len(prompts), 10))]
    base = generator.default_settings
    greedy = replace(base, strategy="greedy", n_best=1)
    beam5 = replace(base, strategy="beam", beam_size=5, n_best=5)

    log(f"timing {len(prompts)} test prompts, {threads} thread(s)")
    g_cached = _time_generate(generator, prompts, greedy)
    b_cached = _time_generate(generator, prompts, beam5)
    shipped = _time_generate(generator, prompts, base, generator.default_rerank, generator.default_pool)
    log(f"timing {len(few)} prompts without the cache")
    g_plain = _time_generate(generator, few, replace(greedy, use_cache=False))
    b_plain = _time_generate(generator, few, replace(beam5, use_cache=False))
    log("timing 200-token greedy decoding")
    f_cached = _time_forced(generator, few[:5], 200, True)
    f_plain = _time_forced(generator, few[:5], 200, False)
    log("timing sandbox runs")
    sandbox = sandbox_cost()
    log("timing training steps")
    tps = _train_throughput(generator, data)

    mean = statistics.mean
    result = {
        "prompts": len(prompts),
        "threads": threads,
        "greedy_ms_p50": round(_percentile(g_cached, 50), 1),
        "greedy_ms_p95": round(_percentile(g_cached, 95), 1),
        "beam5_ms_p50": round(_percentile(b_cached, 50), 1),
        "beam5_ms_p95": round(_percentile(b_cached, 95), 1),
        "default_ms_p50": round(_percentile(shipped, 50), 1),
        "default_ms_p95": round(_percentile(shipped, 95), 1),
        "greedy_nocache_ms_p50": round(_percentile(g_plain, 50), 1),
        "beam5_nocache_ms_p50": round(_percentile(b_plain, 50), 1),
        "greedy_cache_speedup": round(mean(g_plain) / mean(g_cached[: len(few)]), 2),
        "beam5_cache_speedup": round(mean(b_plain) / mean(b_cached[: len(few)]), 2),
        "greedy200_ms_cached": round(mean(f_cached), 1),
        "greedy200_ms_nocache": round(mean(f_plain), 1),
        "cache_speedup_200": round(mean(f_plain) / mean(f_cached), 2),
        "train_tokens_per_s": round(tps, 1),
        **sandbox,
    }
    return result
