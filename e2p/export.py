"""Write a trained model into an artifact folder, with its samples, test metrics and manifest."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import torch

from .artifacts import git_commit, replaceable_files, sha256_file, write_manifest, write_memory
from .decoding import DecodeSettings
from .evaluation import as_json, describe, evaluate_systems, model_answers, retrieval_codes, table
from .metrics import profile_references
from .ranking import fit_ranker
from .training import Prepared, TrainConfig, save_weights


def default_decoding(cfg: TrainConfig) -> DecodeSettings:
    common = dict(max_len=cfg.max_tgt, syntax_guard=cfg.syntax_guard, eos_penalty=cfg.eos_penalty)
    if cfg.decode_strategy == "greedy":
        return DecodeSettings(strategy="greedy", **common)
    return DecodeSettings(strategy="beam", beam_size=cfg.beam_size, n_best=cfg.beam_size, **common)


def export(
    model,
    prep: Prepared,
    cfg: TrainConfig,
    out: Path,
    *,
    corpus_path: str,
    meta: dict,
    log=print,
    evaluate: bool = True,
) -> dict:
    from .generator import Generator

    for stale in replaceable_files(out):  # the files of the artifact there before, nothing else
        stale.unlink()
    out.mkdir(parents=True, exist_ok=True)
    decoding = default_decoding(cfg)
    # float16 on disk keeps artifacts/ small; every figure below is measured on these rounded weights.
    save_weights(model, out / "weights.safetensors", dtype=torch.float16)
    prep.src_vocab.save(out / "src_vocab.json")
    prep.tgt_vocab.save(out / "tgt_vocab.json")
    ranker_pool = cfg.pool if cfg.rerank == "ranker" else cfg.ranker_pool
    if cfg.retrieval or ranker_pool:
        write_memory(out / "memory.jsonl", prep.train)
    if ranker_pool:
        log("fitting the ranker on the train split")
        ranker = fit_ranker(prep.train, k=max(2, ranker_pool))
        ranker.model_offset = cfg.model_offset
        ranker.save(out / "ranker.json")
    config = {
        "model": model.config.to_dict(),
        "features": cfg.feature_config().to_dict(),
        "train": asdict(cfg),
        "decoding": asdict(decoding),
        "rerank": cfg.rerank,
        "pool": cfg.pool,
        "ranker_pool": ranker_pool,
    }
    (out / "config.json").write_text(json.dumps(config, indent=2))
    (out / "train_log.json").write_text(json.dumps(meta.get("log", []), indent=1))
    info = {
        "corpus_sha256": sha256_file(corpus_path),
        "corpus_stats": prep.corpus_stats,
        "epochs": len(meta.get("log", [])),
        "best_epoch": meta.get("best_epoch"),
        "training_seconds": round(meta.get("seconds", 0.0), 1),
        "commit": git_commit(),
        "parameters": model.num_parameters(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_manifest(out, info)
    if not evaluate:
        return info

    generator = Generator(out)
    test = prep.test
    log(f"evaluating on {len(test)} test prompts (references run in the sandbox)")
    profiles = profile_references([ex.code for ex in test])
    greedy = DecodeSettings(strategy="greedy", max_len=cfg.max_tgt)
    beam = DecodeSettings(strategy="beam", beam_size=5, n_best=5, max_len=cfg.max_tgt)
    # (samples.json key, metrics name, settings, rerank, pool): the shipped decoding, then plain
    # greedy and beam search for the gallery, then the retrieval baseline.
    runs = [("default", "model", decoding, cfg.rerank, cfg.pool)]
    if cfg.rerank != "ranker" and ranker_pool:  # the retrieval baseline over these weights
        runs.append(("ranker", "ranker", decoding, "ranker", ranker_pool))
    if cfg.rerank != "score" or cfg.pool:  # what the model writes by itself, with the default decoding
        runs.append(("own", "model-own", decoding, "score", 0))
    runs += [("greedy", "model-greedy", greedy, "score", 0), ("beam", "model-beam", beam, "run", 0)]
    systems = {
        name: (model_answers(generator, test, s, rerank, pool=pool, progress=True), describe(s, rerank, pool))
        for _, name, s, rerank, pool in runs
    }
    systems["retrieval"] = (retrieval_codes(prep.train, test), "nearest train prompt (TF-IDF) code")
    results = evaluate_systems(test, systems, profiles, train=prep.train)
    log(table(results))
    metrics = as_json(results)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    by_name = {r.name: r for r in results}
    keys = [(key, name) for key, name, *_ in runs] + [("retrieval", "retrieval")]
    samples = [
        {
            "prompt": ex.prompt,
            "reference": ex.code,
            "line": ex.line,
            **{key: by_name[name].codes[i] for key, name in keys},
            "metrics": {name: by_name[name].report.per_example[i] for _, name in keys},
        }
        for i, ex in enumerate(test)
    ]
    decodings = {key: by_name[name].settings for key, name in keys}
    (out / "samples.json").write_text(json.dumps({"decoding": decodings, "samples": samples}, indent=1))
    info["test_metrics"] = metrics
    write_manifest(out, info)
    return info
