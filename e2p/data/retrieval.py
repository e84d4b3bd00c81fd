"""Nearest train example by TF-IDF cosine over prompts: the retrieval baseline and RAG's memory."""

from __future__ import annotations

import re

import numpy as np
from spacy.lang.en.stop_words import STOP_WORDS

from .corpus import Example
from .tfidf import TfidfIndex, word_ngrams

# Words that say what kind of answer is wanted, not what it should do. A prompt made only of these
# (the corpus holds "Write a Python function to", a heading cut short, over an unrelated program)
# matches every prompt that starts the same way and says little else: it is never retrieved.
# spaCy's English stop words (the prompt tokenizer's library; scikit-learn's list, used before, costs
# its 1.3 s import): on the corpus both leave the same prompts saying nothing.
BOILERPLATE = frozenset(STOP_WORDS) | {
    "python",
    "program",
    "programs",
    "function",
    "functions",
    "code",
    "script",
    "write",
    "create",
    "define",
    "make",
    "implement",
    "implementation",
    "using",
    "given",
    "please",
}
_WORD = re.compile(r"[a-z0-9_]+")


def content_words(prompt: str) -> list[str]:
    """The prompt's words that say what the code should do (not BOILERPLATE)."""
    return [w for w in _WORD.findall(prompt.lower()) if w not in BOILERPLATE]


def says_nothing(prompt: str) -> bool:
    """Whether a prompt holds nothing beyond boilerplate ("Write a Python function to")."""
    return not content_words(prompt)


class Retriever:
    def __init__(self, examples: list[Example]):
        # an example whose prompt says nothing beyond boilerplate would be every such prompt's nearest
        self.examples = [ex for ex in examples if not says_nothing(ex.prompt)]
        self.left_out = len(examples) - len(self.examples)
        if not self.examples:
            raise ValueError("a retriever needs at least one example whose prompt says what the code does")
        self.index = TfidfIndex([ex.prompt for ex in self.examples], word_ngrams)

    def nearest(self, prompt: str, k: int = 1, exclude_key: str | None = None) -> list[tuple[Example, float]]:
        """The k most similar examples, best first; `exclude_key` skips examples with that prompt key."""
        scores = self.index.scores(prompt)
        order = np.argsort(-scores, kind="stable")
        out = []
        for i in order:
            ex = self.examples[i]
            if exclude_key is not None and ex.key == exclude_key:
                continue
            out.append((ex, float(scores[i])))
            if len(out) == k:
                break
        return out

    def baseline(self, prompt: str) -> str:
        return self.nearest(prompt, 1)[0][0].code
