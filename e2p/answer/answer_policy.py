"""How one answer is chosen among the candidates: the model's outputs and, with a pool, retrieved
and edited train programs. Order by the rerank rule (model score; parsing first; running cleanly
first; consensus among the candidates, or closeness to the retrieved example the model followed
(alone, or as a nudge to the model's score), then running cleanly; or the learned ranker's score with
what the prompt asks for first), running candidates in the sandbox only, within a time budget per
request. `Generator` orchestrates; the rules are here.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, replace

from ..constants import NEAR_WEIGHT
from ..evaluation.metrics import bleu_against, bleu_against_others
from ..syntax import syntax_error
from .probe import probed
from .ranking import ASKS_FOR_INPUT, fits_request, reads_input
from .sandbox import RunBudget, RunResult, sandbox_status

RUN_BUDGET_S = 5.0  # all sandbox runs of one request together
RUN_TIMEOUT_S = 2.0  # one candidate's run
# the rules that run candidates in their order until one runs cleanly
RUN_FIRST_CLEAN = ("run", "consensus", "example", "near", "output")
PRINTS = re.compile(r"\bprint\s*\(")  # rerank "output": the example prints, so the answer should


@dataclass(frozen=True)
class Candidate:
    code: str
    score: float  # the model's length-normalised log-probability of this code
    parses: bool
    runs: bool | None  # None where it was not run
    origin: str = "model"  # "model": found by the search; "retrieval": a train example's code, scored by the model;
    # "edited": a train example's code with this prompt's values put in (e2p.answer.edit)
    ranker_score: float | None = None  # the ranker's score (rerank="ranker")


def runner_for(rerank: str, warnings: list[str]) -> RunBudget | None:
    """The sandbox budget of one request where `rerank` runs candidates; None where it does not
    or where the sandbox cannot isolate (then `warnings` says that nothing was run)."""
    if rerank not in (*RUN_FIRST_CLEAN, "agree", "ranker"):
        return None
    status = sandbox_status()
    if status.available:
        return RunBudget(RUN_BUDGET_S, RUN_TIMEOUT_S)
    warnings.append(f"{status.notice}; the answer was chosen without running anything")
    return None


def ranker_scores(bundle, prompt: str, model_codes: list[str], found, edited) -> list[float]:
    """The ranker's score of every candidate, in candidate order (model, retrieved, edited); the
    model's outputs get the ranker's `model_offset` (chosen on valid)."""
    top, best = found[0][0], found[0][1]
    hits = (
        [(replace(top, code=code), best) for code in model_codes] + list(found) + [(ex, sim) for ex, sim, _ in edited]
    )
    ranks = [0] * len(model_codes) + list(range(len(found))) + [rank for *_, rank in edited]
    scores = bundle.ranker.scores(bundle.ranker_features.rows(prompt, hits, ranks=ranks, best=best))
    offsets = [bundle.ranker.model_offset] * len(model_codes) + [0.0] * (len(found) + len(edited))
    return [float(v + o) for v, o in zip(scores, offsets)]


def rank(
    prompt, hyps, codes, origins, rerank: str, scores=None, runner: RunBudget | None = None, example: str | None = None
):
    """Rows (hypothesis, code, Candidate), the answer first: by (parses, runs cleanly, model score)
    as far as `rerank` asks, or with the ranker's `scores` by `rank_by_ranker`. Candidates run in
    the sandbox through `runner` (None: nothing runs), within its budget. `example`: the retrieved
    program the candidates were written after (rerank "example", "near" and "output"; without one,
    like "run")."""
    if rerank == "ranker" and scores is not None:
        return rank_by_ranker(prompt, hyps, codes, origins, scores, runner)
    if rerank in ("run", "ranker"):  # "ranker" without a ranker file: like "run"
        return first_that_runs(hyps, codes, origins, runner)
    if rerank == "consensus":
        return first_that_runs(hyps, codes, origins, runner, consensus(codes))
    if rerank == "example":
        return first_that_runs(hyps, codes, origins, runner, closeness(codes, example) if example else None)
    if rerank == "output":
        return first_that_runs(hyps, codes, origins, runner, want_output=bool(example and PRINTS.search(example)))
    if rerank == "near":
        return first_that_runs(hyps, codes, origins, runner, nearer(hyps, codes, example) if example else None)
    rows, outputs = [], []
    for h, code, origin in zip(hyps, codes, origins):
        parses = syntax_error(code) is None
        result = run_probed(runner, code) if runner is not None and parses and rerank == "agree" else None
        runs = None if result is None else result.ok  # None: not run, or the run budget is spent
        outputs.append(result.stdout.strip() if runs else "")
        rows.append((h, code, Candidate(code, h.score, parses, runs, origin)))
    if rerank == "agree":
        return [rows[i] for i in agreement_order(rows, outputs)]
    if rerank == "score":
        return rows
    return sorted(rows, key=lambda r: (not r[2].parses, -r[2].score))  # "parse"


def first_that_runs(
    hyps, codes, origins, runner: RunBudget | None, gains: list[float] | None = None, want_output: bool = False
):
    """Parsing first, then by `gains` (default: the model score); candidates run in that order only
    until one runs cleanly (or the budget is spent), and the first that did not fail goes first.
    With `want_output`, running cleanly means printing something too, and the first that ran
    cleanly but printed nothing goes first only where none printed. Those never run keep runs=None."""
    gains = gains or [h.score for h in hyps]
    rows = [
        (h, code, Candidate(code, h.score, syntax_error(code) is None, None, origin))
        for h, code, origin in zip(hyps, codes, origins)
    ]
    order = sorted(range(len(rows)), key=lambda i: (not rows[i][2].parses, -gains[i], -rows[i][2].score))
    rows = [rows[i] for i in order]
    chosen = None
    for i, (h, code, cand) in enumerate(rows):
        if runner is None or not cand.parses:
            break
        result = runner.run(code)
        runs = _ran(result)
        rows[i] = (h, code, replace(cand, runs=runs))
        if runs is None:  # nothing more may run
            break
        if runs and (not want_output or result.stdout.strip()):
            chosen = i
            break
    if chosen:  # past candidates that ran cleanly but printed nothing
        rows.insert(0, rows.pop(chosen))
    return sorted(rows, key=lambda r: (not r[2].parses, r[2].runs is False))  # stable: keeps the order


def consensus(codes: list[str]) -> list[float]:
    """Minimum Bayes risk decoding with BLEU as the gain (Kumar & Byrne 2004): each candidate's mean
    sentence BLEU against the other candidates, which stand in for the unknown reference. The
    candidate that shares most with the rest goes first: a consensus of the search, which is less
    often cut short than the best-scoring one. Ties (and a single candidate) keep the model's order."""
    return bleu_against_others(codes)


