"""Which models the app serves, and one prompt through each of them, side by side.

The shipped models are the artifact folder the app reads (the main model) and every model folder
inside it (`original/`: the original capstone design; `conala/`: the recipe trained on CoNaLa).
No Streamlit here: `compare_row` gives what the Compare view draws for one model's answer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ..answer.answer_policy import RUN_TIMEOUT_S
from ..answer.bundle import REQUIRED
from ..answer.generator import GenerationResult
from ..sandbox.runner import RunResult, run_code
from .origin_view import origin_summary
from .run_panel import RunStatus, run_status

NAMES = {  # how the app names each shipped model; another folder is named after itself
    "main": "Main model",
    "original": "Original design",
    "conala": "CoNaLa model",
}
ABOUT = {
    "main": "the shipped model: retrieve-and-edit with copy attention, trained on the English→Python corpus",
    "original": "the capstone's original design: a plain Transformer without retrieval or copying",
    "conala": "the same recipe trained on CoNaLa (Stack Overflow intents and one-line snippets)",
}


@dataclass(frozen=True)
class ShippedModel:
    key: str  # "main" for the folder itself, else the sub-folder's name
    folder: Path

    @property
    def name(self) -> str:
        return NAMES.get(self.key, self.key)

    @property
    def about(self) -> str:
        return ABOUT.get(self.key, f"the model in {self.folder.name}/")


def is_model_folder(folder: Path) -> bool:
    """It holds every file the loader requires (a model the app can serve)."""
    return all((folder / name).is_file() for name in REQUIRED)


def shipped_models(root: str | Path) -> list[ShippedModel]:
    """The model in `root` first (where it is one), then each model folder inside it, by name
    (`pretrained/`, weights for training only, has no policy and is left out)."""
    root = Path(root)
    found = [ShippedModel("main", root)] if is_model_folder(root) else []
    if root.is_dir():
        found += [
            ShippedModel(sub.name, sub) for sub in sorted(root.iterdir()) if sub.is_dir() and is_model_folder(sub)
        ]
    return found


@dataclass
class CompareRow:
    """One model's answer to the compared prompt, as the Compare view shows it."""

    model: ShippedModel
    result: GenerationResult | None
    seconds: float
    status: RunStatus | None  # its run, or "snippet: not run" (None where it failed)
    origins: str  # where its tokens came from, in one line ("" where unknown)
    error: str = ""  # the one sentence said where this model could not answer
    run: RunResult | None = None  # the run the status is about (the answer's own, or one made here)


def compare_row(model: ShippedModel, generator, prompt: str, sandbox_reason: str = "") -> CompareRow:
    """`generator` (the model's) answers `prompt` with its default policy; the time it took. An answer
    its rule did not run (the original design ranks by score) is run here, in the sandbox only, so
    that every program shows what it does; a snippet never runs. `sandbox_reason`: why nothing may
    run here (empty where the sandbox can isolate)."""
    started = time.perf_counter()
    result = generator.generate(prompt, **generator.policy.resolve().kwargs())
    seconds = time.perf_counter() - started
    snippet = not generator.policy.runs
    run = result.run
    if run is None and not snippet and not sandbox_reason and result.code.strip():
        run = run_code(result.code, RUN_TIMEOUT_S)
    status = run_status(result.code, run, sandbox_reason=sandbox_reason, snippet=snippet)
    origins = origin_summary(result.origins) if result.origins else ""
    return CompareRow(model, result, seconds, status, origins, run=run)


def by_prompt(samples: list[dict]) -> dict[tuple[str, int], dict]:
    """Another model's test samples by (prompt, corpus line), to show beside this model's."""
    return {(s.get("prompt", ""), s.get("line", 0)): s for s in samples if isinstance(s, dict)}
