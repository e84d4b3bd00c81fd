"""What the web app computes apart from the model: pure helpers, no Streamlit import.

The app (`streamlit_app.py`) only draws widgets; everything it shows that needs a decision —
which decoding settings a set of controls means, which attention matrix a picker selects, which
samples a filter keeps, what the JSON download holds — is decided here, where it is tested.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from .answer_policy import RUN_BUDGET_S
from .artifacts import REBUILD
from .constants import DEFAULT_RERANK
from .decoding import DecodeSettings, describe
from .errors import E2PError
from .features import CODE, SEP
from .figures import axis_labels
from .sandbox import NOT_RUN

ENV_FOLDER = "E2P_ARTIFACTS"  # environment variable naming the artifact folder
MAX_LEN_CAP = 256  # most output tokens the app lets a user ask for (bounds a request's work)
MAX_BEAM = 8
WINDOW = 40  # attention rows shown at once for long outputs
PAGE_SIZE = 10  # samples per gallery page

EXAMPLE_PROMPTS = (
    "write a python function to add two numbers",
    "write a program to reverse a string",
    "write a python function to check if a number is prime",
    "print the first 10 fibonacci numbers",
)

# Gallery: which decoding of samples.json to compare, and the metrics key it is scored under.
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
ATTENTION_KINDS = {
    "cross": "Cross-attention (code tokens × English tokens)",
    "decoder": "Decoder self-attention (code × code)",
    "encoder": "Encoder self-attention (English × English)",
}
METRIC_COLUMNS = (  # metrics.json key, table header
    ("bleu", "BLEU"),
    ("parse_rate", "parses"),
    ("exact_match", "exact match"),
    ("exec_match", "exec match"),
    ("runs_rate", "runs"),
    ("n", "n"),
)


def artifact_folder(app_dir: str | Path, environ=None) -> Path:
    """The folder named by $E2P_ARTIFACTS, else `artifacts` beside the app; relative to the app."""
    environ = os.environ if environ is None else environ
    folder = Path(environ.get(ENV_FOLDER) or "artifacts")
    return folder if folder.is_absolute() else Path(app_dir) / folder


def folder_stamp(folder: str | Path) -> float:
    """Changes when the artifacts are rebuilt (manifest mtime), so a cached model is reloaded."""
    try:
        return (Path(folder) / "manifest.json").stat().st_mtime
    except OSError:
        return 0.0


def read_optional_json(path: str | Path):
    """The parsed file, or None when it is missing or unreadable (optional artifact parts)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def prepare_prompt(text: str | None) -> str | None:
    """The prompt to generate from, or None when there is nothing to generate from."""
    text = (text or "").strip()
    return text or None


def build_settings(
    defaults: DecodeSettings,
    strategy: str,
    beam_size: int,
    temperature: float,
    top_p: float,
    max_len: int,
    model_max_len: int | None = None,
) -> DecodeSettings:
    """DecodeSettings for the app's controls, starting from the artifact's defaults.

    The length is capped (MAX_LEN_CAP and the model's own limit) so one request stays bounded.
    Raises DecodeSettingsError for values out of range.
    """
    cap = MAX_LEN_CAP if model_max_len is None else min(MAX_LEN_CAP, model_max_len)
    max_len = max(1, min(int(max_len), cap))
    changes = dict(strategy=strategy, max_len=max_len, min_len=min(defaults.min_len, max_len))
    if strategy == "beam":
        beam = max(1, min(int(beam_size), MAX_BEAM))
        changes.update(beam_size=beam, n_best=beam)
    elif strategy == "sample":
        changes.update(temperature=float(temperature), top_p=float(top_p), seed=None)
    return replace(defaults, **changes)


def describe_settings(settings: DecodeSettings | None) -> str:
    """The settings an answer was decoded with (`decoding.describe`), for the caption under it."""
    return "" if settings is None else describe(settings)


# ---------------------------------------------------------------- confidence view


_NO_SPACE_BEFORE = (")", "]", "}", ",", ":", ".", "(", "[")


