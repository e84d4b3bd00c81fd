"""Evaluate systems side by side on a split, with EVAL.md's metrics."""

from __future__ import annotations

from dataclasses import dataclass

from .corpus import Example
from .decoding import DecodeSettings
from .metrics import EvalReport, ReferenceProfile, evaluate, profile_references
from .retrieval import Retriever

METRICS = ("bleu", "parse_rate", "exact_match", "exec_match", "runs_rate")


@dataclass
class SystemResult:
    name: str
    codes: list[str]
    report: EvalReport
    settings: str


def model_codes(generator, examples: list[Example], settings: DecodeSettings, rerank: str,
                pool: int = 0, progress: bool = False, fallback: bool = True, edit: bool = True) -> list[str]:
    from tqdm import tqdm

    out = []
    for ex in tqdm(examples, desc="generating", disable=not progress, leave=False, mininterval=5):
        out.append(generator.generate(ex.prompt, settings, rerank=rerank, attention=False, pool=pool,
                                      fallback=fallback, edit=edit).code)
    return out


def describe(settings: DecodeSettings, rerank: str, pool: int = 0) -> str:
    """The decoding settings in a few words, for tables and reports."""
    search = f"beam {settings.beam_size}" if settings.strategy == "beam" else settings.strategy
    if settings.strategy == "sample":
        search += f" T={settings.temperature} top-p={settings.top_p}"
    return f"{search}, rerank={rerank}" + (f", pool={pool}" if pool else "")


def evaluate_systems(examples: list[Example], systems: dict[str, tuple[list[str], str]],
                     profiles: list[ReferenceProfile] | None = None) -> list[SystemResult]:
    """`systems` maps a name to (generated codes, settings text); references run once for all."""
    refs = [ex.code for ex in examples]
    profiles = profiles if profiles is not None else profile_references(refs)
    return [SystemResult(name, codes, evaluate(codes, refs, profiles), settings)
            for name, (codes, settings) in systems.items()]


def retrieval_codes(train: list[Example], examples: list[Example]) -> list[str]:
    retriever = Retriever(train)
    return [retriever.baseline(ex.prompt) for ex in examples]


def table(results: list[SystemResult]) -> str:
    """A plain-text table: one row per system, percentages for rates."""
    if not results:
        return "(no systems)"
    r0 = results[0].report
    head = (f"{'system':<14} {'BLEU':>6} {'parse':>7} {'exact':>7} "
            f"{'exec match':>11} {'runs':>7}   n={r0.n}, executable={r0.n_executable}, runnable={r0.n_runs}")
    lines = [head, "-" * len(head)]
    for res in results:
        r = res.report
        lines.append(f"{res.name:<14} {r.bleu:6.1f} {100 * r.parse_rate:6.1f}% {100 * r.exact_match:6.1f}% "
                     f"{100 * r.exec_match:10.1f}% {100 * r.runs_rate:6.1f}%   {res.settings}")
    return "\n".join(lines)


def as_json(results: list[SystemResult]) -> dict:
    return {res.name: dict(res.report.to_dict(), settings=res.settings) for res in results}
