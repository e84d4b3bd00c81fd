"""Fitting the learned ranker (`e2p.answer.ranking.Ranker`) on the train split, as an artifact is
built: its target is EVAL.md's sentence BLEU, which is why this lives above the evaluation stage."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import Ridge

from ..answer.ranking import Ranker, RankerFeatures
from ..data.corpus import Example
from ..data.retrieval import Retriever
from ..evaluation.metrics import sentence_bleu


def fit_ranker(train: list[Example], k: int = 10, alpha: float = 1.0) -> Ranker:
    """Fit on the train split: each prompt ranks its k neighbours among the other train prompts."""
    retriever = Retriever(train)
    maker = RankerFeatures(train)
    xs, ys = [], []
    for ex in train:
        hits = retriever.nearest(ex.prompt, k, exclude_key=ex.key)
        if len(hits) < 2:
            continue
        bleus = np.array([sentence_bleu(h.code, ex.code) for h, _ in hits])
        xs.append(maker.rows(ex.prompt, hits))
        ys.append(bleus - bleus.mean())
    if not xs:
        raise ValueError("too few train examples to fit a ranker")
    model = Ridge(alpha=alpha).fit(np.concatenate(xs), np.concatenate(ys))
    return Ranker(weights=[float(w) for w in model.coef_], bias=float(model.intercept_), fitted_on=len(xs))
