"""Artifacts and outputs (issue 9, item 6): the loader reads only files its manifest lists and
checks; writing an artifact deletes only the files the folder's own manifest lists; `python -m
train` writes a folder of its own by default; `evaluate` refuses another corpus unless told."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import REPO_ROOT, run_cli

from e2p.answer.bundle import (
    MANIFEST,
    REQUIRED,
    ArtifactError,
    read_memory,
    replaceable_files,
    sha256_file,
    verify,
    write_manifest,
)
from e2p.errors import E2PError


def fake_artifact(folder: Path, *extra: str) -> Path:
    """A folder that passes `verify` (the files are not a model: nothing here loads it)."""
    folder.mkdir(parents=True)
    for name in (*REQUIRED, *extra):
        (folder / name).write_text(f"{name}\n")
    write_manifest(folder, {"corpus_sha256": "0" * 64})
    return folder


# ------------------------------------------------------------------ the loader's check


def test_verify_refuses_a_file_the_manifest_does_not_list(tmp_path):
    folder = fake_artifact(tmp_path / "art", "memory.jsonl")
    verify(folder)
    (folder / "ranker.json").write_text("{}")  # would change which programs are run
    with pytest.raises(ArtifactError, match=r"holds ranker\.json, which manifest\.json does not list"):
        verify(folder)


def test_verify_ignores_subfolders(tmp_path):
    folder = fake_artifact(tmp_path / "art")
    fake_artifact(folder / "original")  # like artifacts/original: an artifact of its own
    assert set(verify(folder)["files"]) == set(REQUIRED)


@pytest.mark.parametrize("name", ["../outside.json", "/etc/passwd", "sub/file.json", MANIFEST])
def test_verify_refuses_a_manifest_naming_other_paths(tmp_path, name):
    folder = fake_artifact(tmp_path / "art")
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["files"][name] = "0" * 64
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="is corrupt"):
        verify(folder)


def test_shipped_artifacts_list_every_file_they_hold():
    for folder in (REPO_ROOT / "artifacts", REPO_ROOT / "artifacts/original"):
        if not (folder / MANIFEST).is_file():
            pytest.skip(f"no shipped artifact at {folder}")
        verify(folder)


@pytest.mark.parametrize("line", ['{"prompt": "cut', '["a list"]', '{"prompt": "no code"}'])
def test_a_bad_memory_line_is_named(tmp_path, line):
    memory = tmp_path / "memory.jsonl"
    memory.write_text('{"prompt": "p", "code": "print(1)", "line": 3}\n' + line + "\n")
    with pytest.raises(ArtifactError, match=r"memory\.jsonl line 2 is not a prompt/code record"):
        read_memory(memory)


# ------------------------------------------------------------------ what writing an artifact deletes


def test_replaceable_files_are_only_the_listed_ones(tmp_path):
    assert replaceable_files(tmp_path / "new") == []
    (tmp_path / "empty").mkdir()
    assert replaceable_files(tmp_path / "empty") == []
    folder = fake_artifact(tmp_path / "art")
    fake_artifact(folder / "original")
    assert sorted(p.name for p in replaceable_files(folder)) == sorted([*REQUIRED, MANIFEST])


def test_replaceable_files_refuses_what_is_not_an_artifact(tmp_path):
    (tmp_path / "README.md").write_text("keep me")
    with pytest.raises(ArtifactError, match="not an artifact folder"):
        replaceable_files(tmp_path)
    with pytest.raises(ArtifactError, match="is not a folder"):
        replaceable_files(tmp_path / "README.md")
    folder = fake_artifact(tmp_path / "art")
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(ArtifactError, match=r"holds notes\.txt, which its manifest\.json does not list"):
        replaceable_files(folder)
    (folder / "notes.txt").unlink()
    (folder / MANIFEST).write_text("{not json")
    with pytest.raises(ArtifactError, match="is corrupt"):
        replaceable_files(folder)


# ------------------------------------------------------------------ evaluate and the corpus


def fake_generator(corpus_sha256):
    return SimpleNamespace(bundle=SimpleNamespace(manifest={"corpus_sha256": corpus_sha256}))


def test_check_corpus(capsys):
    from e2p.commands import check_corpus

    check_corpus(fake_generator("a" * 64), "art", "data.txt", "a" * 64, allow_other=False)
    with pytest.raises(E2PError, match="is not the corpus art was built from.*--allow-other-corpus"):
        check_corpus(fake_generator("a" * 64), "art", "data.txt", "b" * 64, allow_other=False)
    with pytest.raises(E2PError, match="its manifest records none"):
        check_corpus(fake_generator(None), "art", "data.txt", "b" * 64, allow_other=False)
    check_corpus(fake_generator("a" * 64), "art", "data.txt", "b" * 64, allow_other=True)
    assert capsys.readouterr().err.startswith("e2p: warning: data.txt (sha256 bbbbbbbbbbbb…) is not the corpus")


def test_shipped_artifacts_were_built_from_the_shared_corpus(full_corpus_path):
    manifest = json.loads((REPO_ROOT / "artifacts" / MANIFEST).read_text())
    assert manifest["corpus_sha256"] == sha256_file(full_corpus_path)


def test_unmeasured_runs_print_unavailable():
    from e2p.evaluation.metrics import EvalReport
    from e2p.evaluation.report import SystemResult, as_json, table

    report = EvalReport(
        n=3, bleu=12.5, parse_rate=1.0, exact_match=0.0, exec_match=None, n_executable=2, runs_rate=None, n_runs=3
    )
    report.runs_unavailable = "bubblewrap (bwrap) is not installed"
    measured = EvalReport(
        n=3, bleu=10.0, parse_rate=1.0, exact_match=0.0, exec_match=0.5, n_executable=2, runs_rate=1.0, n_runs=3
    )
    results = [
        SystemResult("model", ["", "", ""], report, "greedy"),
        SystemResult("retrieval", ["", "", ""], measured, "tf-idf"),
    ]
    text = table(results)
    model_row = next(line for line in text.splitlines() if line.startswith("model"))
    assert model_row.count("unavailable") == 2 and "100.0%" in model_row
    assert "50.0%" in next(line for line in text.splitlines() if line.startswith("retrieval"))
    assert text.splitlines()[-1] == "runs and exec match unavailable: bubblewrap (bwrap) is not installed"
    out = as_json(results)
    assert out["model"]["exec_match"] == out["model"]["runs_rate"] == "unavailable"
    assert out["retrieval"]["exec_match"] == 0.5
    json.dumps(out)


# ------------------------------------------------------------------ the real commands (slow)


def copied_run(tiny_artifacts, tmp_path) -> Path:
    """A copy of the finished tiny training run, to export from with --export-only."""
    return Path(shutil.copytree(tiny_artifacts.parent / "run", tmp_path / "run"))


def export_only(corpus, work: Path, *out: str):
    return run_cli(
        "train",
        "--data",
        str(corpus),
        "--config",
        "tiny",
        "--work-dir",
        str(work),
        "--export-only",
        "--no-eval",
        "--quiet",
        *out,
    )


@pytest.mark.slow
def test_train_writes_a_folder_of_its_own_by_default(tiny_artifacts, synthetic_corpus, tmp_path):
    from train.__main__ import parse_args

    assert parse_args(["--data", "x"]).out is None
    shipped = REPO_ROOT / "artifacts" / MANIFEST
    before = shipped.stat().st_mtime_ns if shipped.is_file() else None
    work = copied_run(tiny_artifacts, tmp_path)
    proc = export_only(synthetic_corpus, work)
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {work / 'artifacts'}" in proc.stdout
    verify(work / "artifacts")
    assert (shipped.stat().st_mtime_ns if shipped.is_file() else None) == before


@pytest.mark.slow
def test_export_refuses_a_folder_that_is_not_an_artifact(tiny_artifacts, synthetic_corpus, tmp_path):
    target = tmp_path / "project"
    target.mkdir()
    (target / "README.md").write_text("keep me")
    proc = export_only(synthetic_corpus, copied_run(tiny_artifacts, tmp_path), "--out", str(target))
    assert proc.returncode == 2 and "not an artifact folder" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert [p.name for p in target.iterdir()] == ["README.md"] and (target / "README.md").read_text() == "keep me"


@pytest.mark.slow
def test_export_replaces_only_the_files_its_manifest_lists(tiny_artifacts, synthetic_corpus, tmp_path):
    target = Path(shutil.copytree(tiny_artifacts, tmp_path / "art"))
    (target / "original").mkdir()
    (target / "original" / "kept.txt").write_text("another artifact's file")
    work = copied_run(tiny_artifacts, tmp_path)
    proc = export_only(synthetic_corpus, work, "--out", str(target))
    assert proc.returncode == 0, proc.stderr
    assert (target / "original" / "kept.txt").read_text() == "another artifact's file"
    assert not (target / "samples.json").exists()  # listed before, not written by --no-eval: gone
    verify(target)
    (target / "notes.txt").write_text("mine")
    proc = export_only(synthetic_corpus, work, "--out", str(target))
    assert proc.returncode == 2 and "notes.txt" in proc.stderr and "does not list" in proc.stderr
    assert (target / "notes.txt").read_text() == "mine"


@pytest.mark.slow
def test_evaluate_refuses_another_corpus_unless_allowed(tiny_artifacts, synthetic_corpus, tmp_path):
    other = tmp_path / "other.jsonl"
    other.write_text(
        synthetic_corpus.read_text()
        + json.dumps({"prompt": "print hello world", "code": "print('hello world')"})
        + "\n"
    )
    args = (
        "e2p",
        "evaluate",
        "--data",
        str(other),
        "--artifacts",
        str(tiny_artifacts),
        "--beam",
        "1",
        "--limit",
        "2",
        "--rerank",
        "parse",
    )
    proc = run_cli(*args)
    assert proc.returncode == 2 and proc.stdout == "", proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "is not the corpus" in lines[0] and "--allow-other-corpus" in lines[0]
    proc = run_cli(*args, "--allow-other-corpus")
    assert proc.returncode == 0, proc.stderr
    assert "e2p: warning:" in proc.stderr and "evaluating anyway" in proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1])["corpus_sha256"] == sha256_file(other)


SHIPPED = sorted(p.parent for p in (REPO_ROOT / "artifacts").glob("**/memory.jsonl"))


def conala_rule(eval_rule):
    """EVAL.md's CoNaLa split, computed apart from e2p.data.corpus: dev where the key's sha256 % 10 == 0."""
    import hashlib

    key, _ = eval_rule
    return lambda prompt: "dev" if int(hashlib.sha256(key(prompt).encode()).hexdigest(), 16) % 10 == 0 else "train"


@pytest.mark.parametrize("folder", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_memory_row_is_a_train_example(folder, request, eval_rule):
    """The retrieval memory holds train examples only, by EVAL.md's rule computed apart from
    e2p.data.corpus (CoNaLa's for an artifact trained on it), each the corpus's own example at the line
    it names (no prompt rewritten)."""
    if json.loads((folder / "config.json").read_text())["train"].get("split") == "conala":
        from e2p.constants import CONALA_PATH
        from e2p.data.corpus import load_corpus

        if not (REPO_ROOT / CONALA_PATH).is_file():
            pytest.skip(f"CoNaLa's train file not found at {CONALA_PATH}")
        full_corpus, split = load_corpus(REPO_ROOT / CONALA_PATH, "conala"), conala_rule(eval_rule)
    else:
        full_corpus, split = request.getfixturevalue("full_corpus"), eval_rule[1]
    rows = [json.loads(line) for line in (folder / "memory.jsonl").read_text(encoding="utf-8").splitlines()]
    by_line = {ex.line: ex for ex in full_corpus.examples}
    assert rows
    not_train = [(row["line"], split(row["prompt"])) for row in rows if split(row["prompt"]) != "train"]
    assert not_train == []
    unknown = [
        row["line"]
        for row in rows
        if row["line"] not in by_line
        or (by_line[row["line"]].prompt, by_line[row["line"]].code) != (row["prompt"], row["code"])
    ]
    assert unknown == []
    test_and_valid = sum(split(ex.prompt) != "train" for ex in full_corpus.examples)
    assert test_and_valid > 0  # the rule does hold examples back, so the check above has teeth
