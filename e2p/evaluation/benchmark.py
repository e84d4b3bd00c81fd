"""Latency and throughput figures, each compared with its baseline in the same run.

Decoding is timed end to end through `Generator.generate` (retrieval, decoding, placeholders,
parse check; no attention pass, no sandbox rerank, no retrieved candidates), once with the
key/value cache and once re-running the whole prefix at every step; the shipped default decoding
(with its rerank, and retrieved candidates where it has any) is timed as well, beside the `--rerank ranker`
baseline and the model's own code (`--own`). Training throughput is target tokens per second over
real batches of the train split with the artifact's configuration, for the plain trainer (every speed option of
TrainConfig off: the trainer as it was before them) and the configured one side by side: two worker processes
step in lockstep, alternating which goes first, on the same batches from the same initial weights
(`python -m e2p.evaluation.benchmark --threads 1 2` prints only that figure).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from dataclasses import replace

import torch

from ..answer.generator import Generator
from ..answer.policy import Request
from ..constants import CORPUS_PATH
from ..data.corpus import load_corpus
from ..data.vocab import Vocab
from ..model.decoding import DecodeSettings, decode
from ..model.training import (
    SPEED_OPTIONS,
    TrainConfig,
    collate,
    lr_at,
    make_batches,
    make_model,
    make_optimizer,
    plain,
    prepare,
    reuse_freed_memory,
    token_weights,
    train_step,
    with_speed_options,
)
from ..sandbox.timing import sandbox_timings


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


FIRST_PROMPT = "write a python function to check whether a number is prime"


def first_answer_seconds(artifacts: str, runs: int = 3, threads: int = 1) -> list[float]:
    """Wall seconds of `runs` fresh `python -m e2p generate` processes, one after another: what a user
    waits for a first answer (interpreter start, imports, loading the model, the default answer with
    its sandbox runs)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "e2p", "generate", FIRST_PROMPT, "--artifacts", str(artifacts)],
            capture_output=True,
            text=True,
            env=env,
        )
        out.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise RuntimeError(f"python -m e2p generate failed: {done.stderr.strip()[-300:]}")
    return out


def _time_generate(generator, prompts, ask: Request) -> list[float]:
    out = []
    for prompt in prompts:
        start = time.perf_counter()
        generator.generate(prompt, attention=False, **ask.kwargs())
        out.append(1000 * (time.perf_counter() - start))
    return out


def _timed_decodes(generator, prompts, settings: DecodeSettings, eager: bool = False) -> list[tuple[float, int]]:
    """(ms, decoder steps) of decoding each of `prompts` with `settings`, on the fast or the eager
    (`Seq2Seq.step`) path; a step is one token for every live row, the last one writing EOS."""
    b = generator.bundle
    out = []
    for prompt in prompts:
        src_ids = b.src_vocab.encode(b.featurizer.source(prompt).tokens)
        start = time.perf_counter()
        hyps = decode(
            b.model,
            src_ids,
            settings,
            bos_id=Vocab.bos_id,
            eos_id=Vocab.eos_id,
            pad_id=Vocab.pad_id,
            vocab_tokens=b.tgt_vocab.tokens,
            eager=eager,
        )
        out.append((1000 * (time.perf_counter() - start), max(len(h.tokens) for h in hyps) + 1))
    return out


def _time_forced(generator, prompts, tokens: int, use_cache: bool) -> list[float]:
    """ms to decode exactly `tokens` tokens greedily (EOS banned until then)."""
    settings = DecodeSettings(strategy="greedy", min_len=tokens, max_len=tokens, use_cache=use_cache)
    return [ms for ms, _ in _timed_decodes(generator, prompts, settings)]


def arithmetic_floor_ms(model, repeats: int = 300) -> float:
    """The arithmetic floor of one decoder step, ms: batch-1 `F.linear` with every matrix a step
    multiplies by (each decoder layer's self-attention q, k, v and output, cross-attention q and
    output, both feed-forward matrices; the output layer; with copy attention its query and gate),
    one after another, median over `repeats` steps. Nothing else a step does is counted."""
    weights = []
    for layer in model.decoder:
        sa, ca = layer.self_attn, layer.cross_attn
        weights += [sa.q_proj, sa.k_proj, sa.v_proj, sa.out_proj, ca.q_proj, ca.out_proj, layer.ff.fc1, layer.ff.fc2]
    weights.append(model.lm_head)
    if model.config.copy_attention:
        weights += [model.copy_q, model.copy_gate]
    pairs = [(m.weight.detach(), None if m.bias is None else m.bias.detach()) for m in weights]
    inputs = {w.size(1): torch.randn(1, w.size(1)) for w, _ in pairs}
    times = []
    with torch.inference_mode():
        for _ in range(repeats):
            start = time.perf_counter()
            for w, b in pairs:
                torch.nn.functional.linear(inputs[w.size(1)], w, b)
            times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def _ms_per_step(generator, prompts, settings: DecodeSettings, eager: bool) -> float:
    """ms per decoder step over `prompts` (`_timed_decodes`), all prompts together."""
    timed = _timed_decodes(generator, prompts, settings, eager)
    return sum(ms for ms, _ in timed) / max(sum(steps for _, steps in timed), 1)


