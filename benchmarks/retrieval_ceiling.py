"""How far can choosing among retrieved train programs go? Prints, per split, the EVAL.md figures
of the nearest train program and of an oracle that sees the reference and picks, among the k
nearest, the program with the best sentence BLEU (and, for exec match, any program whose output
matches). No model is involved: it is the ceiling of every system that answers with train code.

    python benchmarks/retrieval_ceiling.py [--data PATH] [--split test] [--k 1 5 10]
"""

from __future__ import annotations

import argparse
import json
import warnings

from e2p.constants import CORPUS_PATH
from e2p.data.corpus import load_corpus
from e2p.data.retrieval import Retriever
from e2p.evaluation import metrics
from e2p.sandbox.runner import run_many


def ceiling(data: str, split: str, ks: list[int]) -> dict:
    corpus = load_corpus(data)
    retriever = Retriever(corpus.split("train"))
    examples = corpus.split(split)
    refs = [ex.code for ex in examples]
    profiles = metrics.profile_references(refs)
    hits = [[ex.code for ex, _ in retriever.nearest(e.prompt, max(ks))] for e in examples]
    out = {"split": split, "n": len(examples), "n_executable": sum(p.executable for p in profiles)}
    for k in ks:
        best = [max(codes[:k], key=lambda c, r=ref: metrics.sentence_bleu(c, r)) for codes, ref in zip(hits, refs)]
        matched = 0
        for codes, profile in zip(hits, profiles):
            if not profile.executable:
                continue
            runs = run_many([c for c in codes[:k] if metrics.parses(c)], timeout=5.0)
            matched += any(r.ok and metrics.normalise_stdout(r.stdout) == profile.stdout for r in runs)
        out[f"oracle@{k}"] = {"bleu": round(metrics.bleu(best, refs), 1), "exec_match": matched}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=CORPUS_PATH)
    parser.add_argument("--split", default="test", choices=["train", "valid", "test"])
    parser.add_argument("--k", type=int, nargs="+", default=[1, 5, 10])
    args = parser.parse_args()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the corpus's own code trips SyntaxWarnings
        print(json.dumps(ceiling(args.data, args.split, args.k), indent=1))


if __name__ == "__main__":
    main()
