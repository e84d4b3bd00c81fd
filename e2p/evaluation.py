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
    if settings.syntax_guard:
        search += " + syntax guard"
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
    head = (f"{'system':<14} {'BLEU':>6} {'parse':>7} {'exact':>7} "
            f"{'exec match':>11} {'runs':>11}   n={r0.n}, executable={r0.n_executable}, runnable={r0.n_runs}")
    lines = [head, "-" * len(head)]
    for res in results:
        r = res.report
        lines.append(f"{res.name:<14} {r.bleu:6.1f} {_percent(r.parse_rate, 6)} {_percent(r.exact_match, 6)} "
                     f"{_percent(r.exec_match, 10)} {_percent(r.runs_rate, 10)}   {res.settings}")
    reasons = sorted({getattr(res.report, "runs_unavailable", None) or "" for res in results
                      if res.report.exec_match is None or res.report.runs_rate is None} - {""})
    lines += [f"runs and exec match unavailable: {reason}" for reason in reasons]
    return "\n".join(lines)


def as_json(results: list[SystemResult]) -> dict:
    """Each system's report and settings; a run metric that was not measured is "unavailable"."""
    out = {}
    for res in results:
        d = dict(res.report.to_dict(), settings=res.settings)
        out[res.name] = {k: UNAVAILABLE if k in RUN_METRICS and v is None else v for k, v in d.items()}
    return out
