"""How one answer is chosen among the candidates: the model's outputs and, with a pool, retrieved
and edited train programs. Order by the rerank rule (model score; parsing first; the best-scored
that runs cleanly first; or the learned ranker's score with what the prompt asks for first),
running candidates in the sandbox only, within a time budget per request. `Generator`
orchestrates; the rules are here.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field, replace

from ..sandbox.runner import RunBudget, RunResult, sandbox_status
from ..syntax import parse_tree, syntax_error
from .bare_print import asks_to_print
from .completion import completed, prompt_values
from .ranking import ASKS_FOR_INPUT, asks_for_function, fits_request, reads_input

RUN_BUDGET_S = 5.0  # all sandbox runs of one request together
RUN_TIMEOUT_S = 2.0  # one candidate's run
# One request's work on an idle machine: the model writes for at most WRITE_S seconds (all its
# writings together; a search still going then ends as at the length limit), and the request's runs
# end by REQUEST_S, so that no answer takes more than about 10 s.
WRITE_S = 6.0
REQUEST_S = 9.5


@dataclass(frozen=True)
class Candidate:
    code: str
    score: float  # the model's length-normalised log-probability of this code
    parses: bool
    runs: bool | None  # None where it was not run
    origin: str = "model"  # "model": found by the search; "retrieval": a train example's code, scored by the model;
    # "edited": a train example's code with this prompt's values put in (e2p.answer.edit)
    ranker_score: float | None = None  # the ranker's score (rerank="ranker")
    shows: bool | None = None  # its run printed something (None where it was not run)
    added: str | None = None  # the completion line its run added (e2p.answer.completion), where it ran cleanly
    run: RunResult | None = field(default=None, repr=False, compare=False)  # its sandbox run (the completed program)


def runner_for(rerank: str, warnings: list[str], left: float | None = REQUEST_S) -> RunBudget | None:
    """The sandbox budget of one request where `rerank` runs candidates (at most `left` seconds, the
    request's time left; None: no limit on the runs together, each still RUN_TIMEOUT_S); None where
    it does not or where the sandbox cannot isolate (then `warnings` says that nothing was run)."""
    if rerank not in ("run", "ranker"):
        return None
    status = sandbox_status()
    if status.available:
        total = None if left is None else max(0.0, min(RUN_BUDGET_S, left))
        return RunBudget(total, RUN_TIMEOUT_S)
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


def rank(prompt, hyps, codes, origins, rerank: str, scores=None, runner: RunBudget | None = None):
    """Rows (hypothesis, code, Candidate), the answer first: by (parses, runs cleanly, model score)
    as far as `rerank` asks, or with the ranker's `scores` by `rank_by_ranker`. Candidates run in
    the sandbox through `runner` (None: nothing runs), within its budget."""
    if rerank == "ranker" and scores is not None:
        return rank_by_ranker(prompt, hyps, codes, origins, scores, runner)
    if rerank in ("run", "ranker"):  # "ranker" without a ranker file: like "run"
        return first_that_runs(hyps, codes, origins, runner, prompt)
    rows = [
        (h, code, Candidate(code, h.score, syntax_error(code) is None, None, origin))
        for h, code, origin in zip(hyps, codes, origins)
    ]
    if rerank == "score":
        return rows
    return sorted(rows, key=lambda r: (not r[2].parses, -r[2].score))  # "parse"


def first_that_runs(hyps, codes, origins, runner: RunBudget | None, prompt: str = ""):
    """Parsing first, then by the model score. Candidates run in that order, each completed where it
    defines a function it never calls (a printed call with the prompt's values: `completion`), until
    one runs cleanly and prints something (or the budget is spent); that one goes first, else the
    first that ran cleanly, else the first that did not fail. Those never run keep runs=None."""
    rows = [
        (h, code, Candidate(code, h.score, syntax_error(code) is None, None, origin))
        for h, code, origin in zip(hyps, codes, origins)
    ]
    # code that defines a function first where the prompt asks for one
    rows.sort(key=lambda r: (not is_program(r[2]), not fits_request(prompt, r[1]), -r[2].score))
    for i, (h, code, cand) in enumerate(rows):
        if runner is None or not is_program(cand):
            break
        program, line = completed(code, prompt)
        result = runner.run(program)
        runs = _ran(result)
        shows = None if result is None else bool(runs and result.stdout.strip())
        rows[i] = (h, code, replace(cand, runs=runs, shows=shows, added=line if runs else None, run=result))
        done = outcome_rank(rows[i][2], prompt) == 0  # printed (from a function that returns, where asked)
        if runs is None or (done and fits_request(prompt, code)):  # no more runs, or this one does it
            break
    return sorted(rows, key=lambda r: judged(r[2], prompt))  # stable: keeps the order among equals


def judged(cand: Candidate, prompt: str) -> tuple[bool, bool, int]:
    """How good a candidate is by the "run" rule, lowest best: it parses, defines a function where the
    prompt asks for one, and ran cleanly and printed (`outcome_rank`)."""
    return (not is_program(cand), not fits_request(prompt, cand.code), outcome_rank(cand, prompt))


def is_program(cand: Candidate) -> bool:
    """It parses and holds a statement: an empty answer (a writing cut off at once on a loaded
    machine) runs cleanly and does nothing, and must never be chosen for running cleanly."""
    if not cand.parses:
        return False
    tree = parse_tree(cand.code)
    return tree is not None and bool(tree.body)


def settled(cand: Candidate, prompt: str) -> bool:
    """Whether writing again cannot do better by the "run" rule (or may not run anything more)."""
    return is_program(cand) and (
        cand.runs is None
        or judged(cand, prompt) == (False, False, 0)
        or failed_in_the_added_call(cand, prompt)
        or quiet_class(cand, prompt)
    )


def quiet_class(cand: Candidate, prompt: str) -> bool:
    """It defines a class and ran cleanly, printing nothing: what a class definition does (nothing
    calls it, and no rule adds a use of it). Writing again with the next example would replace the
    stack the prompt asked for with that example's program (a sort, say). Not where the prompt asks
    for a function: a class is not what it asked for."""
    if not cand.runs or cand.shows or asks_for_function(prompt):
        return False
    tree = parse_tree(cand.code)
    return tree is not None and any(isinstance(node, ast.ClassDef) for node in tree.body)


def failed_in_the_added_call(cand: Candidate, prompt: str) -> bool:
    """It defines the function the prompt asks for, and its run failed in the call the completion rule
    added with arguments guessed from the parameter names (the prompt names no values: "add 15 and 27"
    failing on 15 and 27 is the code's failure), not in the model's own lines."""
    run = cand.run
    if any(prompt_values(prompt).values()):
        return False
    if run is None or run.ok or run.timed_out or not asks_for_function(prompt) or not fits_request(prompt, cand.code):
        return False
    program, line = completed(cand.code, prompt)
    if line is None:
        return False
    return f"line {len(program.rstrip().splitlines())}, in <module>" in run.stderr


def outcome_rank(cand: Candidate, prompt: str = "") -> int:
    """0 ran cleanly and printed (or stopped to read the input the prompt asks for), 1 ran cleanly
    and printed nothing, or printed from inside a function that returns nothing where the prompt asks
    for a function and not for printing, 2 not run, 3 failed."""
    if waits_for_input(cand, prompt):
        return 0
    if cand.runs and cand.shows and prints_instead_of_returning(cand, prompt):
        return 1
    return {True: 1 - bool(cand.shows), None: 2, False: 3}[cand.runs]


def prints_instead_of_returning(cand: Candidate, prompt: str) -> bool:
    """The prompt asks for a function and not for printing, and the function the completion rule
    called returns nothing: it prints its answer ("The string is a palindrome."), which a caller of
    the function never gets. Such code is not settled, so the model writes again with the next example
    (and keeps this one where that does no better)."""
    if not asks_for_function(prompt) or asks_to_print(prompt):
        return False
    return cand.added is not None and not cand.added.startswith("print(")


def waits_for_input(cand: Candidate, prompt: str) -> bool:
    """The prompt asks for the user's input, the code reads it, and its run ended there: a sandbox
    run has no user to type (stdin is closed), so that is as far as running can show it works."""
    run = cand.run
    return (
        run is not None
        and not run.ok
        and not run.timed_out
        and bool(ASKS_FOR_INPUT.search(prompt))
        and reads_input(cand.code)
        and run.stderr.rstrip().endswith("EOFError: EOF when reading a line")
    )


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
