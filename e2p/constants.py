"""Choices that several modules share, defined once here, in a module that imports nothing
(so that the CLI's `--help` need not import torch to know them)."""

from __future__ import annotations

# How candidates are ordered: by model score only, parsing first, running cleanly first, by consensus
# (what shares most with the other candidates), by closeness to the retrieved example the model
# followed, or by the model score nudged towards that example, each then running cleanly; running
# cleanly and printing where the example prints; running cleanly with the output most other
# candidates print (execution agreement); or by the learned ranker.
RERANKS = ("score", "parse", "run", "consensus", "example", "near", "output", "agree", "ranker")
NEAR_WEIGHT = 0.1  # rerank "near": the model's score + this x closeness to the example (sentence BLEU / 100);
# `benchmarks/candidate_choice.py --split valid`: 0.1 to 3 gave the same BLEU, 0.1 the fewest train copies
DEFAULT_RERANK = "run"  # where a training config or an artifact names none
DEFAULT_OWN_RERANK = "score"  # the model's own code (no retrieved candidates), where none is named

# The learned ranker chooses among this many retrieved programs where an artifact names no pool.
RANKER_POOL = 10

# The corpus (EVAL.md), relative to the repository root, where the commands are run from.
CORPUS_PATH = "../shared/data/english_python_data.txt"
