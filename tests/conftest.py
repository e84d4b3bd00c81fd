"""Shared fixtures: the small hand-written corpus, the real corpus (skipped when absent)."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
MINI_CORPUS = Path(__file__).resolve().parent / "fixtures" / "mini_corpus.txt"

# `pytest` run from anywhere (not only `python -m pytest` from the repo root) imports e2p.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from e2p.constants import CORPUS_PATH  # noqa: E402

FULL_CORPUS = (REPO_ROOT / CORPUS_PATH).resolve()

# The ONNX decoder graphs the tests' models export are kept in a folder of this test process (and
# the processes it starts), never in the user's ~/.cache.
os.environ["E2P_CACHE_DIR"] = tempfile.mkdtemp(prefix="e2p-test-cache-")
atexit.register(shutil.rmtree, os.environ["E2P_CACHE_DIR"], True)

try:  # the machine has 2 shared cores: keep torch from oversubscribing them
    import torch
except ImportError:  # pragma: no cover - torch is a pinned dependency
    torch = None
else:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def mini_corpus_path() -> Path:
    assert MINI_CORPUS.is_file(), f"fixture missing: {MINI_CORPUS}"
    return MINI_CORPUS


@pytest.fixture(scope="session")
def full_corpus_path() -> Path:
    if not FULL_CORPUS.is_file():
        pytest.skip(f"full corpus not found at {CORPUS_PATH}")
    return FULL_CORPUS


@pytest.fixture(scope="session")
def full_corpus(full_corpus_path):
    """The real corpus read once per session (its code trips Syntax/DeprecationWarnings)."""
    import warnings

    from e2p.data.corpus import read_corpus

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_corpus(full_corpus_path)


def eval_key(prompt: str) -> str:
    """EVAL.md's prompt key, written out step by step apart from e2p.data.corpus.prompt_key."""
    text = prompt.strip()
    if text.startswith("#"):  # 1. drop the leading `#`
        text = text.lstrip("#")
    text = text.lower().strip()  # lowercase
    i = 0
    while i < len(text) and text[i] in "0123456789":  # drop a leading number
        i += 1
    text = text[i:]
    words, word = [], ""
    for ch in text:  # every run outside [a-z0-9] -> one space, then strip
        if ch in "abcdefghijklmnopqrstuvwxyz0123456789":
            word += ch
        elif word:
            words.append(word)
            word = ""
    if word:
        words.append(word)
    return " ".join(words)


def eval_split(prompt: str) -> str:
    """EVAL.md's split of a prompt: sha256 bucket 0 -> test, 1 -> valid, else train."""
    import hashlib

    bucket = int(hashlib.sha256(eval_key(prompt).encode()).hexdigest(), 16) % 20
    return "test" if bucket == 0 else "valid" if bucket == 1 else "train"


@pytest.fixture(scope="session")
def eval_rule():
    """(key, split) functions computed from EVAL.md independently of the module under test."""
    return eval_key, eval_split


def ast_dump(code: str) -> str:
    """`code`'s syntax tree as text: two programs that parse to the same tree give the same string."""
    import ast

    return ast.dump(ast.parse(code))


def run_cli(*args: str, timeout: float = 600, cwd: Path = REPO_ROOT, check: bool = False):
    """Run `python -m <args>` from the repo root as a user would; returns CompletedProcess."""
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def train_args(corpus: Path, config: str | Path, out: Path, work_dir: Path, *extra: str) -> list[str]:
    """`python -m train`'s module and options (after `-m`): `corpus`, `config` (a preset name or a
    JSON file), the artifact folder `out` and the run folder `work_dir`, then `extra`."""
    options = ["--data", str(corpus), "--config", str(config), "--out", str(out), "--work-dir", str(work_dir)]
    return ["train", *options, *extra]


def evaluate_args(corpus: Path, artifacts: Path, *extra: str) -> list[str]:
    """`python -m e2p evaluate`'s module and options (after `-m`) on `corpus` and `artifacts`, then `extra`."""
    return ["e2p", "evaluate", "--data", str(corpus), "--artifacts", str(artifacts), *extra]


def built_once(tmp_path_factory, name: str, build) -> Path:
    """`build(folder)` for a session fixture, run once per test session. Under pytest-xdist every
    worker would build its own copy (a tiny training run each); there the first worker builds it in
    the folder the workers share, under a file lock, and the others wait for it and reuse it."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return build(tmp_path_factory.mktemp(name))
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp().parent
    done = shared / f"{name}.done"
    with FileLock(str(shared / f"{name}.lock")):
        if not done.is_file():
            folder = shared / name
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            done.write_text(str(build(folder)))
    return Path(done.read_text())


@pytest.fixture(scope="session")
def synthetic_corpus(tmp_path_factory) -> Path:
    from synthetic import write_corpus

    return built_once(tmp_path_factory, "corpus", lambda folder: write_corpus(folder / "synthetic.jsonl"))


def train_tiny(root: Path, corpus: Path, config: str = "tiny", *extra: str) -> Path:
    """root/artifacts from the real `python -m train` on `corpus` for 2 epochs (checkpoints in root/run):
    how every test model is built. `extra` goes on the command line (e.g. "--no-eval")."""
    out = root / "artifacts"
    run_cli(*train_args(corpus, config, out, root / "run", "--quiet", "--max-epochs", "2", *extra), check=True)
    return out


@pytest.fixture(scope="session")
def tiny_artifacts(tmp_path_factory, synthetic_corpus) -> Path:
    """A complete artifact folder (samples, metrics, manifest) from the tiny config, built by the real
    `python -m train` on the synthetic corpus: a model that trains in seconds and learns little."""
    return built_once(tmp_path_factory, "tiny", lambda folder: train_tiny(folder, synthetic_corpus))


@pytest.fixture(scope="session")
def tiny_copy_artifacts(tmp_path_factory, synthetic_corpus) -> Path:
    """`tiny_artifacts` from the tiny_copy preset: a shared vocabulary and copy attention (a
    pointer-generator), so that its answers carry token origins."""
    return built_once(tmp_path_factory, "tiny_copy", lambda folder: train_tiny(folder, synthetic_corpus, "tiny_copy"))


@pytest.fixture(scope="session")
def tiny_default_artifacts(tmp_path_factory, synthetic_corpus) -> Path:
    """A tiny model configured like the shipped one (train/configs/tiny_default.json: the shipped
    answer rule, copy attention, the ranker's example), without the test evaluation (--no-eval),
    for tests of the default answer end to end."""
    return built_once(
        tmp_path_factory,
        "tiny_default",
        lambda folder: train_tiny(folder, synthetic_corpus, "tiny_default", "--no-eval"),
    )


@pytest.fixture
def sandbox_off(monkeypatch):
    """Execution switched off (E2P_SANDBOX=off) for this test only."""
    from e2p.sandbox import runner as sandbox

    monkeypatch.setenv(sandbox.SWITCH, "off")
    sandbox.sandbox_status.cache_clear()
    yield sandbox
    monkeypatch.delenv(sandbox.SWITCH)
    sandbox.sandbox_status.cache_clear()
