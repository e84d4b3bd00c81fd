"""The shipped model folder: what is in it, its manifest, and loading it with clear errors."""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from safetensors.torch import load_file

from .corpus import Example
from .errors import E2PError
from .features import FeatureConfig, Featurizer
from .model import ModelConfig, Seq2Seq
from .ranking import FeatureMaker, Ranker
from .retrieval import Retriever
from .vocab import Vocab

REBUILD = "python -m train --data ../shared/data/english_python_data.txt --out artifacts"
REQUIRED = ("config.json", "weights.safetensors", "src_vocab.json", "tgt_vocab.json")
MANIFEST = "manifest.json"


class ArtifactError(E2PError):
    """The artifact folder is missing a file or holds a corrupt one."""


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def git_commit(cwd: str | Path = ".") -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def write_manifest(folder: str | Path, info: dict) -> dict:
    """sha256 of every file in the folder (but the manifest) plus `info`."""
    folder = Path(folder)
    files = {p.name: sha256_file(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name != MANIFEST}
    manifest = dict(info, files=files)
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def verify(folder: str | Path) -> dict:
    """The manifest, after checking every file it lists; ArtifactError names what is wrong."""
    folder = Path(folder)
    hint = f"Rebuild the artifacts with: {REBUILD}"
    if not folder.is_dir():
        raise ArtifactError(f"artifact folder {folder} does not exist. {hint}")
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        files = manifest["files"]
    except FileNotFoundError:
        raise ArtifactError(f"{folder / MANIFEST} is missing. {hint}") from None
    except (ValueError, KeyError, TypeError):
        raise ArtifactError(f"{folder / MANIFEST} is corrupt (not a manifest). {hint}") from None
    for name in REQUIRED:
        if name not in files:
            raise ArtifactError(f"{folder / MANIFEST} does not list {name}. {hint}")
    for name, digest in files.items():
        path = folder / name
        if not path.is_file():
            raise ArtifactError(f"{path} is missing. {hint}")
        if sha256_file(path) != digest:
            raise ArtifactError(f"{path} is corrupt (its sha256 differs from the manifest's). {hint}")
    return manifest


def read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ArtifactError(f"{path} cannot be read: {err}. Rebuild with: {REBUILD}") from None


def read_memory(path: Path) -> list[Example]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            rows.append(Example(prompt=row["prompt"], code=row["code"], line=row.get("line", 0)))
    return rows


def write_memory(path: Path, examples: list[Example]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for ex in examples:
            handle.write(json.dumps({"prompt": ex.prompt, "code": ex.code, "line": ex.line}, ensure_ascii=False) + "\n")


@dataclass
class Bundle:
    """A loaded artifact: the model and everything needed to feed it and read its output."""

    folder: Path
    model: Seq2Seq
    featurizer: Featurizer
    src_vocab: Vocab
    tgt_vocab: Vocab
    config: dict
    manifest: dict
    ranker: Ranker | None = None  # the learned choice among retrieved programs (ranker.json)
    ranker_features: FeatureMaker | None = None
    retriever: Retriever | None = None  # over memory.jsonl, the train split


def load_bundle(folder: str | Path, check: bool = True) -> Bundle:
    folder = Path(folder)
    manifest = verify(folder) if check else read_json(folder / MANIFEST)
    config = read_json(folder / "config.json")
    try:
        model_cfg = ModelConfig.from_dict(config["model"])
        feat_cfg = FeatureConfig.from_dict(config["features"])
    except (KeyError, TypeError) as err:
        raise ArtifactError(f"{folder / 'config.json'} lacks {err}. Rebuild with: {REBUILD}") from None
    src_vocab = Vocab.load(folder / "src_vocab.json")
    tgt_vocab = Vocab.load(folder / "tgt_vocab.json")
    model = Seq2Seq(model_cfg)
    try:
        state = load_file(str(folder / "weights.safetensors"))
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    except Exception as err:  # safetensors raises its own error types on a damaged file
        raise ArtifactError(f"{folder / 'weights.safetensors'} cannot be loaded: {err}. Rebuild with: {REBUILD}") from None
    if model_cfg.tie_output:
        model.lm_head.weight = model.tgt_embed.weight
    model.eval()
    retriever = ranker = ranker_features = None
    has_ranker = (folder / "ranker.json").is_file()
    if feat_cfg.retrieval or has_ranker:
        memory = folder / "memory.jsonl"
        if not memory.is_file():
            raise ArtifactError(f"{memory} is missing (the model retrieves from it). Rebuild with: {REBUILD}")
        examples = read_memory(memory)
        retriever = Retriever(examples)
        if has_ranker:
            try:
                ranker = Ranker.load(folder / "ranker.json")
            except (ValueError, KeyError, TypeError) as err:
                raise ArtifactError(f"{folder / 'ranker.json'} cannot be used: {err}. Rebuild with: {REBUILD}") from None
            ranker_features = FeatureMaker(examples)
    featurizer = Featurizer(feat_cfg, retriever if feat_cfg.retrieval else None)
    return Bundle(folder, model, featurizer, src_vocab, tgt_vocab, config, manifest, ranker, ranker_features,
                  retriever)
