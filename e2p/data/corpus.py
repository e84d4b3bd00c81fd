"""Read the English->Python corpus: instruction headings, cleaned code, a leakage-free split.

The corpus is a text file where an example is a heading (one or more `#` comment lines holding
an English instruction) followed by the Python that answers it. Code carries comments of its
own, mixed indentation, Python 2 prints and duplicates; `read_corpus` cleans all of that and
counts what it had to drop.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import E2PError
from ..syntax import compiles, parses

SPLITS = ("train", "valid", "test")
# How a corpus is split (../shared/EVAL.md): "eval", the main corpus's rule (train/valid/test); "conala",
# CoNaLa's (a tenth of its train file as dev, the tuning split; its test split is measured from outside
# the project, so none here). The splits each rule has, the tuning one second.
SPLIT_RULES = {"eval": SPLITS, "conala": ("train", "dev")}
# What an artifact built on CoNaLa carries beside its weights (LICENSE.md): the corpus's licence and
# attribution, which its weights and memory (derived data) share.
CONALA_LICENCE = "CC BY-SA 4.0"
CONALA_NOTICE = """\
# Licence of this artifact: CC BY-SA 4.0

The weights, vocabularies, retrieval memory (memory.jsonl), ranker and samples in this folder are
derived from CoNaLa, the CMU Code/Natural Language Challenge corpus, annotated train split v1.1:
Pengcheng Yin, Bowen Deng, Edgar Chen, Bogdan Vasilescu and Graham Neubig, "Learning to Mine
Aligned Code and Natural Language Pairs from Stack Overflow", MSR 2018
(https://conala-corpus.github.io/). Its intents and snippets come from Stack Overflow questions and
answers, contributed by Stack Overflow users under CC BY-SA 4.0.

This folder is shared under the same licence, Creative Commons Attribution-ShareAlike 4.0
International (https://creativecommons.org/licenses/by-sa/4.0/): you may share and adapt it, also
commercially, provided you give appropriate credit (to CoNaLa, Yin et al. 2018, and Stack Overflow
and its users), indicate changes, and distribute your contributions under the same licence.
Changes: the snippets were cleaned and de-duplicated and a model was trained on them by e2p
(`python -m train --data ../shared/data/conala/train.jsonl --config conala --out artifacts/conala`).
"""

# Comment openings that mark a remark inside code, never an instruction.
_CODE_REMARK = re.compile(
    r"^(printing|print result|initiali[sz]|driver|using|result|output|changed|uncomment|or\b|"
    r"in\[|coding|-\*-|x\d|\d+x\d|test case|sample|example output|expected|note|todo|"
    r"iterate through|iterating|check if|converting|breakdown|display the|modify the|"
    r"make sure|create a tuple|create a list|a new empty)",
)
# Words that open an instruction.
_INSTRUCTION_START = re.compile(
    r"^(write|python|please|define|function|given|generate|how|calculate|check|sort|convert|"
    r"find|display|create|add|remove|removes|count|reverse|make|get|access|implement|compute|"
    r"program|take|show|shuffle|merge|rotate|extract|subtract|join|split|insert|replace|"
    r"evaluate|pick|arrange|capitalize|determine|return|print|concatenate|multiply|swap|"
    r"transpose|filter|flatten|read|compare|illustrate|demonstrate|explain|use|build|"
    r"construct|design|develop|you are given|assuming|consider|with a given|a program|an? python)\b"
)
_STRONG_INSTRUCTION = re.compile(r"^(\d+\W*)?(write|python program|python function)\b")
_NUMBERED = re.compile(r"^\d+\s*[.):-]?\s*")
_PY2_PRINT = re.compile(r"^(\s*)print(?:\s+(?![\s(=.,])(.*?)|\s*)\s*$")


# Where the main corpus comes from (../shared/data/SOURCE.md), for the message where it is missing.
CORPUS_COMMIT = "99341396a96b5adb7eb257cb380dd93140f48b6f"


@dataclass(frozen=True)
class Example:
    prompt: str
    code: str
    line: int  # 1-based line of the heading in the corpus file

    @property
    def key(self) -> str:
        return prompt_key(self.prompt)

    @property
    def split(self) -> str:
        return split_of(self.key)


@dataclass
class Corpus:
    """Everything read from one corpus file."""

    headings: int
    examples: list[Example]  # de-duplicated, in file order
    kept_before_dedup: int
    duplicates: int
    dropped: Counter = field(default_factory=Counter)
    repaired: Counter = field(default_factory=Counter)
    rule: str = "eval"  # how it is split: a key of SPLIT_RULES

    @property
    def splits(self) -> tuple[str, ...]:
        return SPLIT_RULES[self.rule]

    def split(self, name: str) -> list[Example]:
        """The examples of split `name`. Under the CoNaLa rule "valid" is its dev split (what training
        tunes on) and "test" is empty (CoNaLa's test split is measured from outside the project)."""
        if self.rule == "conala" and name in ("valid", "test"):
            if name == "test":
                return []
            name = "dev"
        if name not in self.splits:
            raise E2PError(f"unknown split {name!r}: choose one of {', '.join(self.splits)}")
        return [ex for ex in self.examples if split_of(ex.key, self.rule) == name]

    def stats(self) -> dict:
        return {
            "headings": self.headings,
            "examples": self.kept_before_dedup,
            "unique_examples": len(self.examples),
            "duplicates": self.duplicates,
            "dropped": dict(sorted(self.dropped.items())),
            "repaired": dict(sorted(self.repaired.items())),
            "splits": {name: len(self.split(name)) for name in self.splits},
            **({"split_rule": self.rule} if self.rule != "eval" else {}),
        }


def prompt_key(text: str) -> str:
    """EVAL.md's prompt key: the text that decides an example's split and its duplicates."""
    key = text.strip().lstrip("#").lower().strip()
    key = re.sub(r"^\d+", "", key)
    return re.sub(r"[^a-z0-9]+", " ", key).strip()


def split_of(key: str, rule: str = "eval") -> str:
    """The split of a prompt key by `rule` (EVAL.md): "eval", sha256 bucket % 20 = 0 test, 1 valid, else
    train; "conala", bucket % 10 = 0 dev, else train."""
    digest = int(hashlib.sha256(key.encode()).hexdigest(), 16)
    if rule == "conala":
        return "dev" if digest % 10 == 0 else "train"
    if rule != "eval":
        raise E2PError(f"unknown split rule {rule!r}: choose one of {', '.join(SPLIT_RULES)}")
    return {0: "test", 1: "valid"}.get(digest % 20, "train")


# ----------------------------------------------------------------------------- headings


def _comment_text(line: str) -> str:
    return line.lstrip("#").strip()


def _looks_like_code(text: str) -> bool:
    """A commented-out statement (`# x=1`, `# try:`) rather than prose."""
    if re.match(r"^(try|except|else|finally)\s*:", text):
        return True
    if not re.search(r"[=()\[\]:]", text):
        return False
    return parses(text)


def is_instruction(text: str) -> bool:
    """Whether one comment line reads as an English instruction."""
    if _looks_like_code(text):
        return False
    low = text.lower().strip()
    numbered = bool(_NUMBERED.match(low)) and bool(re.search(r"[a-z]{3}", low))
    low = _NUMBERED.sub("", low)
    if not re.search(r"[a-z]{2}", low) or _CODE_REMARK.match(low):
        return False
    if numbered or re.search(r"\bwrite\b|\bpython\b|\bprogram\b", low):
        return True
    return bool(_INSTRUCTION_START.match(low))


def _heading_line(line: str) -> bool:
    """A comment line that may belong to a heading: column 0, or a slightly indented `# write ...`."""
    if line.startswith("#"):
        return True
    stripped = line.lstrip(" ")
    return (
        len(line) - len(stripped) <= 3
        and stripped.startswith("#")
        and bool(_STRONG_INSTRUCTION.match(_comment_text(stripped).lower()))
    )


def _is_number_only(text: str) -> bool:
    return bool(re.fullmatch(r"\d+\s*[.):]?", text.strip()))


def _heading_blocks(lines: list[str]) -> list[tuple[int, int]]:
    """(start, end) line ranges of heading blocks: runs of column-0 comments holding an instruction.

    A run of comments counts only where it starts a fresh piece (file start, after a blank line,
    or after code that is complete) - a comment between an indented line and its continuation
    is a remark inside that block.
    """
    blocks = []
    i = 0
    while i < len(lines):
        if not _heading_line(lines[i]):
            i += 1
            continue
        j = i
        while j < len(lines) and _heading_line(lines[j]):
            j += 1
        texts = [_comment_text(line.lstrip()) for line in lines[i:j]]
        first_real = next((k for k, t in enumerate(texts) if not _is_number_only(t) and t), None)
        if first_real is not None and is_instruction(texts[first_real]):
            nxt = next((line for line in lines[j:] if line.strip()), "")
            prev = next((line for line in reversed(lines[:i]) if line.strip()), "")
            continues_block = nxt[:1].isspace() and prev[:1].isspace() and not _blank_before(lines, i)
            if not continues_block:
                blocks.append((i, j))
        i = j
    return blocks


def _blank_before(lines: list[str], i: int) -> bool:
    return i == 0 or not lines[i - 1].strip()


# ----------------------------------------------------------------------------- code cleaning


def _strip_comment_lines(lines: list[str]) -> list[str]:
    """Drop blank and comment-only lines, except inside triple-quoted strings (they are text)."""
    kept, depth, in_triple = [], 0, None
    for line in lines:
        if in_triple or (line.strip() and not line.lstrip().startswith("#")):
            kept.append(line)
            depth, in_triple = _open_brackets_after(line, depth, in_triple)
    return kept


def _expand_tabs(line: str) -> str:
    body = line.lstrip(" \t")
    indent = line[: len(line) - len(body)]
    return indent.replace("\t", "    ") + body.rstrip()


def _open_brackets_after(line: str, depth: int, in_triple: str | None) -> tuple[int, str | None]:
    """Bracket depth and open triple-quote after scanning one line (strings skipped)."""
    i = 0
    while i < len(line):
        if in_triple:
            end = line.find(in_triple, i)
            if end < 0:
                return depth, in_triple
            i, in_triple = end + 3, None
            continue
        ch = line[i]
        if ch == "#":
            break
        if line.startswith(('"""', "'''"), i):
            in_triple, i = line[i : i + 3], i + 3
            continue
        if ch in "\"'":
            end = i + 1
            while end < len(line) and line[end] != ch:
                end += 2 if line[end] == "\\" else 1
            i = end + 1
            continue
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        i += 1
    return depth, in_triple


def reindent(lines: list[str]) -> list[str]:
    """Re-indent statements to 4 spaces per block depth, whatever widths the author used.

    The depth of a line comes from comparing its width with a stack of the widths of the
    enclosing blocks, so 2-, 3- and mixed-width blocks all map to 4 spaces per level. Lines
    inside brackets, triple-quoted strings or after a backslash keep their offset relative to
    the statement they continue.
    """
    out = []
    stack = [0]  # widths of the open blocks
    depth, in_triple, continued = 0, None, False
    shift = 0  # change applied to the statement's first line, reused for its continuation lines
    for line in lines:
        width = len(line) - len(line.lstrip(" "))
        if depth or in_triple or continued:
            out.append(" " * max(0, width + shift) + line.lstrip(" ") if not in_triple else line)
        else:
            if width > stack[-1]:
                stack.append(width)
            else:
                while len(stack) > 1 and width < stack[-1]:
                    stack.pop()
                if width > stack[-1]:  # dedent to a width never opened: treat as that block
                    stack.append(width)
            level = len(stack) - 1
            shift = 4 * level - width
            out.append(" " * (4 * level) + line.lstrip(" "))
        code = line.rstrip()
        depth, in_triple = _open_brackets_after(code, depth, in_triple)
        continued = code.endswith("\\") and not in_triple
    return out


def _fix_py2_prints(code: str) -> str:
    fixed = []
    for line in code.split("\n"):
        match = _PY2_PRINT.match(line)
        if match and not line.strip().startswith("print("):
            indent, args = match.group(1), (match.group(2) or "").strip()
            if args.startswith(">>"):
                fixed.append(line)
                continue
            end = ""
            if args.endswith(","):
                args, end = args[:-1].rstrip(), ', end=" "'
            fixed.append(f"{indent}print({args}{end})")
        else:
            fixed.append(line)
    return "\n".join(fixed)


_CLAUSE_OPENERS = {
    "elif": ("if", "elif"),
    "else": ("if", "elif", "for", "while", "try", "except"),
    "except": ("try", "except"),
    "finally": ("try", "except", "else"),
}


def _indent_flat_code(code: str) -> str:
    """Rebuild the indentation of code whose lines were all pushed to column 0.

    A best guess from the statements themselves: a line ending in `:` opens a block, `elif`,
    `else`, `except` and `finally` return to their opener's level, `def`/`class` start at the
    top (or in the enclosing class), `return` closes the function body it ends, and `break`,
    `continue`, `pass`, `raise` close the innermost block.
    """
    lines = code.split("\n")
    if any(line[:1].isspace() for line in lines):
        return code
    out: list[str] = []
    stack: list[tuple[str, int, int]] = []  # (opening keyword, its level, its line in out)
    level = 0
    defined: set[str] = set()  # top-level functions and classes seen so far
    for line in lines:
        match = re.match(r"[A-Za-z_]\w*", line)
        word = match.group(0) if match else ""
        # A call of something defined above on literal arguments is the script using it.
        calls = set(re.findall(r"([A-Za-z_]\w*)\s*\(\s*[-\d\[(\"'{]", line)) & defined
        if calls and word not in ("def", "class", "return"):
            stack, level = [], 0
        elif word in _CLAUSE_OPENERS:
            while stack and stack[-1][0] not in _CLAUSE_OPENERS[word]:
                stack.pop()
            level = stack.pop()[1] if stack else 0
        elif word == "class":
            stack, level = [], 0
        elif word == "def":
            while stack and stack[-1][0] != "class":
                stack.pop()
            level = stack[-1][1] + 1 if stack else 0
        if word in ("def", "class") and level == 0:
            defined.add(re.match(r"(?:def|class)\s+(\w+)", line + " x").group(1))
        out.append("    " * level + line)
        if line.rstrip().endswith(":"):
            stack.append((word, level, len(out) - 1))
            level += 1
        elif word == "return":
            defs = [n for n, (kw, _, _) in enumerate(stack) if kw == "def"]
            if defs:
                at = stack[defs[-1]][1]
                if level == at + 1:
                    del stack[defs[-1] :]
                    level = at
                else:  # openers stay on the stack: an `else:` may still follow
                    level = at + 1
        elif word in ("break", "continue", "pass", "raise") and stack:
            level = stack[-1][1]
    return "\n".join(out)


def clean_code(raw_lines: list[str], repaired: Counter | None = None) -> str | None:
    """Clean one example's code; None when it cannot be made to compile."""
    repaired = repaired if repaired is not None else Counter()
    lines = [_expand_tabs(line) for line in _strip_comment_lines(raw_lines)]
    if not lines:
        return ""
    base = min(len(line) - len(line.lstrip(" ")) for line in lines)
    code = "\n".join(reindent([line[base:] for line in lines]))
    if compiles(code):
        return code
    for name, repair in (("python2_print", _fix_py2_prints), ("lost_indentation", _indent_flat_code)):
        candidate = repair(code)
        if candidate != code and compiles(candidate):
            repaired[name] += 1
            return candidate
    both = _indent_flat_code(_fix_py2_prints(code))
    if both != code and compiles(both):
        repaired["python2_print"] += 1
        return both
    return None


# ----------------------------------------------------------------------------- reading


def read_text(path: str | Path) -> str:
    """The corpus text, or an E2PError saying in one line why it cannot be read."""
    path = Path(path)
    if not path.exists():
        raise E2PError(
            f"corpus file not found: {path}. The shipped model's corpus is english_python_data.txt of the "
            f"repository senthilva/END (folder englishtopython, commit {CORPUS_COMMIT[:12]}; the README's "
            f"'The corpus' says how to get it): pass its path with --data"
        )
    if not path.is_file():
        raise E2PError(f"corpus path is not a file: {path}")
    data = path.read_bytes()
    if not data.strip():
        raise E2PError(f"corpus file is empty: {path}")
    if b"\x00" in data:
        raise E2PError(f"corpus file looks binary (it holds NUL bytes): {path}")
    try:
        return data.decode("utf-8-sig")  # a byte-order mark is not part of the first heading
    except UnicodeDecodeError as err:
        raise E2PError(f"corpus file is not UTF-8 text (byte {err.start}): {path}") from None


def parse_examples(text: str) -> tuple[int, list[tuple[int, str, list[str]]]]:
    """(number of headings, [(line, prompt, raw code lines)]) in file order."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    blocks = _heading_blocks(lines)
    raw = []
    for n, (start, end) in enumerate(blocks):
        stop = blocks[n + 1][0] if n + 1 < len(blocks) else len(lines)
        texts = [_comment_text(line.lstrip()) for line in lines[start:end]]
        prompt = " ".join(t for t in texts if t)
        prompt = re.sub(r"\s+", " ", _NUMBERED.sub("", prompt)).strip()
        raw.append((start + 1, prompt, lines[end:stop]))
    return len(blocks), raw


def read_corpus(path: str | Path) -> Corpus:
    text = read_text(path)
    return corpus_from_text(text, source=str(path))


def corpus_from_text(text: str, source: str = "<text>") -> Corpus:
    headings, raw = parse_examples(text)
    if not headings:
        raise E2PError(f"no instruction headings found in {source}: is this the e2p corpus format?")
    dropped, repaired = Counter(), Counter()
    kept: list[Example] = []
    for line, prompt, code_lines in raw:
        if not prompt_key(prompt):
            dropped["empty_prompt"] += 1
            continue
        code = clean_code(code_lines, repaired)
        if code is None:
            dropped["syntax_error"] += 1
        elif not code.strip():
            dropped["empty_code"] += 1
        else:
            kept.append(Example(prompt=prompt, code=code, line=line))
    return _deduplicated(headings, kept, dropped, repaired)


def _deduplicated(
    headings: int, kept: list[Example], dropped: Counter, repaired: Counter, rule: str = "eval"
) -> Corpus:
    """One copy of each exact duplicate: same prompt key and same code AST."""
    unique, seen = [], set()
    for ex in kept:
        ident = (ex.key, ast.dump(ast.parse(ex.code)))
        if ident not in seen:
            seen.add(ident)
            unique.append(ex)
    return Corpus(
        headings=headings,
        examples=unique,
        kept_before_dedup=len(kept),
        duplicates=len(kept) - len(unique),
        dropped=dropped,
        repaired=repaired,
        rule=rule,
    )


def read_jsonl(path: str | Path, rule: str = "eval") -> Corpus:
    """A corpus of `{"prompt": ..., "code": ...}` lines, cleaned and de-duplicated the same way, split
    by `rule` (SPLIT_RULES)."""
    text = read_text(path)
    dropped, repaired, kept = Counter(), Counter(), []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            prompt, code = str(row["prompt"]), str(row["code"])
        except (json.JSONDecodeError, KeyError, TypeError):
            dropped["bad_json_line"] += 1
            continue
        clean = clean_code(code.split("\n"), repaired)
        if clean is None:
            dropped["syntax_error"] += 1
        elif not clean.strip() or not prompt_key(prompt):
            dropped["empty"] += 1
        else:
            kept.append(Example(prompt=prompt.strip(), code=clean, line=n))
    return _deduplicated(len(kept) + sum(dropped.values()), kept, dropped, repaired, rule)


def load_corpus(path: str | Path, rule: str = "eval") -> Corpus:
    """Read either format: `.jsonl` files as JSON lines, anything else as the capstone text; split by
    `rule` (SPLIT_RULES: "conala" for CoNaLa's train file, as the conala preset says)."""
    if rule not in SPLIT_RULES:
        raise E2PError(f"unknown split rule {rule!r}: choose one of {', '.join(SPLIT_RULES)}")
    if str(path).endswith(".jsonl"):
        return read_jsonl(path, rule)
    corpus = read_corpus(path)
    corpus.rule = rule
    return corpus
