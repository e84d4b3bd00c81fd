"""The model commands of the CLI: generate, evaluate, bench."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

from .constants import CONALA_PATH, EXPERIMENTS_PAGE, REMOVED_RERANKS, RERANKS, SNIPPET_LABEL, SNIPPET_REASON
from .constants import CORPUS_PATH as DEFAULT_DATA
from .errors import E2PError


def register(sub) -> None:
    gen = sub.add_parser("generate", help="write Python for a prompt (or a file of prompts)")
    gen.add_argument("prompt", nargs="?", help="what the code should do")
    gen.add_argument("--batch", metavar="FILE", help="one prompt a line; prints one JSON object a line")
    _decoding_options(gen)
    gen.set_defaults(func=_generate)

    ev = sub.add_parser("evaluate", help="EVAL.md metrics for the model and the retrieval baseline")
    ev.add_argument(
        "--data",
        default=None,
        help=f"corpus path (default {DEFAULT_DATA}; for an artifact trained on CoNaLa, {CONALA_PATH})",
    )
    ev.add_argument(
        "--split",
        default=None,
        choices=["train", "valid", "test", "dev"],
        help="the split to answer (default: test; dev for an artifact trained on CoNaLa, whose test split is "
        "measured from outside the project)",
    )
    ev.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="NAME=FOLDER",
        help="another artifact folder to evaluate in the same run, e.g. original=artifacts/original",
    )
    ev.add_argument("--limit", type=int, default=None, help="only the first N examples (quick checks)")
    ev.add_argument(
        "--no-ranker-row",
        dest="ranker_row",
        action="store_false",
        help="leave out the row of the learned ranker over retrieved train programs (--rerank ranker), "
        "which is added where the model's rerank is another",
    )
    ev.add_argument("--json", metavar="FILE", help="also write the JSON report to FILE")
    ev.add_argument(
        "--functional",
        metavar="FILE",
        nargs="?",
        const="suite",
        default=None,
        help="instead of the corpus split, the functional suite FILE (JSON lines of tasks with checks, "
        "../shared/EVAL.md; without FILE the project's own, e2p/evaluation/functional.jsonl): every "
        "answer runs in the sandbox; pass@1 and the failure kinds of each system",
    )
    ev.add_argument(
        "--half",
        choices=["all", "tune", "held-out"],
        default="all",
        help="with --functional: only the tasks of EVAL.md's tune or held-out half (default: all)",
    )
    ev.add_argument(
        "--allow-other-corpus",
        action="store_true",
        help="evaluate even where --data is not the corpus an artifact was built from "
        "(its test prompts may then be in the artifact's memory): a warning, not an error",
    )
    _decoding_options(ev)
    ev.set_defaults(func=_evaluate)

    bench = sub.add_parser("bench", help="decoding latency with and without the cache; training throughput")
    bench.add_argument("--data", default=DEFAULT_DATA)
    bench.add_argument("--artifacts", default="artifacts")
    bench.add_argument("--limit", type=int, default=60, help="test prompts to time (default 60)")
    bench.add_argument("--threads", type=int, default=1, help="torch threads (default 1, like the app)")
    bench.set_defaults(func=_bench)


def _decoding_options(p) -> None:
    p.add_argument("--artifacts", default="artifacts", help="artifact folder (default: artifacts)")
    p.add_argument(
        "--own",
        action="store_true",
        help="the model's own code: the artifact's own decoding and rerank, no retrieved train programs among "
        "the candidates and no fallback to one (the options below still override); the shipped model's default",
    )
    p.add_argument("--beam", type=int, default=None, help="beam width; 1 = greedy (default: the artifact's)")
    p.add_argument("--sample", action="store_true", help="sample instead of searching")
    p.add_argument("--temperature", type=float, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--max-len", type=int, default=None, help="most code tokens to generate")
    p.add_argument(
        "--syntax-guard",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="decode only tokens that keep the code completable as valid Python (default: the artifact's)",
    )
    p.add_argument(
        "--eos-penalty",
        type=float,
        default=None,
        help="subtract this from the end-of-code log-prob: > 0 writes longer code (default: the artifact's)",
    )
    p.add_argument(
        "--follow-example",
        type=float,
        default=None,
        help="add this to the log-prob of the retrieved example's next token where the code written so far "
        "is on the example (renormalised): > 0 keeps closer to the example; 0 is off (default: the artifact's)",
    )
    p.add_argument("--length-penalty", type=float, default=None, help="beam score = logprob / (len+1) ** this")
    p.add_argument(
        "--rerank",
        type=rerank_choice,
        default=None,
        metavar="{" + ",".join(RERANKS) + "}",
        help="how the answer is chosen: run (the best-scored candidate that runs cleanly in the sandbox "
        "first; the shipped default), ranker (the retrieval baseline: the model's code and the nearest train "
        "programs by the learned ranker's score, the first that runs cleanly first, under the artifact's "
        "decoding for it); for diagnosis, score (the model's score only) and parse (parsing candidates "
        f"first); default: the artifact's. Choices measured and not kept are in {EXPERIMENTS_PAGE}",
    )
    p.add_argument(
        "--no-fallback",
        dest="fallback",
        action="store_false",
        default=None,
        help="where no candidate parses, keep the model's output instead of the nearest train example's code "
        "(default: the artifact's choice; --rerank ranker falls back)",
    )
    p.add_argument(
        "--no-edit",
        dest="edit",
        action="store_false",
        help="do not add the retrieved programs with this prompt's values put in as candidates",
    )
    p.add_argument(
        "--pool",
        type=int,
        default=None,
        help="the code of the N nearest train examples and (unless --no-edit) those programs with this "
        "prompt's values put in join the candidates, scored by the model; --rerank ranker orders them by the "
        "learned ranker (default: the artifact's pool for the rerank used; --rerank ranker always has one)",
    )


def rerank_choice(value: str) -> str:
    """--rerank's value, with a sentence for a choice that was measured and not kept."""
    if value in REMOVED_RERANKS:
        raise argparse.ArgumentTypeError(
            f"'{value}' was measured and not kept: its figures, and the commit that holds its code, are in "
            f"{EXPERIMENTS_PAGE}; choose one of {', '.join(RERANKS)}"
        )
    if value not in RERANKS:
        raise argparse.ArgumentTypeError(f"'{value}' is not a choice: choose one of {', '.join(RERANKS)}")
    return value


