"""The steps that turn a trained model into an artifact folder, each on its own; `python -m train`
calls them in this order:

1. `write_artifact`: weights, vocabularies, retrieval memory, config, training log and manifest;
2. `fit_ranker_step`: the learned ranker (ranker.json), where the config asks for one;
3. `evaluate_artifact`: the test evaluation (metrics.json) and the gallery (samples.json).

Each step leaves a folder whose manifest lists every file in it, so the folder verifies after any step.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from ..answer.bundle import git_commit, read_manifest, replaceable_files, sha256_file, write_manifest, write_memory
from ..answer.generator import Generator
from ..errors import E2PError
from ..evaluation.metrics import profile_references
from ..evaluation.report import as_json, evaluate_systems, model_answers, retrieval_codes, system_label, table
from ..model.decoding import DecodeSettings
from ..model.training import INFERENCE_FIELDS, RETIRED_OPTIONS, Prepared, TrainConfig, ranker_pool, save_weights
from .ranker_fit import fit_ranker


def default_decoding(cfg: TrainConfig) -> DecodeSettings:
    common = dict(
        max_len=cfg.max_tgt,
        syntax_guard=cfg.syntax_guard,
        eos_penalty=cfg.eos_penalty,
        follow_example=cfg.follow_example,
        examples=cfg.examples,
    )
    if cfg.decode_strategy == "greedy":
        return DecodeSettings(strategy="greedy", **common)
    return DecodeSettings(strategy="beam", beam_size=cfg.beam_size, n_best=cfg.beam_size, **common)


def _on_default(cfg: TrainConfig, field: str) -> DecodeSettings:
    """The default decoding with the DecodeSettings fields of `cfg.<field>` on top."""
    try:
        return replace(default_decoding(cfg), **getattr(cfg, field))
    except TypeError as err:
        raise E2PError(f"{field} in the training config: {err}") from None


def own_decoding(cfg: TrainConfig) -> DecodeSettings:
    """The decoding of the model's own code (`--own`)."""
    return _on_default(cfg, "own_decoding")


def ranker_decoding(cfg: TrainConfig) -> DecodeSettings:
    """The decoding of the model's candidates in the retrieval baseline (`--rerank ranker`)."""
    return _on_default(cfg, "ranker_decoding")


def own_is_default(cfg: TrainConfig) -> bool:
    """Whether the default answer is the model's own code: its decoding and rerank, and no retrieved
    programs among the candidates (whether a fallback is kept only shows where nothing parses)."""
    return own_decoding(cfg) == default_decoding(cfg) and cfg.own_rerank == cfg.rerank and not cfg.pool


def inference_config(cfg: TrainConfig) -> dict:
    """config.json's parts other than the model's shape: how sources are built, the training config,
    and how answers are chosen."""
    return {
        "features": cfg.feature_config().to_dict(),
        "train": asdict(cfg),
        "decoding": asdict(default_decoding(cfg)),
        "own": {"decoding": asdict(own_decoding(cfg)), "rerank": cfg.own_rerank},
        "rerank": cfg.rerank,
        "pool": cfg.pool,
        "fallback": cfg.fallback,
        "ranker_pool": ranker_pool(cfg),
        "ranker_decoding": asdict(ranker_decoding(cfg)),
    }


def reconfigure_artifact(out: Path, cfg: TrainConfig) -> None:
    """Give the trained artifact in `out` the inference settings of `cfg` (decoding, answer choice,
    the example shown), keeping its weights, vocabularies and memory; the ranker, metrics and samples
    it had are removed, as they may no longer hold. Refused where `cfg` would have trained otherwise."""
    path = out / "config.json"
    if not path.is_file():
        raise E2PError(f"{out} holds no artifact to re-evaluate: train it first")
    config = json.loads(path.read_text())
    trained = config.get("train", {})
    differ = sorted(
        f for f in asdict(cfg) if f not in INFERENCE_FIELDS and f in trained and trained[f] != getattr(cfg, f)
    )
    # an artifact written before an option was retired: trained otherwise where it is off its neutral value
    differ += sorted(f for f, neutral in RETIRED_OPTIONS.items() if trained.get(f, neutral) != neutral)
    if differ:
        raise E2PError(
            f"{out} was trained with other values of {', '.join(differ)} than the config gives: only "
            f"inference settings change without training ({', '.join(sorted(INFERENCE_FIELDS))})"
        )
    if (cfg.retrieval or ranker_pool(cfg)) and not (out / "memory.jsonl").is_file():
        raise E2PError(f"{out} has no retrieval memory (memory.jsonl), which these settings need: retrain")
    for name in ("ranker.json", "metrics.json", "samples.json"):
        (out / name).unlink(missing_ok=True)
    path.write_text(json.dumps({"model": config["model"], **inference_config(cfg)}, indent=2))
    refresh_manifest(out)


