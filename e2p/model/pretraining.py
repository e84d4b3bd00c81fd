"""Pretraining data from unlabelled Python: every function of a folder or tarball of `.py` files.

Each function gives two training pairs in the fine-tune's own format (issue 10, lever 4):
- *retrieve and write*: its docstring's first sentence (or its name's words) is the prompt, and
  the nearest other function by that prompt is the retrieved example, as in fine-tuning;
- *denoise*: the prompt, then the function's own code with lines dropped, names swapped and
  tokens deleted as the "retrieved example": the model learns to copy what is right and fix
  what is not, which is what retrieve-and-edit asks of it.
The code is the function with its docstring and type annotations removed (the corpus style).
Functions whose syntax tree equals a valid or test reference, or a function inside one, and
functions whose prompt key is a valid or test prompt's, are dropped: EVAL.md's held-out rows never
reach the weights. The vocabulary is the fine-tune's, so pretrained weights load into it as they are.
"""

from __future__ import annotations

import ast
import gzip
import io
import json
import random
import re
import tarfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..data.corpus import Example, prompt_key
from ..data.features import CODE, SEP, Featurizer
from ..data.retrieval import Retriever
from ..data.tokenizers import CONT, DEDENT, INDENT, NL, code_tokens
from ..data.vocab import Vocab
from ..errors import E2PError
from ..syntax import parse_tree
from .training import Prepared, TrainConfig

MIN_TOKENS = 10  # shorter functions say too little (`def f(x): return x` is 9 tokens)
MAX_PROMPT_WORDS = 40
UNK_SHARE = 0.2  # targets with more unknown tokens than this are dropped (<unk> itself is not scored:
# the pretraining config sets score_unk false)
DROP_LINE, SWAP_NAME, DROP_TOKEN = 0.15, 0.1, 0.05  # the denoising pair's corruption rates


@dataclass(frozen=True)
class Function:
    path: str  # file inside the source, for the record
    name: str
    prompt: str
    code: str


@dataclass
class PretrainData:
    functions: list[Function]
    stats: dict = field(default_factory=dict)
    licence: str | None = None  # the source's LICENSE file, kept beside the weights derived from it


# ----------------------------------------------------------------------------- reading


def is_licence(name: str) -> bool:
    return Path(name).name.upper().startswith("LICENSE")


def source_files(source: str | Path) -> Iterator[tuple[str, str]]:
    """(path, text) of every `.py` and LICENSE file in a folder or a .tar(.gz) archive, in sorted
    order, reading the archive once."""
    source = Path(source)
    wanted = lambda name: name.endswith(".py") or is_licence(name)  # noqa: E731
    if source.is_dir():
        for path in sorted(p for p in source.rglob("*") if p.is_file() and wanted(p.name)):
            yield str(path.relative_to(source)), path.read_text(encoding="utf-8", errors="replace")
        return
    if not source.is_file():
        raise E2PError(f"no pretraining source at {source}: expected a folder or a .tar.gz of .py files")
    try:
        with tarfile.open(source) as archive:
            members = (m for m in archive.getmembers() if m.isfile() and wanted(m.name))
            for member in sorted(members, key=lambda m: m.name):
                data = archive.extractfile(member)
                if data is not None:
                    yield member.name, io.TextIOWrapper(data, encoding="utf-8", errors="replace").read()
    except (tarfile.TarError, OSError, EOFError) as err:
        raise E2PError(f"cannot read pretraining archive {source}: {err}") from None


def _strip(node: ast.AST) -> ast.AST:
    """Docstrings and type annotations out, in place: the corpus's programs have neither."""
    for sub in ast.walk(node):
        body = getattr(sub, "body", None)
        if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)) and body:
            first = body[0]
            if isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant):
                if isinstance(first.value.value, str):
                    sub.body = body[1:] or [ast.Pass()]
        if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)):
            sub.returns = None
        if isinstance(sub, ast.arg):  # every parameter, *args and **kwargs included
            sub.annotation = None
    return node


def _tree_key(node: ast.AST) -> str:
    return ast.dump(_strip(node), annotate_fields=False)


def held_out_keys(references: list[str]) -> set[str]:
    """Tree keys of the held-out programs and of every function inside them."""
    keys = set()
    for code in references:
        tree = parse_tree(code)
        if tree is None:
            continue
        keys.add(_tree_key(tree))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                keys.add(_tree_key(node))
    return keys