def confidence_pieces(tokens: list[str]) -> list[str]:
    """Display text for each model code token, for `formatting.confidence_html`.

    Joined, the pieces read like the code: `<nl>` is a newline, the indentation of a line goes
    before its first token, `##x` continues an identifier, string tokens show their quotes.
    `<indent>` / `<dedent>` show as small marks (they are predictions that can be wrong too).
    """
    pieces: list[str] = []
    depth, line_start, prev, in_string = 0, True, "", False
    for tok in tokens:
        if in_string and not (tok.startswith("»") or tok in ("<nl>", "<indent>", "<dedent>", "<eos>")):
            pieces.append(tok)  # string pieces carry their own spaces
            continue
        in_string = False
        if tok == "<nl>":
            pieces.append("\n")
            line_start, prev = True, ""
            continue
        if tok in ("<indent>", "<dedent>"):
            depth = depth + 1 if tok == "<indent>" else max(0, depth - 1)
            pieces.append("⇥" if tok == "<indent>" else "⇤")
            continue
        if tok == "<eos>":
            pieces.append("⏎end")
            continue
        if tok.startswith("##") and len(tok) > 2:
            text, space = tok[2:], False
        elif tok.startswith("«") and len(tok) > 1:
            text, space, in_string = tok[1:], bool(prev) and prev not in "([{.", True
        elif tok.startswith("»") and len(tok) > 1:
            text, space = tok[1:], False
        else:
            text = tok
            space = bool(prev) and prev not in "([{." and tok not in _NO_SPACE_BEFORE
        if line_start:
            text, line_start = "    " * depth + text, False
        elif space:
            text = " " + text
        pieces.append(text)
        prev = text[-1:] if text else prev
    return pieces


# ---------------------------------------------------------------- attention


def attention_parts(result, kind: str) -> tuple[np.ndarray, list[str], list[str]]:
    """(maps [L, H, rows, cols], row tokens, column tokens) of one attention kind of a result.

    Rows are query positions, columns key positions: cross-attention rows are the predicted
    code tokens and columns the English source; decoder self-attention rows are the predicted
    tokens and columns the decoder input (<bos> + generated); encoder rows and columns are the
    source.
    """
    if kind not in ATTENTION_KINDS:
        raise ValueError(f"attention kind must be one of {', '.join(ATTENTION_KINDS)}, got {kind!r}")
    if not result.attention or kind not in result.attention:
        raise ValueError("this result holds no attention maps (generated with attention=False)")
    maps = np.asarray(result.attention[kind], dtype=float)
    rows, cols = {
        "encoder": (result.src_tokens, result.src_tokens),
        "decoder": (result.tgt_tokens, result.tgt_input_tokens),
        "cross": (result.tgt_tokens, result.src_tokens),
    }[kind]
    if maps.ndim != 4 or maps.shape[2] != len(rows) or maps.shape[3] != len(cols):
        raise ValueError(
            f"{kind} attention has shape {maps.shape} but {len(rows)} row and " f"{len(cols)} column tokens"
        )
    return maps, list(rows), list(cols)


ALL, MEAN = "all", "mean"  # picker choices: mean over every layer / over the heads of a layer


def layer_head(layer, head) -> tuple[int | None, int | None]:
    """Picker values to (layer, head) indices; None means averaged (a head needs a layer)."""
    layer = None if layer == ALL else int(layer)
    head = None if layer is None or head == MEAN else int(head)
    return layer, head


def select_matrix(maps: np.ndarray, layer: int | None, head: int | None) -> np.ndarray:
    """One head's matrix; head None = mean over the layer's heads; layer None = over all."""
    maps = np.asarray(maps, dtype=float)
    if layer is None:
        return maps.mean(axis=(0, 1))
    if head is None:
        return maps[layer].mean(axis=0)
    return maps[layer, head]


KIND_NAMES = {"cross": "Cross-attention", "decoder": "Decoder self-attention", "encoder": "Encoder self-attention"}