def refresh_manifest(out: Path, **extra) -> dict:
    """Rewrite the manifest of `out` over the files there now, with its info plus `extra`; the info."""
    info = {k: v for k, v in read_manifest(out).items() if k != "files"}
    info.update(extra)
    write_manifest(out, info)
    return info


def write_artifact(model, prep: Prepared, cfg: TrainConfig, out: Path, *, corpus_path: str, meta: dict) -> dict:
    """The model's files in `out` (weights, vocabularies, memory, config.json, train_log.json) and a
    manifest of them; no ranker, metrics or samples. The files of an artifact there before (those its
    manifest lists, nothing else) are deleted first. Returns the manifest's info."""
    for stale in replaceable_files(out):  # the files of the artifact there before, nothing else
        stale.unlink()
    out.mkdir(parents=True, exist_ok=True)
    # float16 on disk keeps artifacts/ small; every figure measured later is on these rounded weights.
    save_weights(model, out / "weights.safetensors", dtype=torch.float16)
    prep.src_vocab.save(out / "src_vocab.json")
    prep.tgt_vocab.save(out / "tgt_vocab.json")
    if cfg.retrieval or ranker_pool(cfg):
        write_memory(out / "memory.jsonl", prep.train)
    config = {"model": model.config.to_dict(), **inference_config(cfg)}
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
    return info


def fit_ranker_step(prep: Prepared, cfg: TrainConfig, out: Path, log=print) -> Path | None:
    """Fit the learned ranker on the train split into `out`/ranker.json and add it to the manifest;
    None, writing nothing, where the config asks for no ranker."""
    pool = ranker_pool(cfg)
    if not pool:
        return None
    log("fitting the ranker on the train split")
    ranker = fit_ranker(prep.train, k=max(2, pool))
    ranker.model_offset = cfg.model_offset
    path = out / "ranker.json"
    ranker.save(path)
    refresh_manifest(out)
    return path


def evaluate_artifact(out: Path, prep: Prepared, cfg: TrainConfig, log=print) -> dict:
    """Evaluate the artifact in `out` on the test split: metrics.json (every system's figures),
    samples.json (each test prompt's answers) and the metrics in the manifest. Returns the metrics."""
    generator = Generator(out)
    decoding = default_decoding(cfg)
    pool = ranker_pool(cfg)
    test = prep.test
    log(f"evaluating on {len(test)} test prompts (references run in the sandbox)")
    profiles = profile_references([ex.code for ex in test])
    greedy = DecodeSettings(strategy="greedy", max_len=cfg.max_tgt)
    beam = DecodeSettings(strategy="beam", beam_size=5, n_best=5, max_len=cfg.max_tgt)
    # (samples.json key, metrics name, settings, rerank, pool, fallback): the shipped decoding, the
    # retrieval baseline over these weights and the model's own code where they differ from it, then
    # plain greedy and beam search for the gallery (and the TF-IDF retrieval baseline below).
    runs = [("default", "model", decoding, cfg.rerank, cfg.pool, cfg.fallback)]
    if cfg.rerank != "ranker" and pool:
        runs.append(("ranker", "ranker", ranker_decoding(cfg), "ranker", pool, generator.fallback_for("ranker")))
    if not own_is_default(cfg):
        runs.append(("own", "model-own", own_decoding(cfg), cfg.own_rerank, 0, False))
    runs += [("greedy", "model-greedy", greedy, "score", 0, True), ("beam", "model-beam", beam, "run", 0, True)]
    systems = {
        name: (
            model_answers(generator, test, s, rerank, pool=p, progress=True, fallback=fallback),
            system_label(s, rerank, p, fallback),
        )
        for _, name, s, rerank, p, fallback in runs
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
    refresh_manifest(out, test_metrics=metrics)
    return metrics
