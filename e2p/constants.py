"""Choices that several modules share, defined once here, in a module that imports nothing
(so that the CLI's `--help` need not import torch to know them)."""

from __future__ import annotations

# How candidates are ordered: by model score only, parsing first, running cleanly first, or by the
# learned ranker.
RERANKS = ("score", "parse", "run", "ranker")

# The corpus (EVAL.md), relative to the repository root, where the commands are run from.
CORPUS_PATH = "../shared/data/english_python_data.txt"
