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
from e2p.answer.policy import Policy, Request
from e2p.artifact.export import evaluate_artifact, fit_ranker_step, load_preset, write_artifact

pytestmark = pytest.mark.slow

MODEL_FILES = {
    "weights.safetensors",
    "src_vocab.json",
    "tgt_vocab.json",
    "memory.jsonl",
    "config.json",
    "policy.json",
    "train_log.json",
}
STEP_FILES = {"ranker.json", "metrics.json", "samples.json"}  # what the later steps add


class Run:
    """The tiny run's model, prepared corpus and config, as `python -m train` had them."""

    def __init__(self, tiny_artifacts: Path, corpus: Path):
        from e2p.data.corpus import load_corpus
        from e2p.model.training import load_weights, prepare
        from e2p.model.transformer import Seq2Seq

        work = tiny_artifacts.parent / "run"
        self.cfg, self.policy = load_preset(REPO_ROOT / "train/configs/tiny.json")
        self.cfg.max_epochs = 2  # as tiny_artifacts trained it (--max-epochs 2)
        self.prep = prepare(load_corpus(corpus), self.cfg)
        model = Seq2Seq(self.cfg.model_config(len(self.prep.src_vocab), len(self.prep.tgt_vocab)))
        self.model = load_weights(model, work / "best.safetensors")
        self.meta = json.loads((work / "checkpoint" / "meta.json").read_text())
        self.corpus = str(corpus)

    def write(self, out: Path, cfg=None, policy=None) -> dict:
        return write_artifact(
            self.model, self.prep, cfg or self.cfg, policy or self.policy, out, corpus_path=self.corpus, meta=self.meta
        )


def without_ranker(policy: Policy) -> Policy:
    """`policy` with the default answer the model's own (rerank score) and no learned ranker."""
    return replace(
        policy, default=replace(policy.default, rerank="score", pool=0), ranker=replace(policy.ranker, pool=0)
    )


@pytest.fixture(scope="module")
def run(tiny_artifacts, synthetic_corpus) -> Run:
    return Run(tiny_artifacts, synthetic_corpus)


@pytest.fixture(scope="module")
def evaluated(run, tmp_path_factory) -> tuple[Path, dict]:
    """A folder built by the three steps in order, and what evaluate_artifact returned."""
    out = tmp_path_factory.mktemp("steps") / "artifacts"
    run.write(out)
    fit_ranker_step(run.prep, run.policy, out, log=lambda msg: None)
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
    run.write(tmp_path / "plain", replace(run.cfg, retrieval=False), without_ranker(run.policy))
    assert {p.name for p in (tmp_path / "plain").iterdir()} == MODEL_FILES - {"memory.jsonl"} | {"manifest.json"}
    assert json.loads((tmp_path / "plain/policy.json").read_text())["ranker"]["pool"] == 0


def test_fit_ranker_step_adds_the_ranker_to_the_manifest(run, tiny_artifacts, tmp_path):
    out = tmp_path / "art"
    info = run.write(out)
    path = fit_ranker_step(run.prep, run.policy, out, log=lambda msg: None)
    assert path == out / "ranker.json"
    assert path.read_bytes() == (tiny_artifacts / "ranker.json").read_bytes()
    manifest = verify(out)  # every file listed with its hash, the ranker too
    assert set(manifest["files"]) == MODEL_FILES | {"ranker.json"}
    assert {k: v for k, v in manifest.items() if k != "files"} == info  # the info is kept


def test_fit_ranker_step_writes_nothing_where_no_ranker_is_asked_for(run, tmp_path):
    policy = without_ranker(run.policy)
    out = tmp_path / "art"
    run.write(out, policy=policy)
    before = (out / "manifest.json").read_text()
    assert fit_ranker_step(run.prep, policy, out, log=lambda msg: None) is None
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


def test_the_policy_is_written_and_read_back(run, tmp_path):
    from e2p.answer.generator import Generator

    policy = Policy.from_preset(
        {
            "default": {"decoding": {"strategy": "beam", "beam_size": 3, "follow_example": 4.0}, "fallback": False},
            "ranker": {"decoding": {"strategy": "greedy"}, "pool": 2, "model_offset": -3.0},
            "example_pool": 4,
        },
        max_len=run.cfg.max_tgt,
    )
    run.write(tmp_path / "art", policy=policy)
    g = Generator(tmp_path / "art")
    assert g.policy == policy and g.policy.default.decoding.n_best == 3  # a beam returns all it holds
    assert g.policy.default.decoding.max_len == run.cfg.max_tgt and g.policy.ranker.rerank == "ranker"
    config = json.loads((tmp_path / "art/config.json").read_text())
    assert set(config) == {"model", "features", "train"}  # how it answers is in policy.json alone
    fit_ranker_step(run.prep, policy, tmp_path / "art", log=lambda msg: None)
    assert Generator(tmp_path / "art").bundle.ranker.model_offset == -3.0  # the policy's, on the ranker


