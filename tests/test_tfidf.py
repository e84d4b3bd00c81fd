"""e2p.data.tfidf against scikit-learn's TfidfVectorizer, which it stands in for at request time."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from e2p.data.tfidf import Tfidf, TfidfIndex, char_wb_ngrams, cosine, word_ngrams

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = [json.loads(line)["prompt"] for line in (ROOT / "artifacts" / "memory.jsonl").open(encoding="utf-8")]
QUERIES = [
    "write a python function to add 15 and 27",
    "Wrtie a funtion to reverse a  string",
    "print the number of words in the sentence 'the cat sat on the mat'",
    "a",
    "zzzz qqqq",  # no known term: a zero vector
    "  ",
]


def test_the_analyzers_are_scikit_learns():
    word = TfidfVectorizer(ngram_range=(1, 2), lowercase=True).build_analyzer()
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5)).build_analyzer()
    for text in PROMPTS + QUERIES:
        assert word_ngrams(text) == word(text)
        assert sorted(char_wb_ngrams(text)) == sorted(char(text))


@pytest.mark.parametrize(
    ("analyzer", "options"),
    [(word_ngrams, {"ngram_range": (1, 2)}), (char_wb_ngrams, {"analyzer": "char_wb", "ngram_range": (2, 5)})],
)
def test_vectors_and_cosines_are_scikit_learns(analyzer, options):
    sk = TfidfVectorizer(sublinear_tf=True, lowercase=True, **options)
    matrix = sk.fit_transform(PROMPTS)
    ours = Tfidf(PROMPTS, analyzer)
    assert ours.idf == pytest.approx({t: sk.idf_[i] for t, i in sk.vocabulary_.items()}, rel=1e-12)
    queries = sk.transform(QUERIES)
    terms = sk.get_feature_names_out()
    for text, row in zip(QUERIES, queries):
        expected = {terms[i]: v for i, v in zip(row.indices, row.data)}
        assert ours.vector(text) == pytest.approx(expected, rel=1e-12)
    sims = (matrix[:50] @ queries.T).toarray()
    for j, text in enumerate(QUERIES):
        for i in range(50):
            assert cosine(ours.vector(PROMPTS[i]), ours.vector(text)) == pytest.approx(sims[i, j], abs=1e-12)


def test_the_index_ranks_every_prompt_as_scikit_learn_does():
    sk = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=True)
    matrix = sk.fit_transform(PROMPTS)
    index = TfidfIndex(PROMPTS, word_ngrams)
    for text in QUERIES + PROMPTS[::40]:
        expected = (matrix @ sk.transform([text]).T).toarray().ravel()
        got = index.scores(text)
        assert got == pytest.approx(expected, abs=1e-12)
        top = lambda s: list(np.argsort(-s, kind="stable")[:10])  # noqa: E731
        assert top(got) == top(expected)


def test_answering_imports_neither_scikit_learn_nor_scipy():
    code = (
        "import sys, e2p.answer.generator, e2p.cli;"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'scipy', 'pandas'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
