"""Evaluate systems side by side on a split, with EVAL.md's metrics; and the valid-split decoding
metric that picks the best checkpoint during training (`bleu_metric`)."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..answer.policy import Request
from ..data.corpus import Example
from ..data.placeholders import restore_code
from ..data.retrieval import Retriever
from ..data.tokenizers import decode_code
from ..data.vocab import Vocab
from ..model.decoding import DecodeSettings, describe, greedy_batch  # noqa: F401  (describe: re-exported)
from ..model.origins import origin_split
from ..syntax import parse_tree
from .metrics import EvalReport, ReferenceProfile, bleu, conala_bleu, evaluate, profile_references

if TYPE_CHECKING:  # training imports torch's trainer: only its types are needed here
    from ..model.training import Prepared, TrainConfig

METRICS = ("bleu", "parse_rate", "exact_match", "exec_match", "runs_rate")


@dataclass
class SystemResult:
    name: str
    codes: list[str]
    report: EvalReport
    settings: str
    train_copies: float | None = None  # share of answers whose syntax tree equals a train program's
    origins: dict[str, float] | None = None  # share of generated tokens by origin (e2p.model.origins)


@dataclass
class Answers:
    """What a system answered on a split: the codes, and where the model wrote them, the origin of
    each of their tokens (None per answer where the answer is not the model's tokens)."""

    codes: list[str]
    origins: list | None = None


def system_label(ask: Request) -> str:
    """A system's settings column in the evaluation tables: the decoding (`describe`), and whether
    it keeps the fallback to a train program and the edited programs."""
    return (
        describe(ask.settings, ask.rerank, ask.pool)
        + ("" if ask.fallback else ", no fallback")
        + ("" if ask.edit else ", no edits")
    )


def model_answers(generator, examples: list[Example], ask: Request, progress: bool = False) -> Answers:
    """What `generator` answers to each example's prompt, asked with `ask`."""
    from tqdm import tqdm

    codes, origins = [], []
    for ex in tqdm(examples, desc="generating", disable=not progress, leave=False, mininterval=5):
        result = generator.generate(ex.prompt, attention=False, time_limit=False, **ask.kwargs())
        codes.append(result.code)
        origins.append(result.origins if result.origin == "model" else None)
    return Answers(codes, origins)


def tree_key(code: str) -> str | None:
    """The syntax tree without positions, comments or formatting: equal for the same program."""
    tree = parse_tree(code)
    return None if tree is None else ast.dump(tree, annotate_fields=False)


def train_copy_rate(codes: list[str], train: list[Example]) -> float:
    """The share of `codes` whose syntax tree equals the tree of some train program."""
    known = {tree_key(ex.code) for ex in train} - {None}
    return sum(tree_key(code) in known for code in codes) / max(len(codes), 1)


def evaluate_systems(
    examples: list[Example],
    systems: dict[str, tuple[list[str] | Answers, str]],
    profiles: list[ReferenceProfile] | None = None,
    train: list[Example] | None = None,
    conala: bool = False,
) -> list[SystemResult]:
    """`systems` maps a name to (generated codes or Answers, settings text); references run once
    for all. With `train`, each system's share of answers that are a train program is measured;
    with `conala`, CoNaLa's BLEU beside sacrebleu's."""
    refs = [ex.code for ex in examples]
    profiles = profiles if profiles is not None else profile_references(refs)
    out = []
    for name, (answers, settings) in systems.items():
        if not isinstance(answers, Answers):
            answers = Answers(list(answers))
        out.append(
            SystemResult(
                name,
                answers.codes,
                evaluate(answers.codes, refs, profiles, conala=conala),
                settings,
                train_copies=None if train is None else train_copy_rate(answers.codes, train),
                origins=origin_split(answers.origins) if answers.origins else None,
            )
        )
    return out


def retrieval_codes(train: list[Example], examples: list[Example]) -> list[str]:
    retriever = Retriever(train)
    return [retriever.baseline(ex.prompt) for ex in examples]


UNAVAILABLE = "unavailable"  # a rate that was not measured (programs could not be run)
RUN_METRICS = ("exec_match", "runs_rate")  # None where programs could not be run


def _percent(rate: float | None, width: int) -> str:
    return f"{UNAVAILABLE:>{width + 1}}" if rate is None else f"{100 * rate:{width}.1f}%"


def table(results: list[SystemResult]) -> str:
    """A plain-text table: one row per system, percentages for rates ("unavailable" where the
    programs could not be run), then why runs were not measured, if they were not."""
    if not results:
        return "(no systems)"
    r0 = results[0].report
    conala = any(res.report.conala_bleu is not None for res in results)  # CoNaLa's BLEU first, where measured
    head = (
        (f"{'system':<14} {'CoNaLa BLEU':>11} " if conala else f"{'system':<14} ")
        + f"{'BLEU':>6} {'parse':>7} {'exact':>7} {'exec match':>11} {'runs':>11} "
        f"{'train copy':>11}   n={r0.n}, executable={r0.n_executable}, runnable={r0.n_runs}"
    )
    lines = [head, "-" * len(head)]
    for res in results:
        r = res.report
        copies = f"{'-':>11}" if res.train_copies is None else _percent(res.train_copies, 10)
        first = f"{res.name:<14} " + (
            (f"{'-':>11} " if r.conala_bleu is None else f"{r.conala_bleu:11.1f} ") if conala else ""
        )
        lines.append(
            f"{first}{r.bleu:6.1f} {_percent(r.parse_rate, 6)} {_percent(r.exact_match, 6)} "
            f"{_percent(r.exec_match, 10)} {_percent(r.runs_rate, 10)} {copies}   {res.settings}"
        )
    for res in results:
        if res.origins:
            lines.append(
                f"{res.name}: tokens " + ", ".join(f"{name} {100 * share:.1f}%" for name, share in res.origins.items())
            )
    reasons = sorted(
        {
            getattr(res.report, "runs_unavailable", None) or ""
            for res in results
            if res.report.exec_match is None or res.report.runs_rate is None
        }
        - {""}
    )
    lines += [f"runs and exec match unavailable: {reason}" for reason in reasons]
    return "\n".join(lines)


def as_json(results: list[SystemResult]) -> dict:
    """Each system's report and settings; a run metric that was not measured is "unavailable"."""
    out = {}
    for res in results:
        d = dict(res.report.to_dict(), settings=res.settings, train_copies=res.train_copies, token_origins=res.origins)
        out[res.name] = {k: UNAVAILABLE if k in RUN_METRICS and v is None else v for k, v in d.items()}
    return out


def bleu_metric(prep: Prepared, cfg: TrainConfig, batch: int = 32, max_len: int = 160):
    """The valid-split metric that picks the best checkpoint: a function of the model giving the BLEU
    of its batched greedy output on `prep.valid` (CoNaLa's BLEU where the corpus is split by CoNaLa's
    rule). Greedy output is capped at `max_len` tokens (95% of the code is shorter): an early model that
    never stops would otherwise spend most of the epoch here."""
    score = conala_bleu if cfg.split == "conala" else bleu
    sources = [prep.featurizer.source(ex.prompt, exclude_key=ex.key) for ex in prep.valid]
    src_ids = [prep.src_vocab.encode(s.tokens) for s in sources]
    refs = [ex.code for ex in prep.valid]

    def metric(model) -> float:
        hyps = []
        for start in range(0, len(src_ids), batch):
            outs = greedy_batch(
                model,
                src_ids[start : start + batch],
                min(max_len, cfg.max_tgt),
                Vocab.bos_id,
                Vocab.eos_id,
                Vocab.pad_id,
                unk_id=Vocab.unk_id,
            )
            for out, src in zip(outs, sources[start : start + batch]):
                hyps.append(decode_code(restore_code(prep.tgt_vocab.decode(out), src.slots)))
        model.train()
        return score(hyps, refs)

    return metric