def _load(folder: str):
    from .collector import loading

    with loading():  # the libraries' imports and the model: about 0.8 s less with the collector paused
        from .answer.generator import Generator

        return Generator(folder)


def request_from_args(args, generator, flags: bool = True):
    """The request the command line means: the artifact's policy (`Policy.resolve`) with the flags on
    top; without `flags` (evaluate's other systems), the artifact's default answer."""
    if not flags:
        return generator.policy.resolve()
    ask = generator.policy.resolve(args.rerank, own=args.own, pool=args.pool, fallback=args.fallback, edit=args.edit)
    return replace(ask, settings=decoding_from_args(args, ask.settings))


def decoding_from_args(args, s):
    """Decoding settings `s` with the decoding flags given on top."""
    if args.sample:
        s = replace(s, strategy="sample")
    elif args.beam is not None:
        if args.beam < 1:
            raise E2PError(f"--beam must be at least 1, got {args.beam}")
        s = replace(
            s,
            strategy="greedy" if args.beam == 1 else "beam",
            beam_size=args.beam,
            n_best=min(s.n_best, args.beam) if args.beam > 1 else 1,
        )
    for name, value in (
        ("temperature", args.temperature),
        ("top_p", args.top_p),
        ("seed", args.seed),
        ("max_len", args.max_len),
        ("length_penalty", args.length_penalty),
        ("eos_penalty", args.eos_penalty),
        ("follow_example", args.follow_example),
        ("syntax_guard", args.syntax_guard),
    ):
        if value is not None:
            s = replace(s, **{name: value})
    return s


