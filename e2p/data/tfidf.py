"""TF-IDF vectors of short texts, computed as scikit-learn's `TfidfVectorizer` computes them (smooth
idf, sublinear tf, l2 norm, lower-cased) for the two analyzers e2p uses: word 1-2 grams with its
default token pattern, and `char_wb` 2-5 grams.

Why not the vectorizer itself at request time: importing scikit-learn pulls in scipy.stats and pandas,
1.3 s of a first answer's 3 s budget on a 2-core laptop, and its fit of the character n-grams when
the model loads took another 0.7 s. Training still uses scikit-learn (`artifact.ranker_fit`), and
`tests/test_tfidf.py` checks these vectors against `TfidfVectorizer`'s on the corpus.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from functools import lru_cache

import numpy as np

_TOKEN = re.compile(r"(?u)\b\w\w+\b")  # TfidfVectorizer's default token_pattern
_WHITE_SPACES = re.compile(r"\s\s+")


def word_ngrams(text: str) -> list[str]:
    """Words of two or more word characters, then each pair of neighbours joined by a space."""
    words = _TOKEN.findall(text.lower())
    return words + [f"{a} {b}" for a, b in zip(words, words[1:])]


def char_wb_ngrams(text: str, low: int = 2, high: int = 5) -> list[str]:
    """Character n-grams of each word padded with a space on either side; a padded word no longer
    than n counts once, whole (as `analyzer="char_wb"` does)."""
    grams: list[str] = []
    for word in _WHITE_SPACES.sub(" ", text.lower()).split():
        grams.extend(_padded_word_grams(word, low, high))
    return grams


@lru_cache(maxsize=1 << 16)
def _padded_word_grams(word: str, low: int, high: int) -> tuple[str, ...]:
    # words repeat across prompts ("write", "function"): a memory's fit computes each one once
    word = f" {word} "
    grams: list[str] = []
    for n in range(low, high + 1):
        if len(word) <= n:
            grams.append(word)
            break
        grams.extend([word[i : i + n] for i in range(len(word) - n + 1)])
    return tuple(grams)


Vector = dict[str, float]


class Tfidf:
    """Idf fitted on `docs`; `vector` gives a text's l2-normalised weights over the fitted terms."""

    def __init__(self, docs: Iterable[str], analyzer: Callable[[str], list[str]]):
        self.analyzer = analyzer
        df: Counter[str] = Counter()
        n = 0
        for doc in docs:
            df.update(set(analyzer(doc)))
            n += 1
        self._fit(df, n)

    def _fit(self, df: Counter[str], n: int) -> None:
        self.idf = {term: math.log((1 + n) / (1 + count)) + 1.0 for term, count in df.items()}

    def vector(self, text: str) -> Vector:
        return self._weights(Counter(t for t in self.analyzer(text) if t in self.idf))

    def _weights(self, counts: Counter[str]) -> Vector:
        """Sublinear tf times idf, l2-normalised, for terms the fit has seen."""
        weights = {t: (1.0 + math.log(c)) * self.idf[t] for t, c in counts.items()}
        norm = math.sqrt(sum(w * w for w in weights.values()))
        return {t: w / norm for t, w in weights.items()} if norm else weights


def cosine(a: Vector, b: Vector) -> float:
    """The dot product of two normalised vectors."""
    if len(b) < len(a):
        a, b = b, a
    return sum(w * b[t] for t, w in a.items() if t in b)


class TfidfIndex(Tfidf):
    """`Tfidf` over `docs` that also scores a query against every doc (an inverted index)."""

    def __init__(self, docs: list[str], analyzer: Callable[[str], list[str]]):
        # each doc analysed once: its term counts give both the document frequencies and its weights
        self.analyzer = analyzer
        counts = [Counter(analyzer(doc)) for doc in docs]
        df: Counter[str] = Counter()
        for doc_counts in counts:
            df.update(doc_counts.keys())
        self._fit(df, len(docs))
        self.n_docs = len(docs)
        rows: dict[str, tuple[list[int], list[float]]] = {}
        for i, doc_counts in enumerate(counts):
            for term, weight in self._weights(doc_counts).items():
                ids, weights = rows.setdefault(term, ([], []))
                ids.append(i)
                weights.append(weight)
        self.postings = {t: (np.asarray(ids), np.asarray(ws)) for t, (ids, ws) in rows.items()}

    def scores(self, text: str) -> np.ndarray:
        """The cosine of `text` with every doc, in doc order."""
        out = np.zeros(self.n_docs)
        for term, weight in self.vector(text).items():
            ids, weights = self.postings[term]
            out[ids] += weight * weights
        return out
