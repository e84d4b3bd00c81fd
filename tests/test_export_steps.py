"""Each step that builds an artifact folder (e2p.artifact.export), called on its own with the tiny run that
`tiny_artifacts` trained: write_artifact, fit_ranker_step, evaluate_artifact."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import REPO_ROOT

from e2p.answer.bundle import verify
from e2p.artifact.export import evaluate_artifact, fit_ranker_step, write_artifact

pytestmark = pytest.mark.slow

MODEL_FILES = {
    "weights.safetensors",
    "src_vocab.json",
    "tgt_vocab.json",
    "memory.jsonl",
    "config.json",
    "train_log.json",
}
STEP_FILES = {"ranker.json", "metrics.json", "samples.json"}  # what the later steps add


class Run:
    """The tiny run's model, prepared corpus and config, as `python -m train` had them."""

    def __init__(self, tiny_artifacts: Path, corpus: Path):
        from e2p.data.corpus import load_corpus
        from e2p.model.training import TrainConfig, load_weights, prepare
        from e2p.model.transformer import Seq2Seq

        work = tiny_artifacts.parent / "run"
        self.cfg = TrainConfig.load(REPO_ROOT / "train/configs/tiny.json")
        self.cfg.max_epochs = 2  # as tiny_artifacts trained it (--max-epochs 2)
        self.prep = prepare(load_corpus(corpus), self.cfg)
        model = Seq2Seq(self.cfg.model_config(len(self.prep.src_vocab), len(self.prep.tgt_vocab)))
        self.model = load_weights(model, work / "best.safetensors")
        self.meta = json.loads((work / "checkpoint" / "meta.json").read_text())
        self.corpus = str(corpus)

    def write(self, out: Path, cfg=None) -> dict:
        return write_artifact(self.model, self.prep, cfg or self.cfg, out, corpus_path=self.corpus, meta=self.meta)


@pytest.fixture(scope="module")
def run(tiny_artifacts, synthetic_corpus) -> Run:
    return Run(tiny_artifacts, synthetic_corpus)


@pytest.fixture(scope="module")
def evaluated(run, tmp_path_factory) -> tuple[Path, dict]:
    """A folder built by the three steps in order, and what evaluate_artifact returned."""
    out = tmp_path_factory.mktemp("steps") / "artifacts"
    run.write(out)
    fit_ranker_step(run.prep, run.cfg, out, log=lambda msg: None)
    return out, evaluate_artifact(out, run.prep, run.cfg, log=lambda msg: None)


def test_write_artifact_writes_the_model_files_and_no_evaluation(run, tiny_artifacts, tmp_path):
    out = tmp_path / "art"
    shutil.copytree(tiny_artifacts, out)  # a complete artifact there before: all its files are replaced
    assert STEP_FILES <= {p.name for p in out.iterdir()}
    info = run.write(out)
    assert {p.name for p in out.iterdir()} == MODEL_FILES | {"manifest.json"}
    manifest = verify(out)
    assert set(manifest["files"]) == MODEL_FILES and "test_metrics" not in manifest
    assert {k: v for k, v in manifest.items() if k != "files"} == info
    assert info["epochs"] == 2 and info["best_epoch"] == run.meta["best_epoch"]
    # the same files `python -m train` wrote from this run
    for name in MODEL_FILES:
        assert (out / name).read_bytes() == (tiny_artifacts / name).read_bytes(), name


def test_write_artifact_leaves_out_the_memory_without_retrieval_or_ranker(run, tmp_path):
    cfg = replace(run.cfg, retrieval=False, rerank="score", pool=0, ranker_pool=0)
    run.write(tmp_path / "plain", cfg)
    assert {p.name for p in (tmp_path / "plain").iterdir()} == MODEL_FILES - {"memory.jsonl"} | {"manifest.json"}
    assert json.loads((tmp_path / "plain/config.json").read_text())["ranker_pool"] == 0


def test_fit_ranker_step_adds_the_ranker_to_the_manifest(run, tiny_artifacts, tmp_path):
    out = tmp_path / "art"
    info = run.write(out)
    path = fit_ranker_step(run.prep, run.cfg, out, log=lambda msg: None)
    assert path == out / "ranker.json"
    assert path.read_bytes() == (tiny_artifacts / "ranker.json").read_bytes()
    manifest = verify(out)  # every file listed with its hash, the ranker too
    assert set(manifest["files"]) == MODEL_FILES | {"ranker.json"}
    assert {k: v for k, v in manifest.items() if k != "files"} == info  # the info is kept
    assert json.loads(path.read_text())["model_offset"] == run.cfg.model_offset


