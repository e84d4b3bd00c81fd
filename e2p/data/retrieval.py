"""Nearest train example by TF-IDF cosine over prompts: the retrieval baseline and RAG's memory."""

from __future__ import annotations

import re

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

from .corpus import Example

# Words that say what kind of answer is wanted, not what it should do. A prompt made only of these
# (the corpus holds "Write a Python function to", a heading cut short, over an unrelated program)
# matches every prompt that starts the same way and says little else: it is never retrieved.
BOILERPLATE = frozenset(ENGLISH_STOP_WORDS) | {
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
        self.vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=True)
        self.matrix = self.vectorizer.fit_transform(ex.prompt for ex in self.examples)

    def nearest(self, prompt: str, k: int = 1, exclude_key: str | None = None) -> list[tuple[Example, float]]:
        """The k most similar examples, best first; `exclude_key` skips examples with that prompt key."""
        scores = (self.matrix @ self.vectorizer.transform([prompt]).T).toarray().ravel()
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