def closeness(codes: list[str], example: str) -> list[float]:
    """Each candidate's sentence BLEU against the retrieved example it was written after: the beam's
    candidates differ where the model left the example, and on valid its departures cost more
    than they gained (a candidate that keeps closer to a good neighbour scores higher against the
    unknown reference). Ties keep the model's order."""
    return bleu_against(codes, example)


def nearer(hyps, codes: list[str], example: str) -> list[float]:
    """The model's score, nudged towards the retrieved example: `NEAR_WEIGHT` x sentence BLEU / 100
    against it. Between beam candidates of near-equal score the one that keeps closer to the example
    goes first, without the pull of `closeness` alone, which turns more answers into the example."""
    return [h.score + NEAR_WEIGHT * c / 100 for h, c in zip(hyps, closeness(codes, example))]


def agreement_order(rows, outputs: list[str]) -> list[int]:
    """Execution agreement (MBR-exec): parsing, then running cleanly, then the number of candidates
    that printed the same output, then the model score. An empty output agrees with nothing: a
    program that prints nothing shows nothing of what it computes."""
    support = Counter(out for out in outputs if out)

    def key(i):
        cand = rows[i][2]
        return (not cand.parses, cand.runs is False, -support.get(outputs[i], 1), -cand.score)

    return sorted(range(len(rows)), key=key)


def rank_by_ranker(prompt, hyps, codes, origins, scores, runner: RunBudget | None):
    """By the ranker's score, code that defines a function first where the prompt asks for
    one; the first candidate in that order that parses and runs cleanly (or reads input the
    prompt asks for) goes first. Only candidates up to it are run."""
    asks_input = bool(ASKS_FOR_INPUT.search(prompt))
    parses = [syntax_error(code) is None for code in codes]
    order = sorted(range(len(hyps)), key=lambda i: (not parses[i], not fits_request(prompt, codes[i]), -scores[i]))
    rows, chosen = [], None
    for i in order:
        runs = None
        if chosen is None and parses[i]:
            if asks_input and reads_input(codes[i]):
                chosen = len(rows)
            elif runner is None:  # nothing may run: the best that parses
                chosen = len(rows)
            else:
                runs = _ran(runner.run(codes[i]))
                chosen = len(rows) if runs else None
        rows.append((hyps[i], codes[i], Candidate(codes[i], hyps[i].score, parses[i], runs, origins[i], scores[i])))
    if chosen:
        rows.insert(0, rows.pop(chosen))
    return rows


def _ran(result: RunResult | None) -> bool | None:
    """Whether a sandbox run went cleanly; None where the request's run budget was spent (no run)."""
    return None if result is None else result.ok


def run_probed(runner: RunBudget, code: str) -> RunResult | None:
    """`code` run with a call of each function it defines and never calls (`e2p.answer.probe`), so
    that a body that uses an undefined name fails. Where the guessed inputs make the calls run out
    of time, the program is judged as written."""
    probe = probed(code)
    result = runner.run(probe or code)
    if probe is not None and result is not None and result.timed_out:
        result = runner.run(code)
    return result