def test_fit_ranker_step_writes_nothing_where_no_ranker_is_asked_for(run, tmp_path):
    cfg = replace(run.cfg, rerank="score", pool=0, ranker_pool=0)
    out = tmp_path / "art"
    run.write(out, cfg)
    before = (out / "manifest.json").read_text()
    assert fit_ranker_step(run.prep, cfg, out, log=lambda msg: None) is None
    assert not (out / "ranker.json").exists() and (out / "manifest.json").read_text() == before


def test_evaluate_artifact_adds_metrics_and_samples_of_the_test_split(run, evaluated, tiny_artifacts):
    out, metrics = evaluated
    assert {p.name for p in out.iterdir()} == MODEL_FILES | STEP_FILES | {"manifest.json"}
    manifest = verify(out)
    assert manifest["test_metrics"] == metrics == json.loads((out / "metrics.json").read_text())
    test = run.prep.test
    assert test and all(m["n"] == len(test) for m in metrics.values())
    # the systems `python -m train` measured, with the same settings
    shipped = json.loads((tiny_artifacts / "metrics.json").read_text())
    assert {name: m["settings"] for name, m in metrics.items()} == {n: m["settings"] for n, m in shipped.items()}
    samples = json.loads((out / "samples.json").read_text())
    rows = samples["samples"]
    assert [(s["prompt"], s["reference"], s["line"]) for s in rows] == [(ex.prompt, ex.code, ex.line) for ex in test]
    assert set(samples["decoding"]) == {"default", "own", "greedy", "beam", "retrieval"}
    for s in rows:
        assert set(samples["decoding"]) | {"prompt", "reference", "line", "metrics"} == set(s)
        assert set(s["metrics"]) == set(metrics)
    # each system's per-prompt figures add up to its test figures
    for name, m in metrics.items():
        exact = sum(s["metrics"][name]["exact"] for s in rows) / len(rows)
        assert exact == pytest.approx(m["exact_match"]), name
    # decoding is deterministic: the same answers as the artifact `python -m train` wrote
    shipped_rows = json.loads((tiny_artifacts / "samples.json").read_text())["samples"]
    for key in ("default", "own", "greedy", "beam", "retrieval"):
        assert [s[key] for s in rows] == [s[key] for s in shipped_rows], key


def test_the_own_decoding_is_written_and_read_back(run, tmp_path):
    from e2p.answer.generator import Generator
    from e2p.artifact.export import default_decoding
    from e2p.errors import E2PError

    own = {"strategy": "beam", "beam_size": 3, "n_best": 3, "follow_example": 4.0}
    cfg = replace(run.cfg, own_decoding=own, own_rerank="run")
    run.write(tmp_path / "art", cfg)
    written = json.loads((tmp_path / "art/config.json").read_text())["own"]
    assert written["rerank"] == "run"
    assert {k: written["decoding"][k] for k in own} == own  # the overrides ...
    assert written["decoding"]["max_len"] == default_decoding(cfg).max_len  # ... on the default decoding
    g = Generator(tmp_path / "art")
    assert g.own_rerank == "run" and g.own_settings.follow_example == 4.0 and g.own_settings.beam_size == 3
    assert g.default_settings == default_decoding(cfg)  # the default answer is not touched
    with pytest.raises(E2PError, match="own_decoding"):
        run.write(tmp_path / "bad", replace(run.cfg, own_decoding={"follow": 4.0}))


def test_example_pool_shows_the_rankers_first_example(run, tmp_path):
    from e2p.answer.generator import Generator

    out = tmp_path / "art"
    run.write(out, replace(run.cfg, example_pool=4))
    assert json.loads((out / "config.json").read_text())["features"]["example_pool"] == 4
    assert Generator(out).bundle.featurizer.order is None  # no ranker.json yet: the nearest is shown
    fit_ranker_step(run.prep, run.cfg, out, log=lambda msg: None)
    b = Generator(out).bundle
    picked, nearest = [], []
    for ex in run.prep.test:
        hits = b.retriever.nearest(ex.prompt, 4)
        scores = b.ranker.scores(b.ranker_features.rows(ex.prompt, hits))
        assert b.featurizer.source(ex.prompt).neighbour == hits[int(scores.argmax())][0]
        picked.append(hits[int(scores.argmax())][0])
        nearest.append(hits[0][0])
    assert picked != nearest  # the ranker's choice is not merely the nearest


