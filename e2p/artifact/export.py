"""The steps that turn a trained model into an artifact folder, each on its own; `python -m train`
calls them in this order:

1. `write_artifact`: weights, vocabularies, retrieval memory, config, training log and manifest;
2. `fit_ranker_step`: the learned ranker (ranker.json), where the config asks for one;
3. `evaluate_artifact`: the test evaluation (metrics.json) and the gallery (samples.json); on the dev
   split for a corpus split by CoNaLa's rule, whose test split is measured from outside the project.

Each step leaves a folder whose manifest lists every file in it, so the folder verifies after any step.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import torch

from ..answer.bundle import git_commit, read_manifest, replaceable_files, sha256_file, write_manifest, write_memory
from ..answer.generator import Generator
from ..answer.policy import Policy, Request
from ..data.corpus import CONALA_LICENCE, CONALA_NOTICE
from ..errors import E2PError
from ..evaluation.metrics import not_run, profile_references
from ..evaluation.report import as_json, evaluate_systems, model_answers, retrieval_codes, system_label, table
from ..model.decoding import DecodeSettings
from ..model.training import Prepared, TrainConfig, save_weights
from .ranker_fit import fit_ranker


def load_preset(path: str | Path) -> tuple[TrainConfig, Policy]:
    """A training preset (train/configs/*.json): its training fields, and its "policy" section as the
    artifact's answer policy (the default recipe's where it names none)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise E2PError(f"cannot read training config {path}: {err}") from None
    if not isinstance(data, dict):
        raise E2PError(f"training config {path} is not a JSON object")
    cfg = TrainConfig.from_dict(data)
    return cfg, Policy.from_preset(data.get("policy"), max_len=cfg.max_tgt, retrieval=cfg.retrieval)


RUN_ONLY = {"threads"}  # training options that shape how fast a run goes, not what it trains


def trained_config(model, cfg: TrainConfig) -> dict:
    """config.json: the model's shape, how its sources are built, and the training config."""
    return {"model": model.config.to_dict(), "features": cfg.feature_config().to_dict(), "train": asdict(cfg)}


def reconfigure_artifact(out: Path, cfg: TrainConfig, policy: Policy) -> None:
    """Give the trained artifact in `out` the answer policy `policy` (policy.json), keeping its
    weights, vocabularies, memory and config; the ranker, metrics and samples it had are removed, as
    they may no longer hold. Refused where `cfg` would have trained otherwise."""
    path = out / "config.json"
    if not path.is_file():
        raise E2PError(f"{out} holds no artifact to re-evaluate: train it first")
    trained = TrainConfig.from_trained(json.loads(path.read_text()).get("train", {}))
    differ = sorted(f for f, value in asdict(cfg).items() if getattr(trained, f) != value and f not in RUN_ONLY)
    if differ:
        raise E2PError(
            f"{out} was trained with other values of {', '.join(differ)} than the config gives: only "
            'its policy (the config\'s "policy" section) changes without training'
        )
    if (cfg.retrieval or policy.ranker.pool) and not (out / "memory.jsonl").is_file():
        raise E2PError(f"{out} has no retrieval memory (memory.jsonl), which these settings need: retrain")
    for name in ("ranker.json", "metrics.json", "samples.json"):
        (out / name).unlink(missing_ok=True)
    policy.save(out)
    refresh_manifest(out)


def refresh_manifest(out: Path, **extra) -> dict:
    """Rewrite the manifest of `out` over the files there now, with its info plus `extra`; the info."""
    info = {k: v for k, v in read_manifest(out).items() if k != "files"}
    info.update(extra)
    write_manifest(out, info)
    return info


def write_artifact(
    model, prep: Prepared, cfg: TrainConfig, policy: Policy, out: Path, *, corpus_path: str, meta: dict
) -> dict:
    """The model's files in `out` (weights, vocabularies, memory, config.json, policy.json, train_log.json) and a
    manifest of them; no ranker, metrics or samples. The files of an artifact there before (those its
    manifest lists, nothing else) are deleted first. Returns the manifest's info."""
    for stale in replaceable_files(out):  # the files of the artifact there before, nothing else
        stale.unlink()
    out.mkdir(parents=True, exist_ok=True)
    # float16 on disk keeps artifacts/ small; every figure measured later is on these rounded weights.
    save_weights(model, out / "weights.safetensors", dtype=torch.float16)
    prep.src_vocab.save(out / "src_vocab.json")
    prep.tgt_vocab.save(out / "tgt_vocab.json")
    if cfg.retrieval or policy.ranker.pool:
        write_memory(out / "memory.jsonl", prep.train)
    (out / "config.json").write_text(json.dumps(trained_config(model, cfg), indent=2))
    policy.save(out)
    (out / "train_log.json").write_text(json.dumps(meta.get("log", []), indent=1))
    licence = {}
    if cfg.split == "conala":  # derived data of a CC BY-SA corpus: its licence and attribution travel with it
        (out / LICENCE_FILE).write_text(CONALA_NOTICE)
        licence = {"licence": f"{CONALA_LICENCE} (CoNaLa, Yin et al. 2018, and Stack Overflow): see {LICENCE_FILE}"}
    info = {
        **licence,
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


LICENCE_FILE = "LICENSE.md"


def evaluated_split(cfg: TrainConfig) -> str:
    """The split an artifact is evaluated on when built: dev for CoNaLa (its test split is measured
    from outside the project), else test."""
    return "dev" if cfg.split == "conala" else "test"


def fit_ranker_step(prep: Prepared, policy: Policy, out: Path, log=print) -> Path | None:
    """Fit the learned ranker on the train split into `out`/ranker.json and add it to the manifest;
    None, writing nothing, where the policy asks for no ranker."""
    pool = policy.ranker.pool
    if not pool:
        return None
    log("fitting the ranker on the train split")
    ranker = fit_ranker(prep.train, k=max(2, pool))
    path = out / "ranker.json"
    ranker.save(path)
    refresh_manifest(out)
    return path


def evaluate_artifact(out: Path, prep: Prepared, cfg: TrainConfig, log=print) -> dict:
    """Evaluate the artifact in `out` on the test split (dev for CoNaLa, with CoNaLa's BLEU beside
    sacrebleu's, nothing run): metrics.json (every system's figures), samples.json (each prompt's
    answers) and the metrics in the manifest (`test_metrics`, or `dev_metrics`). Returns the metrics."""
    generator = Generator(out)
    split = evaluated_split(cfg)
    test = prep.valid if split == "dev" else prep.test
    conala = cfg.split == "conala"
    if generator.policy.runs:
        log(f"evaluating on {len(test)} {split} prompts (references run in the sandbox)")
        profiles = profile_references([ex.code for ex in test])
    else:  # snippets: running them says nothing
        log(f"evaluating on {len(test)} {split} prompts (snippets: nothing is run)")
        profiles = not_run(len(test))
    greedy = DecodeSettings(strategy="greedy", max_len=cfg.max_tgt)
    beam = DecodeSettings(strategy="beam", beam_size=5, n_best=5, max_len=cfg.max_tgt)
    # (samples.json key, metrics name, settings, rerank, pool, fallback): the shipped decoding, the
    # retrieval baseline over these weights and the model's own code where they differ from it, then
    # plain greedy and beam search for the gallery (and the TF-IDF retrieval baseline below).
    policy = generator.policy
    runs = [("default", "model", policy.resolve())]
    if policy.default.rerank != "ranker" and policy.ranker.pool:
        runs.append(("ranker", "ranker", policy.resolve("ranker")))
    if not policy.own_is_default:
        runs.append(("own", "model-own", policy.resolve(own=True)))
    runs.append(("greedy", "model-greedy", Request(greedy, "score", 0, True)))
    if policy.runs:  # where nothing runs, plain beam search is the default answer but for its fallback
        runs.append(("beam", "model-beam", Request(beam, "run", 0, True)))
    systems = {name: (model_answers(generator, test, ask, progress=True), system_label(ask)) for _, name, ask in runs}
    systems["retrieval"] = (retrieval_codes(prep.train, test), "nearest train prompt (TF-IDF) code")
    results = evaluate_systems(test, systems, profiles, train=prep.train, conala=conala)
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
    refresh_manifest(out, **{f"{split}_metrics": metrics})
    return metrics
