"""End to end: `python -m train` writes an artifact folder; `python -m e2p generate/evaluate` use it."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest
from conftest import REPO_ROOT, evaluate_args, run_cli, train_args
from safetensors.torch import load_file

from e2p.answer.bundle import ArtifactError, load_bundle, verify
from e2p.answer.completion import completed
from e2p.answer.generator import Generator

pytestmark = pytest.mark.slow


def test_artifact_folder_is_complete_and_pickle_free(tiny_artifacts):
    names = {p.name for p in tiny_artifacts.iterdir()}
    assert {
        "weights.safetensors",
        "config.json",
        "src_vocab.json",
        "tgt_vocab.json",
        "memory.jsonl",
        "train_log.json",
        "samples.json",
        "metrics.json",
        "manifest.json",
    } <= names
    assert not [n for n in names if n.endswith((".pt", ".pth", ".pkl", ".bin"))]
    manifest = verify(tiny_artifacts)
    assert set(manifest["files"]) == names - {"manifest.json"}
    assert len(manifest["corpus_sha256"]) == 64 and manifest["epochs"] == 2
    metrics = manifest["test_metrics"]
    # the tiny preset answers with the ranker: the model's own decoding is measured beside it
    assert {"model", "model-own", "model-greedy", "model-beam", "retrieval"} <= set(metrics)
    assert metrics["model"]["settings"].startswith("retrieval: ") and metrics["model-own"]["settings"].endswith(
        "rerank=score, no fallback"
    )
    assert metrics["retrieval"]["train_copies"] == 1.0  # a train program, every one
    assert all(0 <= m["train_copies"] <= 1 for m in metrics.values())
    load_file(str(tiny_artifacts / "weights.safetensors"))
    log = json.loads((tiny_artifacts / "train_log.json").read_text())
    assert [row["epoch"] for row in log] == [1, 2]
    assert all({"train_loss", "valid_loss", "valid_bleu"} <= set(row) for row in log)


def test_samples_cover_every_test_prompt(tiny_artifacts, synthetic_corpus):
    from e2p.data.corpus import load_corpus

    test = load_corpus(synthetic_corpus).split("test")
    samples = json.loads((tiny_artifacts / "samples.json").read_text())["samples"]
    assert [s["prompt"] for s in samples] == [ex.prompt for ex in test]
    for s in samples:
        assert {"reference", "default", "own", "beam", "greedy", "retrieval", "metrics"} <= set(s)
        assert {"bleu", "parses", "exact", "runs", "exec_match"} <= set(s["metrics"]["model"])


def test_generate_parses_whenever_a_candidate_parses(tiny_artifacts):
    gen = Generator(tiny_artifacts)
    prompt = "write a python function to add 123 and 456"
    guarded = replace(gen.policy.default.decoding, syntax_guard=True)  # every model candidate parses
    for rerank in ("run", "ranker"):
        assert gen.generate(prompt, rerank=rerank).parses  # a candidate, or the retrieved example when none parsed
        result = gen.generate(prompt, guarded, rerank=rerank)
        assert [c for c in result.candidates if c.origin == "model"]
        assert all(c.parses for c in result.candidates if c.origin == "model")
        assert result.parses and result.candidates[0].parses
        # the first candidate's code, with the completion line its run added where it added one
        first = result.candidates[0]
        assert result.code == (completed(first.code, prompt)[0] if first.added else first.code)
        assert result.origin == first.origin and result.added == first.added
    T, S = len(result.tgt_tokens), len(result.src_tokens)
    assert result.attention["cross"].shape[2:] == (T, S)
    assert result.attention["decoder"].shape[2:] == (T, T)
    assert len(result.tgt_input_tokens) == T and result.tgt_tokens[-1] == "<eos>"


def test_ranker_answers_with_a_program_that_runs(tiny_artifacts):
    gen = Generator(tiny_artifacts)
    assert gen.policy.default.rerank == "ranker" and (tiny_artifacts / "ranker.json").is_file()
    result = gen.generate("write a python program to print the product of 123 and 456")
    assert {c.origin for c in result.candidates} >= {"model", "retrieval", "edited"}
    assert all(c.ranker_score is not None for c in result.candidates)
    # the retrieved product programs, with this prompt's numbers put in
    assert [c.code for c in result.candidates if c.origin == "edited"][0].strip() == "print(123 * 456)"
    best = result.candidates[0]
    assert best.parses and best.runs and result.tokens_are_code
    # only candidates up to the winner are run; a ranker-ordered tail follows it
    ordered = [c.ranker_score for c in result.candidates[1:] if c.parses]
    assert ordered == sorted(ordered, reverse=True)


def test_generate_cli(tiny_artifacts, tmp_path):
    from e2p.syntax import parses

    proc = run_cli(
        "e2p",
        "generate",
        "write a python program to print the square of 12",
        "--artifacts",
        str(tiny_artifacts),
        "--beam",
        "2",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() and parses(proc.stdout)  # the code itself, nothing else, and it parses
    proc = run_cli(
        "e2p",
        "generate",
        "write a python program to print the product of 123 and 456",
        "--artifacts",
        str(tiny_artifacts),
        "--rerank",
        "ranker",
        "--pool",
        "3",
        "--no-edit",
    )
    assert proc.returncode == 0 and proc.stdout.strip() and parses(proc.stdout), proc.stderr
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("write a python function to add 1 and 2\n\n😀 日本語 print\n" + "add " * 3000 + "\n")
    proc = run_cli("e2p", "generate", "--batch", str(prompts), "--artifacts", str(tiny_artifacts), "--beam", "1")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [row["prompt"] for row in rows[:2]] == ["write a python function to add 1 and 2", "😀 日本語 print"]
    for row in rows:
        assert {"prompt", "code", "parses", "seconds"} <= set(row)
        assert row["parses"] == parses(row["code"]) and row["seconds"] > 0
    assert rows[0]["parses"]  # a train program, or the model's, answers a train-like prompt
    assert rows[2]["warnings"] and "cut" in rows[2]["warnings"][0]
    # the tiny model's own greedy output, with nothing to fall back on or guard it: code that does
    # not parse, so `parses` is seen to be the code's own answer and not a constant
    raw = ["--beam", "1", "--rerank", "score", "--pool", "0", "--no-fallback", "--no-syntax-guard", "--no-edit"]
    prompts.write_text("write a python function to add 1 and 2\nwrite a python program to print the square of 12\n")
    proc = run_cli(
        "e2p", "generate", "--batch", str(prompts), "--artifacts", str(tiny_artifacts), *raw, "--max-len", "24"
    )
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(rows) == 2 and all(row["source"] == "model" for row in rows), rows
    for row in rows:
        assert row["parses"] == parses(row["code"]), row
    assert not all(row["parses"] for row in rows), "every raw output parsed: the check above proves nothing"


def test_generate_own_is_the_models_code_alone(tiny_artifacts, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("write a program to print the product of 123 and 456\nwrite a function to add two numbers")
    batch = ("e2p", "generate", "--batch", str(prompts), "--artifacts", str(tiny_artifacts))
    own = run_cli(*batch, "--own")
    spelled = run_cli(*batch, "--rerank", "score", "--pool", "0", "--no-fallback")  # the tiny config's own rerank
    assert own.returncode == spelled.returncode == 0, own.stderr + spelled.stderr
    rows = [json.loads(line) for line in own.stdout.splitlines()]
    assert len(rows) == 2 and all(row["source"] == "model" for row in rows)  # never a retrieved program
    assert [r["code"] for r in rows] == [json.loads(line)["code"] for line in spelled.stdout.splitlines()]


@pytest.mark.parametrize("prompt", ["", "   "])
def test_generate_cli_empty_prompt(tiny_artifacts, prompt):
    proc = run_cli("e2p", "generate", prompt, "--artifacts", str(tiny_artifacts))
    assert proc.returncode == 2
    assert proc.stderr.startswith("e2p: error: the prompt is empty") and "Traceback" not in proc.stderr


def test_damaged_artifacts_are_named(tiny_artifacts, tmp_path):
    broken = tmp_path / "art"
    shutil.copytree(tiny_artifacts, broken)
    data = bytearray((broken / "weights.safetensors").read_bytes())
    data[-10] ^= 0xFF
    (broken / "weights.safetensors").write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="weights.safetensors is corrupt"):
        load_bundle(broken)
    (broken / "tgt_vocab.json").unlink()
    proc = run_cli("e2p", "generate", "hello", "--artifacts", str(broken))
    assert proc.returncode == 2 and "tgt_vocab.json is missing" in proc.stderr
    assert "python -m train" in proc.stderr and "Traceback" not in proc.stderr


def test_retrieval_baseline_answers_from_train_only(synthetic_corpus):
    from e2p.data.corpus import load_corpus
    from e2p.evaluation.report import retrieval_codes

    corpus = load_corpus(synthetic_corpus)
    train, test = corpus.split("train"), corpus.split("test")
    train_codes = {ex.code for ex in train}
    codes = retrieval_codes(train, test)
    assert len(codes) == len(test) and set(codes) <= train_codes
    own = [i for i, ex in enumerate(test) if ex.code not in train_codes]
    assert own and all(codes[i] != test[i].code for i in own)  # never the test example's own code


def test_evaluate_cli_shows_model_and_baseline(tiny_artifacts, synthetic_corpus, tmp_path):
    from e2p.data.corpus import load_corpus
    from e2p.evaluation.metrics import bleu
    from e2p.evaluation.report import retrieval_codes

    # the same weights exported with other decoding defaults (greedy, rerank=score): another folder
    # whose row must differ from the model's
    config = json.loads((REPO_ROOT / "train/configs/tiny.json").read_text())
    config["policy"]["default"] = {"decoding": {"strategy": "greedy"}, "rerank": "score", "pool": 0}
    cfg, other, run = tmp_path / "score.json", tmp_path / "score", tiny_artifacts.parent / "run"
    cfg.write_text(json.dumps(config))
    run_cli(*train_args(synthetic_corpus, cfg, other, run, "--export-only", "--no-eval"), check=True)
    out = tmp_path / "report.json"
    also = ["--also", f"score={other}"]
    proc = run_cli(*evaluate_args(synthetic_corpus, tiny_artifacts, *also, "--json", str(out)))
    assert proc.returncode == 0, proc.stderr
    assert "retrieval" in proc.stdout and "BLEU" in proc.stdout
    report = json.loads(out.read_text())
    corpus = load_corpus(synthetic_corpus)
    test = corpus.split("test")
    assert set(report["systems"]) == {"model", "score", "retrieval"}
    assert report["n"] == len(test) > 0 and report["split"] == "test"
    for name, system in report["systems"].items():
        assert system["n"] == len(test), name
        assert 0 <= system["bleu"] <= 100 + 1e-9 and 0 <= system["parse_rate"] <= 1 and 0 <= system["exact_match"] <= 1
        assert 0 <= system["n_executable"] <= system["n_runs"] <= len(test)
        for rate in ("exec_match", "runs_rate"):
            assert system[rate] == "unavailable" or 0 <= system[rate] <= 1
    # --also: another folder's row is that folder's own evaluation (with its default settings), not the model's
    alone = tmp_path / "alone.json"
    run_cli(*evaluate_args(synthetic_corpus, other, "--no-ranker-row", "--json", str(alone)), check=True)
    score = report["systems"]["score"]
    assert score["settings"] == "greedy, rerank=score" != report["systems"]["model"]["settings"]
    assert score == json.loads(alone.read_text())["systems"]["model"]
    baseline = report["systems"]["retrieval"]  # the nearest *train* prompt's code, scored as EVAL.md says
    expected = bleu(retrieval_codes(corpus.split("train"), test), [ex.code for ex in test])
    assert baseline["bleu"] == pytest.approx(expected) and baseline["parse_rate"] == 1.0


def test_evaluate_also_needs_name_and_folder(tiny_artifacts, synthetic_corpus):
    proc = run_cli(*evaluate_args(synthetic_corpus, tiny_artifacts, "--also", str(tiny_artifacts)))
    assert proc.returncode == 2 and "--also takes NAME=FOLDER" in proc.stderr and "Traceback" not in proc.stderr


def test_training_resumes_after_a_kill(synthetic_corpus, tmp_path):
    """Kill `python -m train` mid-epoch; the same command goes on from the last checkpoint."""
    import subprocess
    import sys
    import time

    config = json.loads((REPO_ROOT / "train/configs/tiny.json").read_text())
    config.update(batch_tokens=400, checkpoint_every_s=0, max_epochs=1)
    (tmp_path / "cfg.json").write_text(json.dumps(config))
    args = [
        sys.executable,
        "-m",
        *train_args(synthetic_corpus, tmp_path / "cfg.json", tmp_path / "out", tmp_path / "run"),
        "--quiet",
        "--no-eval",
    ]
    proc = subprocess.Popen(args, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    meta = tmp_path / "run/checkpoint/meta.json"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if meta.exists() and json.loads(meta.read_text())["batch"] >= 2:
            break
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    done = json.loads(meta.read_text())
    assert done["epoch"] == 0 and done["batch"] >= 2, "the run should have been killed mid-epoch"
    again = subprocess.run(args, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"resuming from {tmp_path / 'run/checkpoint'}: epoch 1, batch {done['batch']}" in again.stdout
    assert (tmp_path / "out/weights.safetensors").exists()


def test_export_only_rewrites_artifacts_from_the_finished_run(tiny_artifacts, synthetic_corpus, tmp_path):
    out = tmp_path / "again"
    run_cli(
        *train_args(
            synthetic_corpus, "tiny", out, tiny_artifacts.parent / "run", "--export-only", "--no-eval", "--quiet"
        ),
        check=True,
    )
    assert (out / "weights.safetensors").read_bytes() == (tiny_artifacts / "weights.safetensors").read_bytes()
    verify(out)
    proc = run_cli(*train_args(synthetic_corpus, "tiny", out, tmp_path / "nothing", "--export-only"))
    assert proc.returncode == 2 and "no finished run" in proc.stderr