def decoding_speed(generator, prompts: list[str], tokens: int = 200, rounds: int = 2, pairs: int = 6) -> dict:
    """ms per decoder step of the fast path (e2p.model.fast_decoder) and the eager one
    (`Seq2Seq.step`, the path before it) in the same run, alternating `rounds` times, for
    greedy decoding forced to `tokens` tokens with the syntax guard off and on, and beam 5 under the
    guard (forced as long); beside `arithmetic_floor_ms`. Also how many of the `prompts` got
    different candidate lists from the two paths (they agree to about 1e-5 in log-prob).

    `greedy_vs_floor` is the median, over `pairs` pairs, of the fast greedy path's time over the
    floor timed just before it (about half a second a pair). This machine's speed drifts within
    seconds (two floors a minute apart have read 0.31 and 0.43 ms), and a ratio of two minima taken
    at different moments moved between 1.3x and 2.0x over runs of the same code; a ratio within a
    pair sees one speed. `decode_floor_ms` and `greedy_ms_per_token` stay the fastest of their
    timings."""
    cases = {
        "greedy": DecodeSettings(strategy="greedy", min_len=tokens, max_len=tokens),
        "greedy_guard": DecodeSettings(strategy="greedy", min_len=tokens, max_len=tokens, syntax_guard=True),
        "beam5_guard": DecodeSettings(
            strategy="beam", beam_size=5, n_best=5, min_len=tokens, max_len=tokens, syntax_guard=True
        ),
    }
    timed: dict[str, dict[bool, list[float]]] = {name: {True: [], False: []} for name in cases}
    floor = []
    for r in range(max(rounds, pairs)):
        floor.append(arithmetic_floor_ms(generator.model))
        timed["greedy"][False].append(_ms_per_step(generator, prompts, cases["greedy"], False))
        if r >= rounds:
            continue
        for name, settings in cases.items():
            for eager in (False, True):
                if name != "greedy" or eager:
                    timed[name][eager].append(_ms_per_step(generator, prompts, settings, eager))
    out = {"decode_floor_ms": round(min(floor), 3)}
    for name in cases:
        fast, eager = min(timed[name][False]), min(timed[name][True])
        out[f"{name}_ms_per_token"] = round(fast, 3)
        out[f"{name}_ms_per_token_eager"] = round(eager, 3)
        out[f"{name}_speedup"] = round(eager / fast, 2)
    paired = [g / f for g, f in zip(timed["greedy"][False], floor)]  # each greedy timing over its own floor
    out["greedy_vs_floor"] = round(statistics.median(paired), 2)
    out["greedy_vs_floor_of_minima"] = round(out["greedy_ms_per_token"] / out["decode_floor_ms"], 2)  # as before
    return out


def candidates_agree(generator, prompts: list[str], ask: Request) -> dict:
    """The prompts whose candidate lists differ between the fast and the eager path, each written
    as the generator writes with `ask`'s settings (its first example followed); none expected."""
    b = generator.bundle
    differ = []
    for prompt in prompts:
        source = b.featurizer.source(prompt)
        src_ids = b.src_vocab.encode(source.tokens)
        lists = [
            [h.tokens for h in generator._write(source, src_ids, ask.settings, None, prompt, eager)[0]]
            for eager in (False, True)
        ]
        if lists[0] != lists[1]:
            differ.append(prompt)
    return {"fast_vs_eager_prompts": len(prompts), "fast_vs_eager_differ": len(differ), "differ_prompts": differ}


def _train_worker(conn, cfg_dict: dict, threads: int, vocabs: tuple[int, int], weights, batches) -> None:
    """One trainer in its own process (so that process-wide settings such as `reuse_memory` stay
    its own): build the model and optimizer, then time one `train_step` per batch index received."""
    torch.set_num_threads(threads)

    cfg = TrainConfig.from_dict(cfg_dict)
    if cfg.reuse_memory:
        reuse_freed_memory()
    torch.manual_seed(cfg.seed)
    model = make_model(cfg, *vocabs).train()  # (source, target) sizes: they differ without shared_vocab
    optimizer = make_optimizer(model, cfg)
    weights = None if weights is None else torch.tensor(weights)
    conn.send("ready")
    while (b := conn.recv()) is not None:
        pairs = batches[b]
        src, tgt_in, tgt_out = collate(pairs, list(range(len(pairs))), "cpu")
        start = time.perf_counter()
        loss = train_step(model, optimizer, src, tgt_in, tgt_out, cfg, weights, lr_at(b, cfg, 10_000))
        conn.send((time.perf_counter() - start, int((tgt_out != Vocab.pad_id).sum()), float(loss)))