def test_reconfigure_changes_inference_settings_only(run, evaluated, tmp_path):
    from e2p.answer.generator import Generator
    from e2p.artifact.export import reconfigure_artifact
    from e2p.errors import E2PError

    out = tmp_path / "art"
    shutil.copytree(evaluated[0], out)
    weights = (out / "weights.safetensors").read_bytes()
    reconfigure_artifact(out, replace(run.cfg, follow_example=3.0, example_pool=4))
    config = json.loads((out / "config.json").read_text())
    assert config["decoding"]["follow_example"] == 3.0 and config["features"]["example_pool"] == 4
    assert (out / "weights.safetensors").read_bytes() == weights
    assert not any((out / name).exists() for name in STEP_FILES)  # they judged the old settings
    assert set(verify(out)["files"]) == MODEL_FILES
    assert Generator(out).default_settings.follow_example == 3.0
    with pytest.raises(E2PError, match="d_model"):
        reconfigure_artifact(out, replace(run.cfg, d_model=run.cfg.d_model * 2))
    with pytest.raises(E2PError, match="no artifact"):
        reconfigure_artifact(tmp_path / "none", run.cfg)


def test_evaluate_only_needs_the_folder_to_evaluate(synthetic_corpus, capsys):
    from train.__main__ import main

    assert main(["--data", str(synthetic_corpus), "--config", "tiny", "--evaluate-only"]) == 2
    assert "--evaluate-only needs --out" in capsys.readouterr().err


def test_a_default_of_the_models_own_code_keeps_the_ranker_as_the_retrieval_baseline(run, tmp_path):
    """The shipped model's shape: the default answer is the model's own code (no train program among the
    candidates, no fallback), and `--rerank ranker`, the retrieval baseline, decodes as the config says
    for it; the evaluation measures both, and the CLI labels only the baseline's answers as retrieval."""
    import subprocess
    import sys

    from e2p.answer.generator import Generator
    from e2p.artifact.export import default_decoding, ranker_decoding

    cfg = replace(
        run.cfg,
        decode_strategy="beam",
        beam_size=2,
        rerank="score",
        pool=0,
        fallback=False,
        own_rerank="score",
        ranker_pool=3,
        ranker_decoding={"strategy": "greedy", "eos_penalty": 1.0},
    )
    out = tmp_path / "art"
    run.write(out, cfg)
    fit_ranker_step(run.prep, cfg, out, log=lambda msg: None)
    g = Generator(out)
    assert (g.default_rerank, g.default_pool, g.default_fallback) == ("score", 0, False)
    assert g.settings_for("score") == g.default_settings == default_decoding(cfg)
    assert g.settings_for("ranker") == g.ranker_settings == ranker_decoding(cfg)
    assert (g.ranker_settings.strategy, g.ranker_settings.eos_penalty, g.default_settings.strategy) == (
        "greedy",
        1.0,
        "beam",
    )
    assert g.fallback_for("ranker") and not g.fallback_for("score") and g.fallback_for("score", True)
    prompt = run.prep.test[0].prompt
    own = g.generate(prompt, attention=False)  # nothing asked: the artifact's default answer
    assert own.origin == "model" and own.candidates and all(c.origin == "model" for c in own.candidates)
    assert own.settings.strategy == "beam" and own.settings.beam_size == 2
    ranked = g.generate(prompt, rerank="ranker", attention=False)  # the baseline: its own decoding, a pool
    assert ranked.settings.strategy == "greedy" and ranked.settings.eos_penalty == 1.0
    assert sum(c.origin in ("retrieval", "edited") for c in ranked.candidates) >= 3

    metrics = evaluate_artifact(out, run.prep, cfg, log=lambda msg: None)
    assert set(metrics) == {"model", "ranker", "model-greedy", "model-beam", "retrieval"}  # own code is the model row
    assert metrics["model"]["settings"] == "beam 2, rerank=score, no fallback"
    assert metrics["ranker"]["settings"] == "retrieval: greedy, EOS -1, rerank=ranker, pool=3"
    samples = json.loads((out / "samples.json").read_text())
    assert set(samples["decoding"]) == {"default", "ranker", "greedy", "beam", "retrieval"}

    def cli(*args):
        done = subprocess.run(
            [sys.executable, "-m", "e2p", "generate", prompt, "--artifacts", str(out), *args],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        return done

    default = cli()
    assert default.stdout.strip() and "retrieval" not in default.stderr
    assert cli("--own").stdout == default.stdout  # --own names the default answer
    baseline = cli("--rerank", "ranker")
    origin = Generator(out).generate(prompt, rerank="ranker", attention=False).origin
    assert ("e2p: note: retrieval" in baseline.stderr) == (origin != "model")
