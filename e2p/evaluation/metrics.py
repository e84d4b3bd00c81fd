"""The project's quality figures, exactly as ../shared/EVAL.md defines them."""

from __future__ import annotations

import ast
import io
import math
import re
import tokenize
from collections import Counter
from dataclasses import asdict, dataclass, field

import sacrebleu

from e2p.sandbox.runner import run_many, sandbox_status
from e2p.syntax import parse_tree, parses

_DROPPED = {tokenize.ENCODING, tokenize.NL, tokenize.COMMENT, tokenize.ENDMARKER}
_RENAMED = {tokenize.NEWLINE: "<nl>", tokenize.INDENT: "<indent>", tokenize.DEDENT: "<dedent>"}
_FALLBACK = re.compile(r"\w+|[^\w\s]")


def bleu_tokens(code: str) -> list[str]:
    """The tokens EVAL.md's BLEU compares: Python tokens of `code`, layout tokens renamed; a regex
    split if tokenize rejects it. Not the model's vocabulary (that is `tokenizers.code_tokens`)."""
    try:
        tokens = []
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type in _DROPPED:
                continue
            # Python 3.11 reports the space before a stray `'` or `$` as an ERRORTOKEN of its
            # own; BLEU splits on whitespace, so dropping it changes no score.
            if tok.type == tokenize.ERRORTOKEN and tok.string.isspace():
                continue
            tokens.append(_RENAMED.get(tok.type, tok.string))
        return tokens
    except Exception:  # TokenError, IndentationError, SyntaxError, ...
        return _FALLBACK.findall(code)


def _joined(code: str) -> str:
    return " ".join(bleu_tokens(code))


def bleu(hyps: list[str], refs: list[str]) -> float:
    """Corpus BLEU (0-100) over code tokens."""
    _check_same_length(hyps, refs)
    if not hyps:
        return 0.0
    return sacrebleu.corpus_bleu([_joined(h) for h in hyps], [[_joined(r) for r in refs]], tokenize="none").score


def sentence_bleu(hyp: str, ref: str) -> float:
    """BLEU (0-100) of one example, for per-sample figures; the headline figure is `bleu`."""
    return _sentence_bleu_joined(_joined(hyp), _joined(ref))


def _sentence_bleu_joined(hyp: str, ref: str) -> float:
    return sacrebleu.sentence_bleu(hyp, [ref], tokenize="none").score


# ----------------------------------------------------------------------------- CoNaLa's BLEU (EVAL.md)

_CONALA_SPLIT = re.compile(r"([^A-Za-z0-9_])")
_CONALA_CAMEL = re.compile(r"([a-z])([A-Z])")


def conala_tokens(code: str) -> list[str]:
    """CoNaLa's tokens of a snippet: a space around every character outside [A-Za-z0-9_], `aB` split
    into `a B`, whitespace collapsed, and both quote characters mapped to a backtick."""
    text = _CONALA_SPLIT.sub(r" \1 ", code)
    text = _CONALA_CAMEL.sub(r"\1 \2", text)
    text = re.sub(r"\s+", " ", text).replace('"', "`").replace("'", "`")
    return [tok for tok in text.split(" ") if tok]


