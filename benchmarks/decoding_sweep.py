"""The model's own output (no retrieved candidates, no fallback) under several decoding settings,
on one split, every row measured in the same run with EVAL.md's metrics (references run once).

    python benchmarks/decoding_sweep.py --split valid --eos 0 1 2 3 [--follow 0 3 6] [--beam 5] [--guard/--no-guard]
        [--example-pool 0 10] [--rerank score run] [--examples 2]

Every EOS penalty is tried with every follow-the-example weight, every rerank rule and every
example pool (the example in the source: the ranker's first among that many nearest; 0: the nearest).

Tune on valid only; the chosen setting goes into the artifact's decoding config.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from itertools import product

import torch

from e2p.answer.generator import Generator
from e2p.constants import CORPUS_PATH, RERANKS
from e2p.data.corpus import load_corpus
from e2p.data.features import Featurizer
from e2p.errors import E2PError
from e2p.evaluation.report import as_json, describe, evaluate_systems, model_answers, table
from e2p.model.decoding import DecodeSettings


def with_example_pool(bundle, featurizer: Featurizer, example_pool: int) -> Featurizer:
    """`featurizer` showing the ranker's first among `example_pool` nearest (0: the nearest)."""
    if example_pool and bundle.ranker is None:
        raise SystemExit(f"{bundle.folder} has no ranker.json: --example-pool needs one")
    order = bundle.ranker.order_for(bundle.ranker_features) if example_pool else None
    return Featurizer(replace(featurizer.config, example_pool=example_pool), featurizer.retriever, order)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--artifacts", default="artifacts")
    p.add_argument("--data", default=CORPUS_PATH)
    p.add_argument("--split", default="valid", choices=["valid", "test"])
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--eos", type=float, nargs="+", default=[0.0], help="EOS penalties to try")
    p.add_argument("--follow", type=float, nargs="+", default=[0.0], help="follow-the-example weights to try (0: off)")
    p.add_argument(
        "--example-pool",
        type=int,
        nargs="+",
        default=None,
        help="example pools to try (0: the nearest example; default: the artifact's)",
    )
    p.add_argument(
        "--examples",
        type=int,
        default=1,
        help="with --rerank run: where nothing written with one example runs, write with the next (up to N)",
    )
    p.add_argument("--beam", type=int, default=1, help="beam width (1: greedy)")
    p.add_argument("--length-penalty", type=float, default=1.0, help="beam only")
    p.add_argument("--no-repeat-ngram", type=int, default=0, help="ban repeating any n-gram of this size (0: off)")
    p.add_argument("--guard", action=argparse.BooleanOptionalAction, default=True, help="syntax guard")
    p.add_argument(
        "--rerank",
        nargs="+",
        default=["score"],
        choices=[r for r in RERANKS if r != "ranker"],
        help="how the answer is chosen among the model's candidates; several: each is tried",
    )
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", help="also write the report here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    corpus = load_corpus(args.data)
    examples = corpus.split(args.split)[: args.limit]
    try:
        generator = Generator(args.artifacts)
    except E2PError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    strategy = "greedy" if args.beam == 1 else "beam"
    base = DecodeSettings(
        strategy=strategy,
        beam_size=max(args.beam, 1),
        n_best=max(args.beam, 1),
        length_penalty=args.length_penalty,
        no_repeat_ngram=args.no_repeat_ngram,
        syntax_guard=args.guard,
        examples=args.examples,
    )
    systems = {}
    shipped = generator.bundle.featurizer
    for example_pool in args.example_pool or [None]:
        if example_pool is not None:
            generator.bundle.featurizer = with_example_pool(generator.bundle, shipped, example_pool)
        for follow, eos, rerank in product(args.follow, args.eos, args.rerank):
            settings = replace(base, eos_penalty=eos, follow_example=follow)
            label = describe(settings, rerank)
            name = f"eos {eos:g}" + (f" follow {follow:g}" if follow else "")
            if len(args.rerank) > 1:
                name += f" {rerank}"
            if example_pool is not None:
                label += f", example pool {example_pool}"
                name += f" pool {example_pool}"
            print(f"generating: {label}", file=sys.stderr, flush=True)
            answers = model_answers(generator, examples, settings, rerank, pool=0, fallback=False)
            systems[name] = (answers, label)
    results = evaluate_systems(examples, systems, train=corpus.split("train"))
    print(f"{args.split} split, {args.artifacts}, the model's own output (pool 0, no fallback)")
    print(table(results))
    if args.json:
        with open(args.json, "w") as f:
            report = {"split": args.split, "artifacts": args.artifacts}
            json.dump({**report, "systems": as_json(results)}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
