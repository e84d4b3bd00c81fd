"""Choices that several modules share, defined once here, in a module that imports nothing
(so that the CLI's `--help` need not import torch to know them)."""

from __future__ import annotations

# How candidates are ordered: by the model's score only, or parsing candidates first (both for
# diagnosis); the best-scored one that runs cleanly in the sandbox first (the default); or by the
# learned ranker over the model's code and retrieved train programs (the retrieval baseline).
RERANKS = ("score", "parse", "run", "ranker")
# Choices that were measured and not kept: asked for, they get a sentence naming where their figures went.
REMOVED_RERANKS = ("consensus", "example", "near", "output", "agree")
EXPERIMENTS_PAGE = "docs/experiments.md"
# The corpus (EVAL.md), relative to the repository root, where the commands are run from.
CORPUS_PATH = "../shared/data/english_python_data.txt"
# CoNaLa's train file (EVAL.md), the corpus of artifacts/conala.
CONALA_PATH = "../shared/data/conala/train.jsonl"
# How to rebuild the shipped artifacts, as every message that asks for a rebuild says it.
REBUILD_COMMAND = f"python -m train --data {CORPUS_PATH} --config default --out artifacts"
# What an answer of a policy that runs nothing (`"runs": false`: CoNaLa's snippets) is labelled, and why.
SNIPPET_LABEL = "snippet: not run"
SNIPPET_REASON = "it uses names defined elsewhere (a snippet, as in its corpus), so running it says nothing"