def where_label(layer: int | None, head: int | None) -> str:
    if layer is None:
        return "mean of all layers and heads"
    return f"layer {layer}, mean of heads" if head is None else f"layer {layer}, head {head}"


def map_title(kind: str, layer: int | None, head: int | None) -> str:
    return f"{KIND_NAMES[kind]} — {where_label(layer, head)}"


def png_name(kind: str, layer: int | None, head: int | None) -> str:
    """File name (no extension) Plotly's camera button gives the PNG of a figure."""
    return (
        f"e2p-{kind}-"
        + ("all" if layer is None else f"L{layer}")
        + ("" if layer is None else "-mean" if head is None else f"-H{head}")
    )


def plotly_config(filename: str) -> dict:
    """Plotly config: mode bar always on, its camera button saves a 2× PNG named `filename`."""
    return {
        "displayModeBar": True,
        "displaylogo": False,
        "scrollZoom": True,
        "toImageButtonOptions": {"format": "png", "filename": filename, "scale": 2},
    }


def needs_window(n_rows: int, size: int = WINDOW) -> bool:
    return n_rows > size


def window_bounds(start: int, n_rows: int, size: int = WINDOW) -> tuple[int, int]:
    """(start, end) of a window of at most `size` rows that lies inside 0..n_rows."""
    size = max(1, min(size, n_rows))
    start = max(0, min(int(start), n_rows - size))
    return start, start + size


def source_parts(src_tokens: list[str]) -> dict[str, tuple[int, int]]:
    """Spans of the encoder input: the user's prompt, then (with retrieval) the retrieved
    example's prompt after `<sep>` and its code after `<code>`."""
    n = len(src_tokens)
    sep = src_tokens.index(SEP) if SEP in src_tokens else n
    code = src_tokens.index(CODE) if CODE in src_tokens[sep:] else n
    parts = {"prompt": (0, sep)}
    if sep < n:
        parts["retrieved prompt"] = (sep + 1, code)
    if code < n:
        parts["retrieved code"] = (code + 1, n)
    return parts


def token_attention(result, index: int, layer: int | None, head: int | None) -> np.ndarray:
    """Cross-attention weights over the source tokens for predicted token `index`."""
    maps, rows, _ = attention_parts(result, "cross")
    if not 0 <= index < len(rows):
        raise ValueError(f"token index {index} out of range for {len(rows)} generated tokens")
    return select_matrix(maps, layer, head)[index]


def attention_shares(src_tokens: list[str], weights: np.ndarray) -> dict[str, float]:
    """Fraction of a token's attention that fell on each part of the source."""
    weights = np.asarray(weights, dtype=float)
    total = float(weights.sum()) or 1.0
    return {name: float(weights[a:b].sum()) / total for name, (a, b) in source_parts(src_tokens).items()}


def top_tokens(tokens: list[str], weights: np.ndarray, k: int = 5) -> list[tuple[str, float]]:
    """The k most attended tokens, position-labelled ("3:add"), heaviest first."""
    weights = np.asarray(weights, dtype=float)
    labels = axis_labels(tokens)
    order = np.argsort(-weights, kind="stable")[:k]
    return [(labels[i], float(weights[i])) for i in order]


def attention_json(result, decimals: int = 4) -> str:
    """The maps of a result with their token labels, as JSON (bertviz-like contract)."""
    doc = {
        "prompt": result.prompt,
        "code": result.code,
        "orientation": "rows are query positions, columns are key positions",
        "tokens": {"source": result.src_tokens, "target": result.tgt_tokens, "target_input": result.tgt_input_tokens},
        "maps": {},
    }
    for kind in ATTENTION_KINDS:
        if kind not in (result.attention or {}):
            continue
        maps, rows, cols = attention_parts(result, kind)
        doc["maps"][kind] = {
            "shape": list(maps.shape),
            "axes": ["layer", "head", "row", "column"],
            "rows": {"cross": "target", "decoder": "target", "encoder": "source"}[kind],
            "columns": {"cross": "source", "decoder": "target_input", "encoder": "source"}[kind],
            "weights": np.round(maps, decimals).tolist(),
        }
    return json.dumps(doc, ensure_ascii=False)