def test_an_artifact_without_a_policy_file_is_refused_with_the_rebuild_command(run, tmp_path):
    from e2p.answer.bundle import ArtifactError, write_manifest
    from e2p.answer.generator import Generator

    out = tmp_path / "old"
    run.write(out)
    (out / "policy.json").unlink()
    write_manifest(out, {})
    with pytest.raises(ArtifactError) as err:
        Generator(out)
    assert "has no policy.json" in str(err.value) and "python -m train" in str(err.value)
    assert "\n" not in str(err.value)


def test_example_pool_shows_the_rankers_first_example(run, tmp_path):
    from e2p.answer.generator import Generator

    out = tmp_path / "art"
    run.write(out, policy=replace(run.policy, example_pool=4))
    assert json.loads((out / "policy.json").read_text())["example_pool"] == 4
    assert Generator(out).bundle.featurizer.order is None  # no ranker.json yet: the nearest is shown
    fit_ranker_step(run.prep, run.policy, out, log=lambda msg: None)
    b = Generator(out).bundle
    picked, nearest = [], []
    for ex in run.prep.test:
        hits = b.retriever.nearest(ex.prompt, 4)
        scores = b.ranker.scores(b.ranker_features.rows(ex.prompt, hits))
        assert b.featurizer.source(ex.prompt).neighbour == hits[int(scores.argmax())][0]
        picked.append(hits[int(scores.argmax())][0])
        nearest.append(hits[0][0])
    assert picked != nearest  # the ranker's choice is not merely the nearest


def test_reconfigure_changes_the_policy_only(run, evaluated, tmp_path):
    from e2p.answer.generator import Generator
    from e2p.artifact.export import reconfigure_artifact
    from e2p.errors import E2PError

    out = tmp_path / "art"
    shutil.copytree(evaluated[0], out)
    weights = (out / "weights.safetensors").read_bytes()
    config = (out / "config.json").read_bytes()
    default = replace(run.policy.default, decoding=replace(run.policy.default.decoding, follow_example=3.0))
    reconfigure_artifact(out, run.cfg, replace(run.policy, default=default, example_pool=4))
    policy = json.loads((out / "policy.json").read_text())
    assert policy["default"]["decoding"]["follow_example"] == 3.0 and policy["example_pool"] == 4
    assert (out / "weights.safetensors").read_bytes() == weights and (out / "config.json").read_bytes() == config
    assert not any((out / name).exists() for name in STEP_FILES)  # they judged the old settings
    assert set(verify(out)["files"]) == MODEL_FILES
    assert Generator(out).policy.default.decoding.follow_example == 3.0
    with pytest.raises(E2PError, match="d_model"):
        reconfigure_artifact(out, replace(run.cfg, d_model=run.cfg.d_model * 2), run.policy)
    with pytest.raises(E2PError, match="no artifact"):
        reconfigure_artifact(tmp_path / "none", run.cfg, run.policy)


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

    policy = Policy.from_preset(
        {
            "default": {"decoding": {"strategy": "beam", "beam_size": 2}, "rerank": "score", "fallback": False},
            "ranker": {"decoding": {"strategy": "greedy", "eos_penalty": 1.0}, "pool": 3},
            "example_pool": 0,
        },
        max_len=run.cfg.max_tgt,
    )
    out = tmp_path / "art"
    run.write(out, policy=policy)
    fit_ranker_step(run.prep, policy, out, log=lambda msg: None)
    g = Generator(out)
    assert g.policy.resolve() == Request(policy.default.decoding, "score", 0, False)
    baseline = g.policy.resolve("ranker")
    assert baseline == Request(policy.ranker.decoding, "ranker", 3, True)
    assert (baseline.settings.strategy, baseline.settings.eos_penalty, g.policy.default.decoding.strategy) == (
        "greedy",
        1.0,
        "beam",
    )
    assert g.policy.resolve("score", fallback=True).fallback and g.policy.resolve(own=True).pool == 0
    prompt = run.prep.test[0].prompt
    own = g.generate(prompt, attention=False)  # nothing asked: the artifact's default answer
    assert own.origin == "model" and own.candidates and all(c.origin == "model" for c in own.candidates)
    assert own.settings.strategy == "beam" and own.settings.beam_size == 2
    ranked = g.generate(prompt, rerank="ranker", attention=False)  # the baseline: its own decoding, a pool
    assert ranked.settings.strategy == "greedy" and ranked.settings.eos_penalty == 1.0
    assert sum(c.origin in ("retrieval", "edited") for c in ranked.candidates) >= 3

    metrics = evaluate_artifact(out, run.prep, run.cfg, log=lambda msg: None)
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