def train_side_by_side(train_config: dict, data: str, steps: int = 16, threads: int = 1, log=None) -> dict:
    """Target tokens/s of the plain trainer and of the one with every speed option on ("configured"),
    stepping in lockstep on the same `steps` batches (after one warm-up step each), alternating which
    goes first. `train_config`: an artifact's config.json "train" section. Returns each one's tokens/s,
    `train_speedup` (configured / plain: total time, and the median of the per-batch ratios) and
    the mean loss of each over the timed steps (the same maths gives nearly the same loss)."""
    import multiprocessing as mp
    from dataclasses import asdict

    log = log or (lambda msg: None)
    cfg = with_speed_options(TrainConfig.from_trained(train_config))
    prep = prepare(load_corpus(data), cfg)
    index = make_batches(prep.train_pairs, cfg.batch_tokens, seed=0)[: steps + 1]
    batches = [[prep.train_pairs[i] for i in b] for b in index]
    weights = token_weights(cfg, prep.tgt_vocab)
    weights = None if weights is None else weights.tolist()
    trainers = {"plain": plain(cfg), "configured": cfg}
    ctx = mp.get_context("spawn")
    workers = {}
    try:
        for name, c in trainers.items():
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=_train_worker,
                daemon=True,
                args=(child, asdict(c), threads, (len(prep.src_vocab), len(prep.tgt_vocab)), weights, batches),
            )
            proc.start()
            child.close()  # the worker's end is its own: if it dies, recv() below raises EOFError, not waits
            workers[name] = (proc, parent)
        for proc, conn in workers.values():
            assert conn.recv() == "ready"
        log(f"timing {steps} training steps of {len(trainers)} trainers in lockstep, {threads} thread(s)")
        seconds = {name: [] for name in trainers}
        losses = {name: [] for name in trainers}
        tokens = 0
        for b in range(len(batches)):
            order = list(trainers) if b % 2 else list(trainers)[::-1]
            for name in order:
                workers[name][1].send(b)
                elapsed, n, loss = workers[name][1].recv()
                if b:  # the first step warms up allocators and caches and is not counted
                    seconds[name].append(elapsed)
                    losses[name].append(loss)
            tokens += n if b else 0
    finally:
        for proc, conn in workers.values():
            try:
                conn.send(None)
            except (BrokenPipeError, OSError):
                pass
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
    enabled = [name for name in SPEED_OPTIONS if getattr(cfg, name)]
    result = {
        "train_threads": threads,
        "train_steps": len(seconds["plain"]),
        "train_target_tokens": tokens,
        "train_speed_options": enabled,
        "train_tokens_per_s_plain": round(tokens / sum(seconds["plain"]), 1),
    }
    result["train_tokens_per_s"] = round(tokens / sum(seconds["configured"]), 1)
    result["train_speedup"] = round(sum(seconds["plain"]) / sum(seconds["configured"]), 3)
    result["train_speedup_median_batch"] = round(
        statistics.median(a / b for a, b in zip(seconds["plain"], seconds["configured"])), 3
    )
    for name in trainers:
        result[f"train_loss_{name}"] = round(statistics.mean(losses[name]), 4)
    return result


