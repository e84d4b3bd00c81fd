"""The shipped model folder: what is in it, its manifest, and loading it with clear errors."""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

from safetensors.torch import load_file

from ..constants import REBUILD_COMMAND
from ..data.corpus import Example
from ..data.features import FeatureConfig, Featurizer
from ..data.retrieval import Retriever
from ..data.vocab import Vocab
from ..errors import E2PError
from ..model.transformer import ModelConfig, Seq2Seq
from .policy import Policy, PolicyError
from .ranking import Ranker, RankerFeatures

REBUILD = REBUILD_COMMAND
REQUIRED = ("config.json", "policy.json", "weights.safetensors", "src_vocab.json", "tgt_vocab.json")
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


def artifact_files(folder: Path) -> list[str]:
    """Names of the files in an artifact folder, the manifest aside (subfolders such as
    `artifacts/original` are artifacts of their own, not part of this one)."""
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.name != MANIFEST)


def write_manifest(folder: str | Path, info: dict) -> dict:
    """sha256 of every file in the folder (but the manifest) plus `info`."""
    folder = Path(folder)
    files = {name: sha256_file(folder / name) for name in artifact_files(folder)}
    manifest = dict(info, files=files)
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def read_manifest(folder: Path, hint: str = "") -> dict:
    """The folder's manifest; ArtifactError where it is missing or is not a manifest."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        files = manifest["files"]
        if not all(
            isinstance(name, str) and Path(name).name == name and name not in ("", ".", "..", MANIFEST)
            for name in files
        ):  # plain names of files in this very folder
            raise ValueError("a listed name is not a file name")
    except FileNotFoundError:
        raise ArtifactError(f"{folder / MANIFEST} is missing. {hint}".strip()) from None
    except (OSError, ValueError, KeyError, TypeError):
        raise ArtifactError(f"{folder / MANIFEST} is corrupt (not a manifest). {hint}".strip()) from None
    return manifest


def verify(folder: str | Path) -> dict:
    """The manifest, after checking every file it lists and that it lists every file in the
    folder (the loader reads nothing unchecked); ArtifactError names what is wrong."""
    folder = Path(folder)
    hint = f"Rebuild the artifacts with: {REBUILD}"
    if not folder.is_dir():
        raise ArtifactError(f"artifact folder {folder} does not exist. {hint}")
    manifest = read_manifest(folder, hint)
    files = manifest["files"]
    unlisted = [name for name in artifact_files(folder) if name not in files]
    if unlisted:
        raise ArtifactError(
            f"{folder} holds {', '.join(unlisted)}, which {MANIFEST} does not list: "
            f"move it out of the folder, or {hint[0].lower()}{hint[1:]}"
        )
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


def replaceable_files(out: str | Path) -> list[Path]:
    """The files that writing a new artifact into `out` deletes: only those its own manifest lists
    (and the manifest). ArtifactError, deleting nothing, where `out` is not a folder, is a
    non-empty folder without a manifest (not an artifact folder), or holds unlisted files."""
    out = Path(out)
    if not out.exists():
        return []
    where = "choose a new or empty folder with --out"
    if not out.is_dir():
        raise ArtifactError(f"{out} is not a folder: {where}")
    if not (out / MANIFEST).is_file():
        if any(out.iterdir()):
            raise ArtifactError(
                f"{out} is not empty and holds no {MANIFEST}, so it is not an artifact "
                f"folder and nothing in it is replaced: {where}"
            )
        return []
    files = read_manifest(out, f"Nothing in it is replaced: {where}.")["files"]
    unlisted = [name for name in artifact_files(out) if name not in files]
    if unlisted:
        raise ArtifactError(
            f"{out} holds {', '.join(unlisted)}, which its {MANIFEST} does not list, "
            f"so nothing in it is replaced: move those out, or {where}"
        )
    return [out / name for name in files if (out / name).is_file()] + [out / MANIFEST]


def read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ArtifactError(f"{path} cannot be read: {err}. Rebuild with: {REBUILD}") from None


def read_memory(path: Path) -> list[Example]:
    """The train examples of memory.jsonl; ArtifactError names a bad line."""
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise ArtifactError(f"{path} cannot be read: {err}. Rebuild with: {REBUILD}") from None
    for number, line in enumerate(lines, 1):
        if line.strip():
            try:
                row = json.loads(line)
                rows.append(Example(prompt=str(row["prompt"]), code=str(row["code"]), line=int(row.get("line", 0))))
            except (ValueError, KeyError, TypeError, AttributeError):
                raise ArtifactError(
                    f"{path} line {number} is not a prompt/code record. " f"Rebuild with: {REBUILD}"
                ) from None
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
    config: dict  # config.json: the model's shape, its features and the training config
    manifest: dict
    policy: Policy  # policy.json: how it answers
    ranker: Ranker | None = None  # the learned choice among retrieved programs (ranker.json)
    ranker_features: RankerFeatures | None = None
    retriever: Retriever | None = None  # over memory.jsonl, the train split


def load_bundle(folder: str | Path, check: bool = True) -> Bundle:
    """The artifact in `folder`; with `check` (the default) only after `verify`: every file read
    here is listed in the manifest with its sha256, and no file there goes unlisted."""
    folder = Path(folder)
    try:
        # before `verify`: an artifact written before policy.json existed gets this sentence, not "not listed"
        policy = Policy.load(folder, REBUILD) if folder.is_dir() else None
    except PolicyError as err:
        raise ArtifactError(str(err)) from None
    manifest = verify(folder) if check else read_json(folder / MANIFEST)
    config = read_json(folder / "config.json")
    try:
        model_cfg = ModelConfig.from_dict(config["model"])
        # the example shown at inference is the policy's; the features as trained show the nearest
        feat_cfg = replace(FeatureConfig.from_dict(config["features"]), example_pool=policy.example_pool)
    except (KeyError, TypeError) as err:
        raise ArtifactError(f"{folder / 'config.json'} lacks {err}. Rebuild with: {REBUILD}") from None
    src_vocab = Vocab.load(folder / "src_vocab.json")
    tgt_vocab = Vocab.load(folder / "tgt_vocab.json")
    model = Seq2Seq(model_cfg)
    try:
        state = load_file(str(folder / "weights.safetensors"))
        model.load_weights({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    except Exception as err:  # safetensors raises its own error types on a damaged file
        raise ArtifactError(
            f"{folder / 'weights.safetensors'} cannot be loaded: {err}. Rebuild with: {REBUILD}"
        ) from None
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
                raise ArtifactError(
                    f"{folder / 'ranker.json'} cannot be used: {err}. Rebuild with: {REBUILD}"
                ) from None
            ranker.model_offset = policy.model_offset
            ranker_features = RankerFeatures(examples)
    order = ranker.order_for(ranker_features) if ranker is not None and feat_cfg.example_pool else None
    featurizer = Featurizer(feat_cfg, retriever if feat_cfg.retrieval else None, order)
    return Bundle(
        folder, model, featurizer, src_vocab, tgt_vocab, config, manifest, policy, ranker, ranker_features, retriever
    )