def prompt_of(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    """The docstring's first sentence, or "write a python function" and the name's words."""
    doc = ast.get_docstring(node) or ""
    first = re.split(r"\n\s*\n", doc.strip(), maxsplit=1)[0]
    first = " ".join(first.split()).split(">>>")[0].strip()
    first = re.split(r"(?<=[.!?])\s", first, maxsplit=1)[0]
    if len(first.split()) >= 3 and not first.startswith((":", "@")):  # "Example:" says nothing
        return " ".join(first.split()[:MAX_PROMPT_WORDS])
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", node.name).replace("_", " ").lower().split()
    return "write a python function " + " ".join(words)


def read_functions(source: str | Path, held_out: list[Example], max_tokens: int = 256) -> PretrainData:
    """Every function in `source` that is short enough, parses, is not a held-out program and was
    not already read."""
    banned_trees = held_out_keys([ex.code for ex in held_out])
    banned_prompts = {ex.key for ex in held_out}
    dropped: Counter = Counter()
    seen: set[str] = set()
    functions, files, licences = [], 0, {}
    for path, text in source_files(source):
        if is_licence(path):
            licences[path] = text
            continue
        files += 1
        tree = parse_tree(text)  # quiet: no SyntaxWarning from the files read
        if tree is None:
            dropped["file does not parse"] += 1
            continue
        # every prompt before any tree key: a key strips docstrings in place, nested functions' too
        defs = [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
        prompts = [prompt_of(node) for node in defs]
        for node, prompt in zip(defs, prompts):
            reason, code = _kept(node, prompt, banned_trees, banned_prompts, seen, max_tokens)
            if reason:
                dropped[reason] += 1
            else:
                functions.append(Function(path, node.name, prompt, code))
    if not functions:
        raise E2PError(f"no usable functions in {source}")
    stats = {"files": files, "functions": len(functions), "dropped": dict(sorted(dropped.items()))}
    top = min(licences, key=lambda path: (len(Path(path).parts), path), default=None)  # the source's own
    return PretrainData(functions, stats, licences.get(top))


def _kept(node, prompt: str, banned_trees: set, banned_prompts: set, seen: set, max_tokens: int) -> tuple[str, str]:
    """("", the function's code) where it is kept (`seen` gains its tree), else (why not, "")."""
    if node.name.startswith("__") and node.name.endswith("__"):
        return "special method", ""
    key = _tree_key(node)
    if key in banned_trees:
        return "same tree as a valid/test reference", ""
    if prompt_key(prompt) in banned_prompts:
        return "same prompt as a valid/test example", ""
    if key in seen:
        return "duplicate function", ""
    seen.add(key)
    code = ast.unparse(node) + "\n"
    try:
        n = len(code_tokens(code))
    except (SyntaxError, ValueError, IndentationError):
        return "does not tokenize", ""
    if n < MIN_TOKENS or n > max_tokens:
        return ("too short" if n < MIN_TOKENS else "too long"), ""
    return "", code


# ----------------------------------------------------------------------------- pairs


def corrupt(tokens: list[str], rng: random.Random) -> list[str]:
    """Drop whole lines, swap identifier pieces for others of the same code, delete tokens."""
    lines, line = [], []
    for tok in tokens:
        line.append(tok)
        if tok == NL:
            lines.append(line)
            line = []
    if line:
        lines.append(line)
    kept = [ln for ln in lines if rng.random() >= DROP_LINE or any(t in (INDENT, DEDENT) for t in ln)]
    names = sorted({t for t in tokens if t[:1].isalpha() or t.startswith(CONT)})
    out = []
    for tok in (t for ln in kept for t in ln):
        if rng.random() < DROP_TOKEN and tok not in (NL, INDENT, DEDENT):
            continue
        if names and tok in names and rng.random() < SWAP_NAME:
            tok = rng.choice(names)
        out.append(tok)
    return out


def pretrain_pairs(data: PretrainData, cfg: TrainConfig, vocab: Vocab, seed: int = 0) -> tuple[list, dict]:
    """Encoded (source ids, target ids) pairs: a retrieve-and-write and a denoising pair per function."""
    examples = [Example(fn.prompt, fn.code, line=i + 1) for i, fn in enumerate(data.functions)]
    featurizer = Featurizer(cfg.feature_config(), Retriever(examples) if cfg.retrieval else None)
    rng = random.Random(seed)
    pairs, counts = [], Counter()
    for ex in examples:
        source = featurizer.source(ex.prompt, exclude_key=ex.key)  # what `featurizer.pair` does, kept
        # whole here because the denoising pair reuses its prompt part
        src, tgt = source.tokens, featurizer.target(ex.code, source.slots)
        prompt = source.tokens[: source.prompt_len]
        noisy = prompt + [SEP] + prompt + [CODE] + corrupt(tgt, rng)
        for kind, (s, t) in (("write", (src, tgt)), ("denoise", (noisy[: cfg.max_src], tgt))):
            ids = vocab.encode(t)
            if sum(i == Vocab.unk_id for i in ids) > UNK_SHARE * len(ids):
                counts[f"{kind}: too many unknown tokens"] += 1
                continue
            pairs.append((vocab.encode(s), ids[: cfg.max_tgt]))
            counts[kind] += 1
    return pairs, dict(sorted(counts.items()))


# ----------------------------------------------------------------------------- packs


def save_pack(path: str | Path, prep: Prepared, cfg: TrainConfig, stats: dict) -> None:
    """Encoded pairs, vocabulary and config in one gzipped JSON file: training from it needs
    neither the corpus nor the tokenizers (e.g. on a machine without spaCy)."""
    data = {
        "config": asdict(cfg),
        "vocab": prep.src_vocab.tokens,
        "train_pairs": prep.train_pairs,
        "valid_pairs": prep.valid_pairs,
        "stats": stats,
    }
    with gzip.open(path, "wt", encoding="utf-8") as f:
        json.dump(data, f, separators=(",", ":"))


def load_pack(path: str | Path) -> tuple[Prepared, TrainConfig, dict]:
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            data = json.load(f)
        vocab = Vocab(data["vocab"])
        cfg = TrainConfig.from_trained(data["config"])  # a pack written before an option was retired too
        pairs = {k: [(list(s), list(t)) for s, t in data[k]] for k in ("train_pairs", "valid_pairs")}
    except (OSError, ValueError, KeyError, TypeError, EOFError) as err:
        raise E2PError(f"cannot read pack {path}: {err}") from None
    prep = Prepared([], [], [], None, vocab, vocab, pairs["train_pairs"], pairs["valid_pairs"])
    return prep, cfg, data.get("stats", {})
