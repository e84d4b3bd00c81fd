"""What the app reads before it generates: the artifact folder, the prompt, and the decoding
settings its controls mean (with the limits that keep one request bounded).

No Streamlit. Importing this module imports torch, through `e2p.model.decoding` (for `DecodeSettings`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from ..answer.policy import Request
from ..model.decoding import DecodeSettings, DecodeSettingsError, describe

ENV_FOLDER = "E2P_ARTIFACTS"  # environment variable naming the artifact folder
MAX_LEN_CAP = 256  # most output tokens the app lets a user ask for (bounds a request's work)
MAX_BEAM = 8
MAX_FOLLOW = 20.0  # strongest "follow the retrieved example" weight the app offers (0: off)

# What the app's "Pick among candidates by" shows for each of RERANKS (one label per rerank).
RERANK_LABELS = {
    "score": "model score",
    "parse": "first candidate that parses",
    "run": "first that parses and runs cleanly (run in the sandbox)",
    "ranker": "learned ranker over the model's and the nearest training programs, first that runs "
    "(run in the sandbox)",
}

EXAMPLE_PROMPTS = (
    "write a python function to add two numbers",
    "write a program to reverse a string",
    "write a python function to check if a number is prime",
    "print the first 10 fibonacci numbers",
)


def rerank_label(rerank: str) -> str:
    """The app's label for one of RERANKS (its name where it has none)."""
    return RERANK_LABELS.get(rerank, rerank)


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


def cap_length(max_len: int, model_max_len: int | None = None) -> int:
    """The output length asked for, kept within 1..MAX_LEN_CAP and the model's own limit."""
    cap = MAX_LEN_CAP if model_max_len is None else min(MAX_LEN_CAP, model_max_len)
    return max(1, min(int(max_len), cap))


def follow_weight(value: float) -> float:
    """The follow-the-example weight, clamped to 0..MAX_FOLLOW. Raises DecodeSettingsError for a
    value that is not a finite number."""
    try:
        weight = float(value)
    except (TypeError, ValueError):
        weight = math.nan
    if not math.isfinite(weight):
        raise DecodeSettingsError(f"follow_example must be a finite number, got {value!r}")
    return max(0.0, min(weight, MAX_FOLLOW))


def build_settings(
    defaults: DecodeSettings,
    strategy: str,
    beam_size: int,
    temperature: float,
    top_p: float,
    max_len: int,
    model_max_len: int | None = None,
    follow_example: float | None = None,
) -> DecodeSettings:
    """DecodeSettings for the app's controls, starting from the artifact's defaults.

    The length is capped (MAX_LEN_CAP and the model's own limit) so one request stays bounded;
    `follow_example` is clamped to 0..MAX_FOLLOW (None keeps the defaults' weight).
    Raises DecodeSettingsError for values out of range.
    """
    max_len = cap_length(max_len, model_max_len)
    changes = dict(strategy=strategy, max_len=max_len, min_len=min(defaults.min_len, max_len))
    if follow_example is not None:
        changes.update(follow_example=follow_weight(follow_example))
    if strategy == "beam":
        beam = max(1, min(int(beam_size), MAX_BEAM))
        changes.update(beam_size=beam, n_best=beam)
    elif strategy == "sample":
        changes.update(temperature=float(temperature), top_p=float(top_p), seed=None)
    return replace(defaults, **changes)


def request_options(gen, baseline: bool, values: Mapping) -> Request:
    """The request the app's controls mean (`Policy.resolve`, then the controls' decoding). `values`:
    the widget values by key (the session state; a missing key means the artifact's default).

    `baseline`: the retrieval baseline, as `e2p generate --rerank ranker` asks for it: the policy's
    answer for it, of the controls only the maximum length applies. Otherwise the controls, which
    start from the policy's default answer, and the rerank chosen.
    """
    model_max_len = gen.model.config.max_len - 2
    if baseline:
        ask = gen.policy.resolve("ranker")
        base = ask.settings
        max_len = cap_length(values.get("max_len", min(base.max_len, MAX_LEN_CAP)), model_max_len)
        return replace(ask, settings=replace(base, max_len=max_len, min_len=min(base.min_len, max_len)))
    ask = gen.policy.resolve(values.get("rerank"))
    base = gen.policy.default.decoding  # what the controls show
    settings = build_settings(
        base,
        strategy=values.get("strategy", base.strategy),
        beam_size=values.get("beam_size", base.beam_size),
        temperature=values.get("temperature", base.temperature),
        top_p=values.get("top_p", base.top_p),
        max_len=values.get("max_len", min(base.max_len, MAX_LEN_CAP)),
        model_max_len=model_max_len,
        follow_example=values.get("follow_example", base.follow_example),
    )
    return replace(ask, settings=settings)


def describe_request(settings: DecodeSettings, rerank: str, pool: int, fallback: bool = True) -> str:
    """How an answer was asked for, for the caption under it: the decoding, the rerank and the
    pool of training programs ranked with the model's candidates (`decoding.describe`), and where
    no training program is among them, that the answer is the model's own code."""
    text = describe(settings, rerank, pool)
    if pool:
        return text
    return f"{text} — the model's own code: no training program among the candidates" + (
        "" if fallback else ", no fallback"
    )


def describe_settings(settings: DecodeSettings | None) -> str:
    """The settings an answer was decoded with (`decoding.describe`), for the caption under it."""
    return "" if settings is None else describe(settings)