def run_benchmark(
    artifacts: str,
    data: str,
    limit: int = 60,
    threads: int = 1,
    log=None,
    *,
    uncached: int = 10,
    forced_tokens: int = 200,
    forced_prompts: int = 5,
    sandbox_runs: int = 20,
    train_steps: int = 16,
    first_answers: int = 3,
) -> dict:
    """Every figure of the module docstring, on the first `limit` test prompts (the first `uncached` of
    them also without the cache, the first `forced_prompts` forced to `forced_tokens` tokens or as many
    as the model's positions allow), `sandbox_runs` sandbox runs, `train_steps` timed training steps
    per trainer and `first_answers` fresh processes answering one prompt. The keyword arguments make
    each phase small (tests); their defaults are the benchmark."""

    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    torch.set_num_threads(threads)
    generator = Generator(artifacts)
    prompts = [ex.prompt for ex in load_corpus(data).split("test")][:limit]
    few = prompts[: max(1, min(len(prompts), uncached))]
    # plain greedy and beam search under the artifact's rules for the model's candidates beside retrieved
    # programs (the syntax guard, its EOS penalty), without following the example
    policy = generator.policy
    base = replace(policy.ranker.decoding, follow_example=0.0, examples=1)
    greedy = Request(replace(base, strategy="greedy", n_best=1), "parse", 0, True)
    beam5 = Request(replace(base, strategy="beam", beam_size=5, n_best=5), "parse", 0, True)

    log(f"timing {len(prompts)} test prompts, {threads} thread(s)")
    g_cached = _time_generate(generator, prompts, greedy)
    b_cached = _time_generate(generator, prompts, beam5)
    shipped = _time_generate(generator, prompts, policy.resolve())
    # the retrieval baseline (--rerank ranker), interleaved in time with the default above as far as a
    # second pass allows; the same prompts and sandbox
    ranker = _time_generate(generator, prompts, policy.resolve("ranker"))
    # the model's own code (--own): no retrieved candidates, no fallback
    own = _time_generate(generator, prompts, policy.resolve(own=True))
    log(f"timing {len(few)} prompts without the cache")
    g_plain = _time_generate(generator, few, replace(greedy, settings=replace(greedy.settings, use_cache=False)))
    b_plain = _time_generate(generator, few, replace(beam5, settings=replace(beam5.settings, use_cache=False)))
    # 200 tokens, or as many as a smaller model's positions allow ("forced_tokens" says which)
    forced = min(forced_tokens, generator.model.config.max_len - 2)
    log(f"timing {forced}-token greedy decoding")
    f_cached = _time_forced(generator, few[:forced_prompts], forced, True)
    f_plain = _time_forced(generator, few[:forced_prompts], forced, False)
    log(f"timing decoder steps: the fast path and the eager one, {forced} tokens")
    steps = decoding_speed(generator, few[:forced_prompts], forced)
    log(f"comparing the fast and the eager path's candidates on {len(prompts)} prompts")
    agree = candidates_agree(generator, prompts, policy.resolve())
    log("timing sandbox runs")
    # a plain `python -I`, bubblewrap alone and a sandbox run of print(6 * 7), alternating
    sandbox = {k if k.startswith("sandbox") else f"sandbox_{k}": v for k, v in sandbox_timings(sandbox_runs).items()}
    log(f"timing {first_answers} first answers, each in a fresh process")
    first = first_answer_seconds(artifacts, first_answers, threads)
    log("timing training steps: the plain and the configured trainer side by side")
    train = train_side_by_side(generator.bundle.config["train"], data, train_steps, threads=threads, log=log)

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
        "default_ms_max": round(max(shipped, default=0.0), 1),
        "ranker_ms_p50": round(_percentile(ranker, 50), 1),
        "ranker_ms_p95": round(_percentile(ranker, 95), 1),
        "ranker_ms_max": round(max(ranker, default=0.0), 1),
        "default_vs_ranker_p50": round(_percentile(shipped, 50) / max(_percentile(ranker, 50), 1e-9), 2),
        "own_ms_p50": round(_percentile(own, 50), 1),
        "own_ms_p95": round(_percentile(own, 95), 1),
        "own_vs_ranker_p50": round(_percentile(own, 50) / max(_percentile(ranker, 50), 1e-9), 2),
        "greedy_nocache_ms_p50": round(_percentile(g_plain, 50), 1),
        "beam5_nocache_ms_p50": round(_percentile(b_plain, 50), 1),
        # per prompt: uncached / cached latency, then the median of those ratios
        "greedy_cache_speedup": round(statistics.median(u / c for u, c in zip(g_plain, g_cached)), 2),
        "beam5_cache_speedup": round(statistics.median(u / c for u, c in zip(b_plain, b_cached)), 2),
        "forced_tokens": forced,
        "greedy200_ms_cached": round(mean(f_cached), 1),
        "greedy200_ms_nocache": round(mean(f_plain), 1),
        "cache_speedup_200": round(mean(f_plain) / mean(f_cached), 2),
        "first_answer_s_p50": round(statistics.median(first), 2),
        "first_answer_s_max": round(max(first), 2),
        **steps,
        **agree,
        **train,
        **sandbox,
    }
    return result


def main(argv=None) -> int:
    """`python -m e2p.evaluation.benchmark [--threads 1 2] [--steps 16]`: only the side-by-side
    training throughput, one JSON line per thread count."""
    import argparse
    import json
    from pathlib import Path

    p = argparse.ArgumentParser(prog="python -m e2p.evaluation.benchmark", description=main.__doc__)
    p.add_argument("--artifacts", default="artifacts", help="its config.json's train section is the run timed")
    p.add_argument("--data", default=CORPUS_PATH)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch threads per trainer (default 1 2)")
    p.add_argument("--steps", type=int, default=16, help="timed steps per trainer (default 16, after 1 warm-up)")
    args = p.parse_args(argv)
    train_config = json.loads((Path(args.artifacts) / "config.json").read_text())["train"]
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    for threads in args.threads:
        result = train_side_by_side(train_config, args.data, args.steps, threads, log)
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
