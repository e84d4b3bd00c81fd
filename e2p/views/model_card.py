"""What the Model view shows: the model card, the rule that picks the shipped answer, the
command that rebuilds the artifacts, and the test metrics as table rows and bars.

No Streamlit. Importing this module imports torch, through `e2p.model.decoding` (for `DecodeSettings`)
and `e2p.constants` (for the rebuild command).
"""

from __future__ import annotations

from ..answer.policy import Answer, Policy
from ..constants import REBUILD_COMMAND as REBUILD
from ..model.decoding import describe

METRIC_COLUMNS = (  # metrics.json key, table header
    ("bleu", "corpus BLEU"),
    ("parse_rate", "parses"),
    ("exact_match", "exact match"),
    ("exec_match", "exec match"),
    ("runs_rate", "runs"),
    ("n", "n"),
)


def _number(value) -> float | None:
    """A measured figure, or None (missing, or "unavailable" where programs could not be run)."""
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def metrics_rows(metrics: dict | None) -> list[dict]:
    """Rows of the test metrics table (one per system), rates as percentages; a figure that was
    not measured is None (see `unmeasured_note`)."""
    rows = []
    for system, values in (metrics or {}).items():
        row = {"system": system}
        for key, header in METRIC_COLUMNS:
            value = _number(values.get(key))
            if key in ("parse_rate", "exact_match", "exec_match", "runs_rate") and value is not None:
                value = round(100.0 * value, 1)
            elif key == "bleu" and value is not None:
                value = round(value, 1)
            row[header] = value
        if _number(values.get("conala_bleu")) is not None:  # a CoNaLa artifact: CoNaLa's own BLEU too
            row["CoNaLa BLEU"] = round(values["conala_bleu"], 1)
        row["settings"] = values.get("settings", "")
        rows.append(row)
    return rows


def metric_bars(metrics: dict | None) -> dict[str, dict[str, float | None]]:
    """BLEU, parse % and exec match % per system for `figures.metrics_bar` (None: not measured)."""
    bars = {}
    for system, values in (metrics or {}).items():
        parse, exec_match = _number(values.get("parse_rate")), _number(values.get("exec_match"))
        bars[system] = {
            "corpus BLEU": _number(values.get("bleu")),
            "parse %": None if parse is None else 100 * parse,
            "exec match %": None if exec_match is None else 100 * exec_match,
        }
    return bars


def unmeasured_note(metrics: dict | None) -> str | None:
    """One line where runs and exec match were not measured (programs could not be run)."""
    off = {
        system: values
        for system, values in (metrics or {}).items()
        if "unavailable" in (values.get("exec_match"), values.get("runs_rate"))
    }
    if not off:
        return None
    reasons = sorted({str(v.get("runs_unavailable")) for v in off.values() if v.get("runs_unavailable")})
    why = f" ({'; '.join(reasons)})" if reasons else ""
    return f"Runs and exec match are unavailable for {', '.join(off)}: programs were not run{why}."


def model_card(config: dict, manifest: dict, parameters: int, policy: Policy) -> list[tuple[str, str]]:
    """(field, value) rows describing the model: architecture, size, how it answers, training run."""
    model = config.get("model", {})
    feats = config.get("features", {})
    train = config.get("train", {})
    stats = manifest.get("corpus_stats") or {}
    splits = stats.get("splits") or {}
    rows = [
        ("architecture", "Transformer encoder-decoder, " f"{'pre' if model.get('pre_norm', True) else 'post'}-norm"),
        ("layers", f"{model.get('enc_layers', '?')} encoder, {model.get('dec_layers', '?')} decoder"),
        (
            "width",
            f"d_model {model.get('d_model', '?')}, {model.get('n_heads', '?')} heads, "
            f"feed-forward {model.get('d_ff', '?')}",
        ),
        ("vocabularies", f"English {model.get('src_vocab', '?')}, code {model.get('tgt_vocab', '?')}"),
        ("parameters", f"{parameters:,}"),
        (
            "inputs",
            ", ".join(
                x
                for x in (
                    "copy placeholders for numbers, strings and names" if feats.get("copy") else "",
                    "nearest training example appended (retrieve and edit)" if feats.get("retrieval") else "",
                )
                if x
            )
            or "prompt only",
        ),
        ("answer", answer_rule(policy.default) + ("" if policy.runs else "; snippets, never run")),
        ("lengths", f"source ≤ {feats.get('max_src', '?')} tokens, " f"code ≤ {feats.get('max_tgt', '?')}"),
        (
            "training",
            f"{manifest.get('epochs', '?')} epochs (best {manifest.get('best_epoch', '?')}), "
            f"{manifest.get('training_seconds', '?')} s, dropout {model.get('dropout', '?')}, "
            f"lr {train.get('lr', '?')}",
        ),
        (
            "data",
            (
                f"{splits.get('train', '?')} train / {splits.get('dev', '?')} dev examples (CoNaLa; its test "
                "split is measured from outside the project)"
                if "dev" in splits
                else f"{splits.get('train', '?')} train / {splits.get('valid', '?')} valid / "
                f"{splits.get('test', '?')} test examples"
            ),
        ),
        *([("licence", str(manifest["licence"]))] if manifest.get("licence") else []),
        ("corpus sha256", str(manifest.get("corpus_sha256", "?"))[:16] + "…"),
        ("commit", str(manifest.get("commit") or "unknown")),
        ("created", str(manifest.get("created") or "unknown")),
    ]
    return rows


def answer_rule(answer: Answer) -> str:
    """How an answer of the policy (its default) picks the code it shows, in one line."""
    text = describe(answer.decoding, answer.rerank, answer.pool)
    if answer.rerank == "ranker":
        text += (
            f" — the model's output and the {answer.pool} nearest training programs (and those with the "
            "prompt's values put in), ordered by a ranker fitted on the train split; the first that parses "
            "and runs cleanly wins"
        )
    elif not answer.pool:
        text += " — the model's own code" + ("" if answer.fallback else ", no fallback to a training program")
    return text


def rebuild_command() -> str:
    return REBUILD