def _generate(args) -> None:
    if (args.prompt is None) == (args.batch is None):
        raise E2PError('give a prompt, e.g. e2p generate "write a python function to add two numbers", or --batch FILE')
    generator = _load(args.artifacts)
    from .answer.generator import ORIGIN_TEXT

    ask = request_from_args(args, generator)
    if args.batch is None:
        result = generator.generate(args.prompt, attention=False, **ask.kwargs())
        for warning in result.warnings:
            print(f"e2p: warning: {warning}", file=sys.stderr)
        if result.origin != "model":
            print(f"e2p: note: {ORIGIN_TEXT.get(result.origin, result.origin)}", file=sys.stderr)
        if not generator.policy.runs:
            print(f"e2p: note: {SNIPPET_LABEL}: {SNIPPET_REASON}", file=sys.stderr)
        print(result.formatted.rstrip("\n"))
        return
    path = Path(args.batch)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise E2PError(f"cannot read prompts from {path}: {err}") from None
    for line in lines:
        if not line.strip():
            continue
        try:
            r = generator.generate(line, attention=False, **ask.kwargs())
            row = {
                "prompt": r.prompt,
                "code": r.formatted,
                "parses": r.parses,
                "source": r.origin,  # the output field keeps its name: scripts read it
                "seconds": round(r.seconds, 4),
            }
            if r.warnings:
                row["warnings"] = r.warnings
            if not generator.policy.runs:
                row["note"] = SNIPPET_LABEL
        except E2PError as err:
            row = {"prompt": line, "code": "", "parses": False, "seconds": 0.0, "error": str(err)}
        print(json.dumps(row, ensure_ascii=False), flush=True)


def check_corpus(generator, folder: str, data: str, sha256: str, allow_other: bool) -> None:
    """Refuse (or with `allow_other` warn) where `data` is not the corpus the artifact was built
    from: another corpus can put test prompts into the artifact's retrieval memory silently."""
    built_from = generator.bundle.manifest.get("corpus_sha256")
    if built_from == sha256:
        return
    what = f"{data} (sha256 {sha256[:12]}…) is not the corpus {folder} was built from " + (
        f"(sha256 {built_from[:12]}…)" if isinstance(built_from, str) else "(its manifest records none)"
    )
    if not allow_other:
        raise E2PError(
            f"{what}: its test prompts may be among the training programs the model retrieves; "
            "pass --allow-other-corpus to evaluate anyway"
        )
    print(f"e2p: warning: {what}; evaluating anyway (--allow-other-corpus)", file=sys.stderr)


def _evaluate(args) -> None:
    if args.functional is not None:
        return _evaluate_functional(args)
    from .answer.bundle import sha256_file
    from .data.corpus import load_corpus
    from .evaluation.metrics import not_run
    from .evaluation.report import (
        as_json,
        describe,
        evaluate_systems,
        model_answers,
        retrieval_codes,
        system_label,
        table,
    )

    rule = artifact_split_rule(args.artifacts)
    conala = rule == "conala"
    if args.data is None:
        args.data = CONALA_PATH if conala else DEFAULT_DATA
    if args.split is None:
        args.split = "dev" if conala else "test"
    if conala and args.split == "test":
        raise E2PError(
            f"{args.artifacts} was trained on CoNaLa, whose test split is not in the corpus here: it is measured "
            "from outside the project. Evaluate on dev (the default)"
        )
    corpus = load_corpus(args.data, rule)
    corpus_sha256 = sha256_file(args.data)
    examples = corpus.split(args.split)[: args.limit]
    if not examples:
        raise E2PError(f"the {args.split} split of {args.data} is empty")
    systems = {}

    def same_corpus(name, folder, generator):  # every check before the long part
        check_corpus(generator, folder, args.data, corpus_sha256, args.allow_other_corpus)

    runs = systems_to_run(args, same_corpus)
    for name, folder, generator, ask in runs:
        print(
            f"generating with {name} ({folder}: {describe(ask.settings, ask.rerank, ask.pool)}) on {len(examples)} "
            f"{args.split} prompts",
            file=sys.stderr,
        )
        answers = model_answers(generator, examples, ask, progress=sys.stderr.isatty())
        systems[name] = (answers, system_label(ask))
    systems["retrieval"] = (retrieval_codes(corpus.split("train"), examples), "nearest train prompt (TF-IDF) code")
    # snippets (a policy that runs nothing) are not run, nor are their references
    profiles = None if runs[0][2].policy.runs else not_run(len(examples))
    results = evaluate_systems(examples, systems, profiles, train=corpus.split("train"), conala=conala)
    print(table(results))
    report = {
        "split": args.split,
        "n": len(examples),
        "data": args.data,
        "corpus_sha256": corpus_sha256,
        "systems": as_json(results),
    }
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    print(json.dumps(report))


