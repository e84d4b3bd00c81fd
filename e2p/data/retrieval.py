"""Nearest train example by TF-IDF cosine over prompts: the retrieval baseline and RAG's memory."""

from __future__ import annotations

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from .corpus import Example


class Retriever:
    def __init__(self, examples: list[Example]):
        if not examples:
            raise ValueError("a retriever needs at least one example")
        self.examples = list(examples)
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