def _ngrams(tokens: list[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def conala_bleu(hyps: list[str], refs: list[str], max_order: int = 4) -> float:
    """CoNaLa's corpus BLEU (0-100) over `conala_tokens`: one reference a hypothesis, n-gram precisions
    clipped by the reference and pooled over the corpus for n = 1..4, their geometric mean (0 where
    one of them is 0: no smoothing), times the brevity penalty exp(1 - r/c) where the hypotheses are
    shorter in all (c < r; c, r: total hypothesis and reference lengths)."""
    _check_same_length(hyps, refs)
    matches, possible = [0] * max_order, [0] * max_order
    c = r = 0
    for hyp, ref in zip(hyps, refs):
        h, t = conala_tokens(hyp), conala_tokens(ref)
        c, r = c + len(h), r + len(t)
        for n in range(1, max_order + 1):
            ref_counts = _ngrams(t, n)
            matches[n - 1] += sum(min(k, ref_counts[g]) for g, k in _ngrams(h, n).items())
            possible[n - 1] += max(0, len(h) - n + 1)
    if c == 0 or not all(possible) or not all(matches):
        return 0.0
    log_mean = sum(math.log(m / p) for m, p in zip(matches, possible)) / max_order
    penalty = 1.0 if c >= r else math.exp(1 - r / c)
    return 100 * penalty * math.exp(log_mean)


def exact_match(hyp: str, ref: str) -> bool:
    """Same AST (so layout, comments and quote style do not matter)."""
    hyp_tree, ref_tree = parse_tree(hyp), parse_tree(ref)
    if hyp_tree is None or ref_tree is None:
        return False
    try:
        return ast.dump(hyp_tree) == ast.dump(ref_tree)
    except RecursionError:  # absurdly deep tree
        return False


def normalise_stdout(s: str) -> str:
    """Right-strip every line and drop trailing blank lines: "a \\r\\nb\\n\\n" -> "a\\nb".

    Leading blank lines are kept; lines are split on "\\n" only.
    """
    lines = [line.rstrip() for line in s.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


@dataclass(frozen=True)
class ReferenceProfile:
    # None where nothing could be run (no sandbox)
    runs: bool | None  # exited 0 on both runs (a reference that only sometimes crashes does not count)
    executable: bool | None  # runs, and printed the same non-empty normalised stdout both times
    stdout: str  # normalised stdout of the first run


def profile_references(refs: list[str], timeout: float = 5.0, workers: int = 2) -> list[ReferenceProfile]:
    """Run every reference twice to learn which ones run and which print deterministically.
    Where the sandbox cannot run programs, nothing runs and every profile says so (None)."""
    if not sandbox_status().available:
        return [ReferenceProfile(runs=None, executable=None, stdout="") for _ in refs]
    first = run_many(refs, timeout, workers)
    # All first runs before any second one, so time-dependent output has time to change.
    again = [i for i, result in enumerate(first) if result.ok]
    second = dict(zip(again, run_many([refs[i] for i in again], timeout, workers)))
    profiles = []
    for i, result in enumerate(first):
        stdout = normalise_stdout(result.stdout)
        rerun = second.get(i)
        runs = rerun is not None and rerun.ok
        executable = runs and stdout != "" and normalise_stdout(rerun.stdout) == stdout
        profiles.append(ReferenceProfile(runs=runs, executable=executable, stdout=stdout))
    return profiles


def not_run(n: int) -> list[ReferenceProfile]:
    """The profiles of `n` references that are not run (snippets: running them says nothing), so that
    runs and exec match are reported unavailable."""
    return [ReferenceProfile(runs=None, executable=None, stdout="") for _ in range(n)]


@dataclass
class EvalReport:
    n: int
    bleu: float  # 0-100
    parse_rate: float  # rates are fractions in [0, 1]
    exact_match: float
    exec_match: float | None  # over the n_executable examples; None where nothing could run
    n_executable: int
    runs_rate: float | None  # over the n_runs examples whose reference runs; None where nothing could run
    n_runs: int
    # keys: bleu (sentence), parses, exact, runs (None: reference does not run),
    # exec_match (None: reference not executable)
    per_example: list[dict] = field(default_factory=list, repr=False)
    runs_unavailable: str | None = None  # why runs and exec match are not measured
    conala_bleu: float | None = None  # CoNaLa's BLEU (0-100), where asked for (a CoNaLa artifact)

    def to_dict(self, per_example: bool = False) -> dict:
        d = asdict(self)
        if not per_example:
            del d["per_example"]
        if d["conala_bleu"] is None:  # reports of the main corpus keep their keys
            del d["conala_bleu"]
        return d


def evaluate(
    hyps: list[str],
    refs: list[str],
    profiles: list[ReferenceProfile] | None = None,
    timeout: float = 5.0,
    workers: int = 2,
    conala: bool = False,
) -> EvalReport:
    """All metrics for one generation per reference; `profiles` saves re-running references. `conala`:
    CoNaLa's BLEU too (`conala_bleu`), beside sacrebleu's."""
    _check_same_length(hyps, refs)
    if profiles is None:
        profiles = profile_references(refs, timeout, workers)
    elif len(profiles) != len(refs):
        raise ValueError(f"{len(profiles)} reference profiles for {len(refs)} references")

    parsed = [parses(h) for h in hyps]
    status = sandbox_status()
    unavailable = None if status.available else status.reason
    if unavailable is None and any(p.runs is None for p in profiles):
        unavailable = "the references were not run"
    # A hypothesis that does not parse cannot run, and one whose reference does not run
    # counts for nothing: only the rest go to the sandbox.
    to_run = [i for i, profile in enumerate(profiles) if parsed[i] and profile.runs] if unavailable is None else []
    results = dict(zip(to_run, run_many([hyps[i] for i in to_run], timeout, workers)))

    per_example = []
    for i, (hyp, ref, profile) in enumerate(zip(hyps, refs, profiles)):
        result = results.get(i)
        ran = result is not None and result.ok
        matched = ran and normalise_stdout(result.stdout) == profile.stdout
        per_example.append(
            {
                "bleu": sentence_bleu(hyp, ref),
                "parses": parsed[i],
                "exact": exact_match(hyp, ref),
                "runs": ran if profile.runs else None,
                "exec_match": matched if profile.executable else None,
            }
        )

    exec_rate, n_executable = _share(e["exec_match"] for e in per_example)
    runs_rate, n_runs = _share(e["runs"] for e in per_example)
    if unavailable is not None:
        exec_rate = runs_rate = None
    return EvalReport(
        n=len(hyps),
        bleu=bleu(hyps, refs),
        parse_rate=_share(e["parses"] for e in per_example)[0],
        exact_match=_share(e["exact"] for e in per_example)[0],
        exec_match=exec_rate,
        n_executable=n_executable,
        runs_rate=runs_rate,
        n_runs=n_runs,
        per_example=per_example,
        runs_unavailable=unavailable,
        conala_bleu=conala_bleu(hyps, refs) if conala else None,
    )


def _share(values) -> tuple[float, int]:
    """(share of True among the values that are not None, how many those are)."""
    counted = [v for v in values if v is not None]
    return (sum(counted) / len(counted) if counted else 0.0), len(counted)


def _check_same_length(hyps: list[str], refs: list[str]) -> None:
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses for {len(refs)} references")