def artifact_split_rule(folder: str) -> str:
    """How the corpus of the artifact in `folder` was split (its config's `split`: "conala" for CoNaLa),
    read before the artifact is loaded and checked; "eval" where it cannot be read (loading says why)."""
    try:
        rule = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))["train"].get("split", "eval")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return "eval"
    return rule if isinstance(rule, str) else "eval"


def systems_to_run(args, check=None) -> list[tuple]:
    """(name, folder, generator, request) of each system `evaluate` runs: the model with the command
    line's flags, the learned ranker over the same weights (unless --no-ranker-row, or the model's
    rerank is the ranker), and each --also folder answering as its artifact does by default.
    `check(name, folder, generator)` runs on every loaded artifact before anything is generated."""
    folders = [("model", args.artifacts)]
    for item in args.also:
        name, _, folder = item.partition("=")
        if not folder:
            raise E2PError(f"--also takes NAME=FOLDER, got {item!r}")
        folders.append((name, folder))
    generators = [(name, folder, _load(folder)) for name, folder in folders]
    for name, folder, generator in generators:
        if check is not None:
            check(name, folder, generator)
    runs = [
        (name, folder, generator, request_from_args(args, generator, name == "model"))
        for name, folder, generator in generators
    ]
    name, folder, generator = generators[0]
    if args.ranker_row and generator.bundle.ranker is not None and runs[0][3].rerank != "ranker":
        # the retrieval baseline the model's default replaced: the ranker over the same weights
        runs.insert(1, ("ranker", folder, generator, generator.policy.resolve("ranker")))
    return runs


def _evaluate_functional(args) -> None:
    """`evaluate --functional`: each system answers every task's prompt; the answers run in the sandbox."""
    from .evaluation.functional import SUITE_PATH, failure_counts, load_suite, run_suite, split_suite
    from .evaluation.report import model_answers, system_label

    path = SUITE_PATH if args.functional == "suite" else Path(args.functional)
    tasks = split_suite(load_suite(path), args.half)[: args.limit]
    if not tasks:
        raise E2PError(f"{path} has no tasks in the {args.half} half")
    runs = systems_to_run(args)
    prompts = [SimpleNamespace(prompt=t.prompt) for t in tasks]
    systems = {}
    for name, folder, gen, ask in runs:
        print(f"generating with {name} ({folder}: {system_label(ask)}) on {len(tasks)} tasks", file=sys.stderr)
        systems[name] = (model_answers(gen, prompts, ask, progress=sys.stderr.isatty()).codes, system_label(ask))
    generator = runs[0][2]
    if generator.bundle.retriever is not None:  # the nearest train prompt's code, from the artifact's memory
        codes = [generator.bundle.retriever.baseline(t.prompt) for t in tasks]
        systems["retrieval"] = (codes, "nearest train prompt (TF-IDF) code")
    report = {"suite": str(path), "half": args.half, "n": len(tasks), "systems": {}}
    for name, (codes, label) in systems.items():
        outcomes = run_suite(codes, tasks)
        passed = sum(o.passed for o in outcomes)
        report["systems"][name] = {
            "passed": passed,
            "pass_at_1": round(passed / len(tasks), 4),
            "settings": label,
            "failures": failure_counts(outcomes),
            "tasks": {
                t.task_id: {"passed": o.passed, "failure": o.failure, "detail": o.detail, "code": code}
                for t, o, code in zip(tasks, outcomes, codes)
            },
        }
    print(f"functional suite {path} ({args.half} half, {len(tasks)} tasks): pass@1, one answer per task")
    for name, row in report["systems"].items():
        kinds = ", ".join(f"{k} {v}" for k, v in row["failures"].items()) or "none"
        print(f"  {name:<10} {row['passed']:>4}/{len(tasks)}  {100 * row['pass_at_1']:5.1f}%  failures: {kinds}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


def _bench(args) -> None:
    from .evaluation.benchmark import run_benchmark

    print(json.dumps(run_benchmark(args.artifacts, args.data, limit=args.limit, threads=args.threads)))
