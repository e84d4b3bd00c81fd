"""What the Samples view shows: which decoding of samples.json to compare, which samples the
filters keep, the pages, the summary line and each sample's label and status.

Pure: no Streamlit, no torch, no imports from the package.
"""

from __future__ import annotations

PAGE_SIZE = 10  # samples per gallery page

# Which decoding of samples.json to compare, and the metrics key it is scored under.
# samples.json key -> metrics.json system name; "ranker": the learned ranker over retrieved programs
SYSTEMS = {
    "default": "model",
    "ranker": "ranker",
    "own": "model-own",
    "greedy": "model-greedy",
    "beam": "model-beam",
    "retrieval": "retrieval",
}
STATUS_FILTERS = (
    "all",
    "passed",  # exact match or same behaviour when run
    "failed",
    "parses",
    "does not parse",
    "exact match",
    "exec match",
    "runs",
    "does not run",
)


def sample_code(sample: dict, decoding: str) -> str:
    return sample.get(decoding) or ""


def sample_metrics(sample: dict, decoding: str) -> dict:
    return (sample.get("metrics") or {}).get(SYSTEMS.get(decoding, decoding)) or {}


def passed(metrics: dict) -> bool:
    return bool(metrics.get("exact") or metrics.get("exec_match"))


def _keeps(metrics: dict, status: str) -> bool:
    checks = {
        "all": lambda m: True,
        "passed": passed,
        "failed": lambda m: not passed(m),
        "parses": lambda m: bool(m.get("parses")),
        "does not parse": lambda m: not m.get("parses"),
        "exact match": lambda m: bool(m.get("exact")),
        "exec match": lambda m: bool(m.get("exec_match")),
        "runs": lambda m: m.get("runs") is True,
        "does not run": lambda m: m.get("runs") is False,
    }
    if status not in checks:
        raise ValueError(f"status filter must be one of {', '.join(checks)}, got {status!r}")
    return checks[status](metrics)


def filter_samples(
    samples: list[dict], decoding: str = "default", status: str = "all", query: str = "", min_bleu: float = 0.0
) -> list[tuple[int, dict]]:
    """(index, sample) pairs kept by the filters; `query` matches prompt, reference or the
    generated code (case-insensitive, every word must match)."""
    words = (query or "").lower().split()
    kept = []
    for i, sample in enumerate(samples):
        metrics = sample_metrics(sample, decoding)
        if not _keeps(metrics, status):
            continue
        if (metrics.get("bleu") or 0.0) < min_bleu:
            continue
        text = " ".join((sample.get("prompt", ""), sample.get("reference", ""), sample_code(sample, decoding))).lower()
        if all(w in text for w in words):
            kept.append((i, sample))
    return kept


def page_count(n: int, size: int = PAGE_SIZE) -> int:
    return max(1, -(-n // size))


def page(items: list, number: int, size: int = PAGE_SIZE) -> list:
    """Items of 1-based page `number` (clamped to the pages there are)."""
    number = max(1, min(int(number), page_count(len(items), size)))
    return items[(number - 1) * size : number * size]


def gallery_summary(samples: list[dict], decoding: str) -> dict[str, float]:
    """Share of samples that parse / pass, and mean BLEU, for one decoding."""
    ms = [sample_metrics(s, decoding) for s in samples]
    n = len(ms) or 1
    return {
        "samples": len(ms),
        "mean BLEU": sum(m.get("bleu") or 0.0 for m in ms) / n,
        "parses": sum(bool(m.get("parses")) for m in ms) / n,
        "passed": sum(passed(m) for m in ms) / n,
    }


def sample_status(sample: dict, decoding: str) -> str:
    """ "passed" (exact or exec match), "parses" (but did not pass) or "fails" (does not parse)."""
    m = sample_metrics(sample, decoding)
    return "passed" if passed(m) else "parses" if m.get("parses") else "fails"


def sample_label(sample: dict, decoding: str) -> str:
    m = sample_metrics(sample, decoding)
    bleu = m.get("bleu")
    score = f" — BLEU {bleu:.1f}" if isinstance(bleu, (int, float)) else ""
    prompt = " ".join(sample.get("prompt", "").split())
    return f"{prompt[:100]}{'…' if len(prompt) > 100 else ''}{score}"


def metric_line(metrics: dict) -> str:
    def yes(key):
        value = metrics.get(key)
        return "—" if value is None else "yes" if value else "no"

    bleu = metrics.get("bleu")
    bleu = f"{bleu:.1f}" if isinstance(bleu, (int, float)) else "—"
    return (
        f"BLEU {bleu} · parses {yes('parses')} · exact {yes('exact')} · "
        f"runs {yes('runs')} · exec match {yes('exec_match')}"
    )