# ---------------------------------------------------------------- samples gallery


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


# ---------------------------------------------------------------- model card


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
        row["settings"] = values.get("settings", "")
        rows.append(row)
    return rows


def metric_bars(metrics: dict | None) -> dict[str, dict[str, float | None]]:
    """BLEU, parse % and exec match % per system for `figures.metrics_bar` (None: not measured)."""
    bars = {}
    for system, values in (metrics or {}).items():
        parse, exec_match = _number(values.get("parse_rate")), _number(values.get("exec_match"))
        bars[system] = {
            "BLEU": _number(values.get("bleu")),
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


def model_card(config: dict, manifest: dict, parameters: int) -> list[tuple[str, str]]:
    """(field, value) rows describing the model: architecture, size, training run."""
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
        ("answer", answer_rule(config)),
        ("lengths", f"source ≤ {feats.get('max_src', '?')} tokens, " f"code ≤ {feats.get('max_tgt', '?')}"),
        (
            "training",
            f"{manifest.get('epochs', '?')} epochs (best {manifest.get('best_epoch', '?')}), "
            f"{manifest.get('training_seconds', '?')} s, dropout {model.get('dropout', '?')}, "
            f"lr {train.get('lr', '?')}",
        ),
        (
            "data",
            f"{splits.get('train', '?')} train / {splits.get('valid', '?')} valid / "
            f"{splits.get('test', '?')} test examples",
        ),
        ("corpus sha256", str(manifest.get("corpus_sha256", "?"))[:16] + "…"),
        ("commit", str(manifest.get("commit") or "unknown")),
        ("created", str(manifest.get("created") or "unknown")),
    ]
    return rows


def answer_rule(config: dict) -> str:
    """How the shipped decoding picks the code it shows, in one line."""
    settings = DecodeSettings(**config.get("decoding", {}))
    rerank, pool = config.get("rerank", DEFAULT_RERANK), config.get("pool", 0)
    text = describe(settings, rerank, pool)
    if rerank == "ranker":
        text += (
            f" — the model's output and the {pool} nearest training programs (and those with the prompt's "
            "values put in), ordered by a ranker fitted on the train split; the first that parses and runs "
            "cleanly wins"
        )
    elif not pool:
        text += " — the model's own code"
    return text


def rebuild_command() -> str:
    return REBUILD


# ---------------------------------------------------------------- errors and what is run


def error_sentence(err: BaseException, where: str = "") -> str:
    """What the app shows for an exception: an E2PError's own message (it is written for users),
    anything else one plain sentence with no internals (the traceback goes to the server's log)."""
    if isinstance(err, E2PError):
        return str(err)
    where = f" {where}" if where else ""
    return f"Something went wrong{where}; the details are in the server's log. " "Try again, or reload the page."


def execution_notice(status, warnings=()) -> str | None:
    """The one line the app shows where programs cannot be run (a `sandbox.SandboxStatus`);
    None where they can, or where a result's `warnings` already say so."""
    if status.available or any(w.startswith(NOT_RUN) for w in warnings):
        return None
    return f"{status.notice[0].upper()}{status.notice[1:]}."


def execution_text(status, limits: str) -> str:
    """What the app runs, where and with which limits, for `sandbox.sandbox_status()` and
    `sandbox.describe_limits()`."""
    never = 'Your prompt itself is never run as code. "Model score" and "first candidate that ' 'parses" run nothing.'
    if not status.available:
        return "No program is run on this server: answers are chosen without running anything. " + never
    return (
        "To choose an answer, the other choices run candidate programs on this server: the "
        "model's outputs and the nearest training programs, some with numbers and quoted values "
        f"from your prompt put in as literals ({status.mode}). {limits[:1].upper()}{limits[1:]}; "
        f"each request gets at most {RUN_BUDGET_S:g} s of runs in all. " + never
    )
