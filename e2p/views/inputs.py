"""What the app reads before it generates: the artifact folder, the prompt, and the decoding
settings its controls mean (with the limits that keep one request bounded).

No Streamlit. Importing this module imports torch, through `e2p.model.decoding` (for `DecodeSettings`).
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

from ..model.decoding import DecodeSettings, describe

ENV_FOLDER = "E2P_ARTIFACTS"  # environment variable naming the artifact folder
MAX_LEN_CAP = 256  # most output tokens the app lets a user ask for (bounds a request's work)
MAX_BEAM = 8

EXAMPLE_PROMPTS = (
    "write a python function to add two numbers",
    "write a program to reverse a string",
    "write a python function to check if a number is prime",
    "print the first 10 fibonacci numbers",
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
