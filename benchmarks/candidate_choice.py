"""How much choosing among the model's own candidates can buy: the beam of the first writing
(`--own`'s decoding with one example) on one split, each candidate run once in the sandbox, then
several choice rules scored with EVAL.md's BLEU and the share of train copies, all on the same
candidates, beside the best choice in hindsight (the oracle: the candidate closest to the reference).

    python benchmarks/candidate_choice.py --split valid [--artifacts DIR] [--save cands.json] [--load cands.json]

Every rule orders the candidates by the beam's score plus a weight times one signal, then takes
the first that runs cleanly (as `--rerank run` does):
- `pmi`: the prompt's pointwise mutual information with the candidate, per token: its log-prob with
  the whole source minus its log-prob with the retrieved example alone (the prompt left out): a
  candidate the prompt explains beyond the example goes up (reviewer-style reranking);
- `pmi_example`: the same with the example left out instead (the prompt alone);
- `close`: sentence BLEU against the retrieved example (`--rerank example`'s signal);
- `logprob`: the model's own per-token log-prob without the follow rule's weight.
Tune on valid only.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace

import torch

from e2p.answer.answer_policy import closeness
from e2p.answer.generator import Generator
from e2p.answer.sandbox import run_code, sandbox_status
from e2p.constants import CORPUS_PATH
from e2p.data.corpus import load_corpus
from e2p.data.vocab import Vocab
from e2p.evaluation.metrics import bleu, sentence_bleu
from e2p.evaluation.report import train_copy_rate
from e2p.model.decoding import score_targets

WEIGHTS = (0.1, 0.3, 1.0, 3.0)


def candidates(generator: Generator, examples, log=print) -> list[dict]:
    """Per example: the reference, the example shown, and each candidate's code and signals."""
    b = generator.bundle
    settings = replace(generator.own_settings, examples=1)
    settings = replace(settings, max_len=min(settings.max_len, b.model.config.max_len - 2))
    ids = dict(bos_id=Vocab.bos_id, eos_id=Vocab.eos_id, pad_id=Vocab.pad_id)
    rows = []
    for n, ex in enumerate(examples):
        source = b.featurizer.source(ex.prompt)
        src_ids = b.src_vocab.encode(source.tokens)
        hyps, codes = generator._write(source, src_ids, settings)
        targets = [h.tokens for h in hyps]
        whole = score_targets(b.model, src_ids, targets, **ids)
        no_prompt = score_targets(b.model, b.src_vocab.encode(source.tokens[source.prompt_len :]), targets, **ids)
        no_example = score_targets(b.model, b.src_vocab.encode(source.tokens[: source.prompt_len]), targets, **ids)
        example = source.neighbour.code if source.neighbour else ""
        close = closeness(codes, example) if example else [0.0] * len(codes)  # --rerank example's signal
        rows.append(
            {
                "prompt": ex.prompt,
                "ref": ex.code,
                "example": example,
                "cands": [
                    {
                        "code": code,
                        "beam": h.score,
                        "logprob": w.logprob / (len(h.tokens) + 1),
                        "pmi": (w.logprob - p.logprob) / (len(h.tokens) + 1),
                        "pmi_example": (w.logprob - e.logprob) / (len(h.tokens) + 1),
                        "close": c / 100,
                        "runs": run_code(code, 2.0).ok,
                    }
                    for code, h, w, p, e, c in zip(codes, hyps, whole, no_prompt, no_example, close)
                ],
            }
        )
        if (n + 1) % 25 == 0:
            log(f"{n + 1} of {len(examples)} prompts")
    return rows


def first_that_runs(row: dict, key) -> str:
    ordered = sorted(row["cands"], key=key, reverse=True)
    return next((c["code"] for c in ordered if c["runs"]), ordered[0]["code"])


def report(rows: list[dict], train) -> list[tuple[str, float, float]]:
    refs = [r["ref"] for r in rows]

    def line(name, codes):
        return name, bleu(codes, refs), 100 * train_copy_rate(codes, train)

    out = [line("beam order, first that runs (--rerank run)", [first_that_runs(r, lambda c: c["beam"]) for r in rows])]
    for signal in ("pmi", "pmi_example", "close", "logprob"):
        for w in WEIGHTS:
            codes = [first_that_runs(r, lambda c, s=signal, w=w: c["beam"] + w * c[s]) for r in rows]
            out.append(line(f"beam + {w:g} x {signal}, first that runs", codes))
    oracle = [max(r["cands"], key=lambda c: sentence_bleu(c["code"], r["ref"]))["code"] for r in rows]
    out.append(line("oracle: the candidate closest to the reference", oracle))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--artifacts", default="artifacts")
    p.add_argument("--data", default=CORPUS_PATH)
    p.add_argument("--split", default="valid", choices=["valid", "test"])
    p.add_argument("--save", default=None, help="write the candidates and their signals to this JSON file")
    p.add_argument("--load", default=None, help="score saved candidates instead of decoding again")
    args = p.parse_args(argv)
    corpus = load_corpus(args.data)
    if args.load:
        rows = json.loads(open(args.load).read())
    else:
        status = sandbox_status()
        if not status.available:
            print(f"{status.notice}: the candidates cannot be run, so nothing was measured", file=sys.stderr)
            return 2
        torch.set_num_threads(1)
        rows = candidates(Generator(args.artifacts), corpus.split(args.split), log=lambda m: print(m, file=sys.stderr))
        if args.save:
            with open(args.save, "w") as f:
                json.dump(rows, f)
    n_cands = sum(len(r["cands"]) for r in rows)
    print(f"{args.split}: {len(rows)} prompts, {n_cands} candidates")
    for name, score, copies in report(rows, corpus.split("train")):
        print(f"{score:5.1f} BLEU  {copies:5.1f}% train copies  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
