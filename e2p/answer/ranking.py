"""A learned choice among the nearest train programs: which one best answers this prompt?

TF-IDF similarity alone picks the program whose *prompt* reads most alike; the ranker adds what
the candidate's *code* says (does it define the function the prompt asks for, use the prompt's
words and numbers, read input the prompt never mentions) and how the prompts differ. It is a
linear model, fitted on the train split only: every train prompt retrieves its neighbours among
the other train examples (never its own prompt key, as at test time), and the target is each
neighbour's sentence BLEU against the prompt's own code, centred per prompt. Its weights are a
small JSON file beside the model.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np

from ..data.corpus import Example
from ..data.tfidf import Tfidf, char_wb_ngrams, cosine
from .lift import as_function

RANKER_FEATURES = (
    "similarity",  # the retriever's word TF-IDF cosine between the prompts
    "char_similarity",  # character n-gram cosine: robust to typos ("funtion", "wrtie")
    "log_rank",
    "gap_to_best",  # similarity minus the best candidate's
    "prompt_words_in_code",  # idf-weighted share of the prompt's words found in the code
    "prompt_words_in_its_prompt",  # ... found in the candidate's own prompt
    "its_prompt_words_in_prompt",  # the candidate prompt's words found in ours (extra asks)
    "log_code_chars",
    "function_agrees",  # the prompt asks for a function exactly when the code defines one
    "class_agrees",
    "print_agrees",  # the prompt says print and the code prints
    "input_agrees",  # the prompt mentions user input exactly when the code reads it
    "prompt_numbers_in_code",
    "reads_input",
    "defines_function",
    "returns",
)
_STOP = set(
    "write a an the python program function to that which and of in given for is are be it its by "
    "with from as on this code using please print return find create define into all each".split()
)
_CAMEL = re.compile(r"([a-z])([A-Z])")
_NUMBER = re.compile(r"\d+")
ASKS_FOR_INPUT = re.compile(
    r"\b(input|inputs|user|enter|entered|accept|accepts|read|reads|console|keyboard|stdin)\b", re.I
)


_FUNCTION = re.compile(r"\bfunctions?\b", re.I)
_DEFINES = re.compile(r"^\s*(async\s+)?def \w|^\s*\w+\s*=\s*lambda\b", re.M)


def asks_for_function(prompt: str) -> bool:
    """The prompt asks for a function ("write a python function to ...")."""
    return bool(_FUNCTION.search(prompt))


def fits_request(prompt: str, code: str) -> bool:
    """False where the prompt asks for a function and the code defines none (nor a lambda)."""
    return not asks_for_function(prompt) or bool(_DEFINES.search(code))


def lifted(prompt: str, code: str) -> str | None:
    """Where the prompt asks for a function and `code` is a script, the function it computes
    (e2p.answer.lift), as the model is shown it; else None."""
    return None if fits_request(prompt, code) else as_function(prompt, code)


def _as_shown(prompt: str, example: Example) -> Example:
    code = lifted(prompt, example.code)
    return example if code is None else replace(example, code=code)


def reads_input(code: str) -> bool:
    return "input(" in code


def _stem(word: str) -> str:
    for suffix in ("ing", "es", "s", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> set[str]:
    """Lower-cased, stemmed words of prose or code (identifiers split at _ and camelCase)."""
    text = _CAMEL.sub(r"\1 \2", text)
    words = set(re.findall(r"[a-z]+", text.lower()))  # each word stemmed once (the memory's codes repeat them)
    return {_stem(w) for w in words if w not in _STOP and len(w) > 1}


class RankerFeatures:
    """Turns (prompt, retrieved neighbours) into one feature row per neighbour."""

    def __init__(self, memory: list[Example]):
        self.char = Tfidf((ex.prompt for ex in memory), char_wb_ngrams)
        counts = Counter()
        for ex in memory:
            counts.update(content_words(ex.prompt) | content_words(ex.code))
        self.n = len(memory)
        self.counts = counts

    def _idf(self, word: str) -> float:
        return math.log((self.n + 1) / (1 + self.counts[word]))

    def _covered(self, words: set[str], by: set[str]) -> float:
        total = sum(self._idf(w) for w in words)
        return sum(self._idf(w) for w in words & by) / total if total else 0.0

    def rows(
        self, prompt: str, hits: list[tuple[Example, float]], ranks: list[int] | None = None, best: float | None = None
    ) -> np.ndarray:
        """`hits`: (example, similarity) best first; `ranks`/`best` where rows are scored apart
        from the retrieved list (an edited neighbour keeps its neighbour's rank)."""
        low = prompt.lower()
        words = content_words(prompt)
        numbers = set(_NUMBER.findall(prompt))
        asks_input = bool(ASKS_FOR_INPUT.search(prompt))
        query = self.char.vector(prompt)
        char_sims = [cosine(self.char.vector(ex.prompt), query) for ex, _ in hits]
        best = hits[0][1] if best is None else best
        ranks = range(len(hits)) if ranks is None else ranks
        out = []
        for rank, (ex, sim), char_sim in zip(ranks, hits, char_sims):
            code = ex.code
            its_words = content_words(ex.prompt)
            reads = reads_input(code)
            defines = "def " in code
            out.append(
                [
                    sim,
                    char_sim,
                    math.log1p(rank),
                    sim - best,
                    self._covered(words, content_words(code)),
                    self._covered(words, its_words),
                    self._covered(its_words, words),
                    math.log1p(len(code)),
                    float(("function" in low) == defines),
                    float(("class" in low) == ("class " in code)),
                    float("print" in low and "print" in code),
                    float(asks_input == reads),
                    len(numbers & set(_NUMBER.findall(code))) / len(numbers) if numbers else 0.0,
                    float(reads),
                    float(defines),
                    float("return" in code),
                ]
            )
        return np.asarray(out, dtype=np.float64).reshape(len(hits), len(RANKER_FEATURES))


@dataclass
class Ranker:
    """Linear scores over RANKER_FEATURES (it ranks whatever candidates it is given)."""

    weights: list[float]
    bias: float
    fitted_on: int = 0  # train prompts used
    # Added to the score of the model's own output, which the train split cannot judge fairly
    # (the model learnt those prompts): the artifact's policy sets it (chosen on the valid split).
    model_offset: float = 0.0

    def scores(self, rows: np.ndarray) -> np.ndarray:
        return rows @ np.asarray(self.weights) + self.bias

    def order(self, features: RankerFeatures, prompt: str, hits: list[tuple[Example, float]]) -> list[Example]:
        """The retrieved examples (best similarity first), those that define a function first where the
        prompt asks for one (`fits_request`, or a script `lift.as_function` can make one of), then
        best score first; ties keep their rank."""
        # a script the function asked for can be made of is scored and placed as that function, as
        # it is shown
        shown = [(_as_shown(prompt, ex), sim) for ex, sim in hits]
        best = np.argsort(-self.scores(features.rows(prompt, shown)), kind="stable")
        ranked = sorted(best, key=lambda i: not fits_request(prompt, shown[i][0].code))  # stable
        return [hits[i][0] for i in ranked]

    def order_for(self, features: RankerFeatures):
        """`order` over `features`' memory, as `Featurizer` takes it: (prompt, hits) -> examples."""
        return partial(self.order, features)

    def save(self, path: str | Path) -> None:
        data = {
            "features": list(RANKER_FEATURES),
            "weights": self.weights,
            "bias": self.bias,
            "fitted_on": self.fitted_on,
        }
        Path(path).write_text(json.dumps(data, indent=1))

    @classmethod
    def load(cls, path: str | Path) -> "Ranker":
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if list(data.get("features", [])) != list(RANKER_FEATURES) or len(data["weights"]) != len(RANKER_FEATURES):
            raise ValueError(f"{path} was fitted on other features than this version computes")
        return cls(
            weights=[float(w) for w in data["weights"]],
            bias=float(data["bias"]),
            fitted_on=int(data.get("fitted_on", 0)),
        )
