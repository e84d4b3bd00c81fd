"""`python -m e2p ...`: data inspection, generation, evaluation and benchmarks."""

from __future__ import annotations

import argparse
import json
import sys
import warnings

from .errors import E2PError


def _data_stats(args) -> None:
    from .data.corpus import load_corpus
    from .data.placeholders import abstract_example

    corpus = load_corpus(args.path)
    stats = corpus.stats()
    train = corpus.split("train")
    carrying = 0
    for ex in train:
        _, code, slots = abstract_example(ex.prompt, ex.code)
        carrying += bool(set(code) & set(slots.mapping()))
    stats["placeholder_examples"] = carrying
    print(json.dumps(stats))


def _data_dump(args) -> None:
    from .data.corpus import load_corpus

    for ex in load_corpus(args.path).split(args.split):
        print(json.dumps({"prompt": ex.prompt, "code": ex.code, "line": ex.line}, ensure_ascii=False))


class _Parser(argparse.ArgumentParser):
    """Usage mistakes get the same one-line answer as every other bad input."""

    def error(self, message: str):
        self.exit(2, f"e2p: error: {message} (see: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="e2p", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    data = sub.add_parser("data", help="inspect the corpus").add_subparsers(
        dest="data_command", required=True, parser_class=_Parser
    )
    stats = data.add_parser("stats", help="counts of headings, examples, duplicates, drops, splits")
    stats.add_argument("path")
    stats.set_defaults(func=_data_stats)
    dump = data.add_parser("dump", help="one JSON object a line with prompt and code")
    dump.add_argument("path")
    dump.add_argument("--split", default="test", choices=["train", "valid", "test"])
    dump.set_defaults(func=_data_dump)

    _add_model_commands(sub)
    return parser


class CommandsUnavailable(Exception):
    """The model commands' module does not import: every command says so, none vanishes."""


def _add_model_commands(sub) -> None:
    """generate / evaluate / bench live in their own module (kept apart so `--help` need not
    import torch). A module that fails to import is a broken install, never a missing command."""
    try:
        from . import commands
    except ImportError as err:
        raise CommandsUnavailable(
            f"the generate, evaluate and bench commands cannot be loaded: "
            f"{type(err).__name__}: {err} (is the install complete? pip install -r requirements.txt)"
        ) from err
    commands.register(sub)


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore", category=SyntaxWarning)  # corpus code trips `is` warnings
    try:
        parser = build_parser()
    except CommandsUnavailable as err:
        print(f"e2p: error: {err}", file=sys.stderr)
        return 1
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except E2PError as err:
        print(f"e2p: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("e2p: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    return 0
