"""One object that turns a prompt into code: `Generator(folder).generate(prompt, settings)`.

The result is frozen and holds everything the CLI and the app show: the code (raw and
formatted), whether it parses, per-token probabilities with runner-ups, the n-best list and
every attention map. The loaded model is never modified, so one Generator can serve many users.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from ..data.corpus import Example
from ..data.placeholders import restore_code
from ..data.tokenizers import PLACEHOLDER, decode_code
from ..data.vocab import Vocab
from ..errors import E2PError
from ..formatting import format_code
from ..model.decoding import DecodeSettings, decode, score_targets
from ..model.onnx_step import onnx_decoder_for
from ..model.origins import TokenOrigin, origins_from_routes
from ..sandbox.runner import RunResult
from ..syntax import syntax_error
from .answer_policy import REQUEST_S, WRITE_S, Candidate, judged, rank, ranker_scores, runner_for, settled
from .bare_print import bare_prints, only_asked_prints, wants_bare_value
from .buffers import sized_buffers
from .bundle import Bundle, load_bundle
from .completion import with_line
from .edit import edit_to_prompt
from .known_names import with_known_names, with_known_string_pieces, with_python3_names
from .ranking import lifted
from .signature import in_prompt_order

MIN_WRITE_S = 1.0  # a second writing starts only with this much of the writing time left (and as much
# as the first writing took)
MAX_PROMPT_CHARS = 2000  # the model reads at most max_prompt tokens; this bounds the work before that


# Where an answer came from, in words (GenerationResult.origin / Candidate.origin)
ORIGIN_TEXT = {
    "model": "written by the model",
    "retrieval": "retrieval: a training program chosen whole, not written by the model",
    "edited": "retrieval: a training program with this prompt's values put in, not written by the model",
}


@dataclass(frozen=True)
class GenerationResult:
    prompt: str  # as used (after cutting an over-long prompt)
    code: str  # decoded source of the chosen candidate
    formatted: str  # black-formatted where it parses
    parses: bool
    error: tuple[int, str] | None  # (line, message) where it does not compile
    origin: str  # "model", or "retrieval"/"edited" where the ranker picked a (edited) train program or no
    # model candidate parsed
    src_tokens: list[str]  # encoder input, for axis labels (placeholders shown with their values)
    tgt_tokens: list[str]  # predicted tokens, one per decoder step, the last being <eos>
    tgt_input_tokens: list[str]  # decoder input: <bos> then the generated tokens
    token_probs: list[float]  # probability of each generated token (without <eos>)
    alternatives: list[list[tuple[str, float]]]  # runner-up tokens with probabilities, per token
    candidates: list[Candidate]  # the n-best, in ranked order
    attention: dict = field(repr=False)  # encoder [L,H,S,S], decoder [L,H,T,T], cross [L,H,T,S]
    seconds: float = 0.0
    settings: DecodeSettings | None = None
    warnings: list[str] = field(default_factory=list)
    neighbour_prompt: str | None = None
    neighbour_code: str | None = None  # the code of the training example the answer was written with
    # where rules rewrote that example before the model was shown it (`rewritten`): what it was shown,
    # and what each rule did, in words; the model's writing follows this code, not the one as written
    neighbour_rewritten: str | None = None
    rewrites: tuple[str, ...] = ()
    tokens_are_code: bool = True  # False where the code is the fallback, not what tgt_tokens spell
    origins: list[TokenOrigin] | None = None  # per generated token: written, copied from the prompt or
    # from the retrieved example, with the copy gate (None without copy attention or tokens_are_code)
    added: str | None = None  # a line the completion rule added after the model's code (e2p.answer.completion)
    run: RunResult | None = field(default=None, repr=False)  # the sandbox run of `code` made to choose it
    src_ids: tuple[int, ...] = field(default=(), repr=False)  # the encoder input and the written tokens, as
    tgt_ids: tuple[int, ...] = field(default=(), repr=False)  # ids: what `Generator.explain` reads again
    prompt_len: int = field(default=0, repr=False)  # source tokens that are the prompt (before the example)


class Generator:
    def __init__(self, folder: str | Path = "artifacts", check: bool = True):
        self.bundle: Bundle = load_bundle(folder, check=check)
        self.policy = self.bundle.policy
        # decode with the ONNX Runtime step (about 1.3x faster a step) where it can be built
        onnx_decoder_for(self.bundle.model)

    @property
    def model(self):
        return self.bundle.model

    def generate(
        self,
        prompt: str,
        settings: DecodeSettings | None = None,
        rerank: str | None = None,
        attention: bool = True,
        pool: int | None = None,
        fallback: bool | None = None,
        edit: bool = True,
        time_limit: bool = True,
        explain: bool = True,
    ) -> GenerationResult:
        """`pool`: the code of the `pool` nearest train examples and (with `edit`) those programs
        with this prompt's values put in join the candidates, scored by the model; rerank="ranker"
        orders them by the learned ranker.
        `fallback`: where no candidate parses, return the nearest train example's code instead.
        `edit`: also rank the pooled programs with this prompt's values put in (e2p.answer.edit).
        `time_limit`: end the writing after WRITE_S seconds and the runs after REQUEST_S. Evaluation
        turns it off so that its answers do not depend on how loaded the machine is (max_len still
        bounds the writing, RUN_TIMEOUT_S each run).
        `explain`: also where each token came from (and with `attention`, the maps): one teacher-forced
        pass. The app leaves it for `explain` after the code is on screen.
        What is left out is the artifact's policy's for the rerank used (`Policy.resolve`)."""
        started = time.perf_counter()
        # the model's writing ends by then (`decode`'s deadline)
        deadline = time.monotonic() + WRITE_S if time_limit else None
        ask = self.policy.resolve(rerank, pool=pool, fallback=fallback, edit=edit)
        settings, rerank, pool, fallback = settings or ask.settings, ask.rerank, ask.pool, ask.fallback
        prompt = (prompt or "").strip()
        if not prompt:
            raise E2PError(
                "the prompt is empty: describe the code you want, e.g. 'write a python function to add two numbers'"
            )
        bad = _not_text(prompt)
        if bad is not None:
            raise E2PError(
                f"the prompt holds a character that is not text (an unpaired surrogate, {bad!r}): "
                "retype or remove it and try again"
            )
        warnings = []
        if len(prompt) > MAX_PROMPT_CHARS:
            warnings.append(f"the prompt was cut from {len(prompt)} to {MAX_PROMPT_CHARS} characters")
            prompt = prompt[:MAX_PROMPT_CHARS]
        b = self.bundle
        writings = settings.examples if rerank == "run" and not pool else 1
        # One retrieval for the whole request: every example it shows and the pooled train programs.
        retrieved = b.featurizer.retrieve(prompt, examples=writings, pool=pool)
        # each example as the model is shown it, and as written (by corpus line)
        written = {ex.line: ex for ex in retrieved.shown}
        rules = {ex.line: rewritten(prompt, ex) for ex in retrieved.shown}
        retrieved = replace(retrieved, shown=[rules[ex.line][0] for ex in retrieved.shown])
        source = b.featurizer.source_of(retrieved)
        if source.truncated:
            warnings.append(
                f"the prompt is longer than the model reads: only its first "
                f"{b.featurizer.config.max_prompt} tokens were used"
            )
        src_ids = b.src_vocab.encode(source.tokens)
        max_len = min(settings.max_len, b.model.config.max_len - 2)
        settings = replace(settings, max_len=max_len, min_len=min(settings.min_len, max_len))
        mapping = source.slots.mapping()
        wrote = time.monotonic()
        hyps, codes = self._write(source, src_ids, settings, deadline, prompt)
        wrote = time.monotonic() - wrote  # a writing with another example takes about as long
        origins = ["model"] * len(hyps)
        values = None
        if pool and b.retriever is not None:
            # where the source shows no example (a model without retrieval), the pool is retrieved here
            found = retrieved.found[:pool] if b.featurizer.config.retrieval else b.retriever.nearest(prompt, pool)
            edited = [
                (replace(ex, code=code), sim, rank)
                for rank, (ex, sim) in enumerate(found)
                if edit and (code := edit_to_prompt(prompt, ex)) is not None
            ]
            targets = [
                b.tgt_vocab.encode(b.featurizer.target(ex.code, source.slots))[:max_len] for ex, *_ in found + edited
            ]
            n_model = len(hyps)
            hyps += score_targets(
                b.model,
                src_ids,
                targets,
                bos_id=Vocab.bos_id,
                eos_id=Vocab.eos_id,
                pad_id=Vocab.pad_id,
                length_penalty=settings.length_penalty,
            )
            codes += [ex.code for ex, *_ in found + edited]
            origins += ["retrieval"] * len(found) + ["edited"] * len(edited)
            if rerank == "ranker" and b.ranker is not None and found:
                values = ranker_scores(b, prompt, codes[:n_model], found, edited)
        left = REQUEST_S - (time.perf_counter() - started) if time_limit else None
        runner = runner_for(rerank, warnings, left) if self.policy.runs else None  # snippets never run
        ranked = rank(prompt, hyps, codes, origins, rerank, values, runner)
        for start in range(1, writings):
            first = ranked[0][2]
            if settled(first, prompt):  # it does what was asked as far as running shows, or no more runs
                break
            # Nothing the model wrote with this example ran and printed: write again with the next one shown.
            other = b.featurizer.source_of(retrieved, start)
            if other.neighbour is None or (
                deadline is not None and deadline - time.monotonic() < max(MIN_WRITE_S, wrote)
            ):
                break
            other_ids = b.src_vocab.encode(other.tokens)
            more, more_codes = self._write(other, other_ids, settings, deadline, prompt)
            again = rank(prompt, more, more_codes, ["model"] * len(more), rerank, None, runner)
            if judged(again[0][2], prompt) < judged(first, prompt):
                ranked, source, src_ids = again + ranked, other, other_ids
            else:
                ranked += again
        best_hyp, best_code, best_cand = ranked[0]
        origin = best_cand.origin
        example = source.neighbour
        as_written = written.get(example.line, example) if example else None  # not the rewritten one
        if fallback and not best_cand.parses and as_written is not None:
            best_code, origin = as_written.code, "retrieval"
            warnings.append("no model candidate parsed: showing the nearest training example's code")
        shown = lambda toks: [mapping.get(t, t) for t in toks]  # noqa: E731
        out_tokens = b.tgt_vocab.decode(best_hyp.tokens)
        tokens_are_code = best_code == best_cand.code
        added = best_cand.added if tokens_are_code else None
        if added is not None:  # the completion line its run added, marked as the rule's in the views
            best_code = with_line(best_code, added)
        if tokens_are_code and best_hyp.timed_out:
            warnings.append(
                f"the request's time limit ({WRITE_S:g} s of writing) ended the code after "
                f"{len(best_hyp.tokens)} tokens: it may stop short of what was asked"
            )
        elif tokens_are_code and best_hyp.hit_max_len:
            warnings.append(
                f"the code reached the length limit of {settings.max_len} tokens: it may stop short "
                f"of what was asked (a longer --max-len lets it go on)"
            )
        origins, maps = None, {}
        if explain and (tokens_are_code or attention):
            # One teacher-forced pass for every view. Decoder input <bos> + tokens: row t is the step
            # that predicted token t (the last, <eos>).
            views = b.model.inspect(src_ids, [Vocab.bos_id] + best_hyp.tokens, maps=attention)
            if tokens_are_code:
                origins = origins_from_routes(views.get("routes"), src_ids, best_hyp.tokens, source.prompt_len)
            maps = {k: views[k] for k in ("encoder", "decoder", "cross")} if attention else {}
        return GenerationResult(
            prompt=prompt,
            code=best_code,
            formatted=format_code(best_code),
            parses=syntax_error(best_code) is None,
            error=syntax_error(best_code),
            origin=origin,
            src_tokens=shown(source.tokens),
            tgt_tokens=shown(out_tokens) + ["<eos>"],
            tgt_input_tokens=["<bos>"] + shown(out_tokens),
            token_probs=[math.exp(lp) for lp in best_hyp.token_logprobs],
            alternatives=[
                [(mapping.get(b.tgt_vocab.tokens[i], b.tgt_vocab.tokens[i]), p) for i, p in alts]
                for alts in best_hyp.alternatives
            ],
            candidates=[c for _, _, c in ranked],
            attention=maps,
            seconds=time.perf_counter() - started,
            settings=settings,
            warnings=warnings,
            neighbour_prompt=source.neighbour.prompt if source.neighbour else None,
            neighbour_code=as_written.code if as_written else None,
            neighbour_rewritten=example.code if example is not as_written else None,
            rewrites=rules[example.line][1] if example is not as_written else (),
            tokens_are_code=tokens_are_code,
            origins=origins,
            added=added,
            run=best_cand.run if tokens_are_code else None,
            src_ids=tuple(src_ids),
            tgt_ids=tuple(best_hyp.tokens),
            prompt_len=source.prompt_len,
        )

    def explain(self, result: GenerationResult, attention: bool = True) -> GenerationResult:
        """`result` with where each of its tokens came from (where they are its code) and, with
        `attention`, every attention map: the teacher-forced pass `generate(explain=False)` left out."""
        if not result.src_ids:
            return result
        b = self.bundle
        views = b.model.inspect(list(result.src_ids), [Vocab.bos_id] + list(result.tgt_ids), maps=attention)
        origins = result.origins
        if result.tokens_are_code:
            origins = origins_from_routes(
                views.get("routes"), list(result.src_ids), list(result.tgt_ids), result.prompt_len
            )
        maps = {k: views[k] for k in ("encoder", "decoder", "cross")} if attention else result.attention
        return replace(result, origins=origins, attention=maps)

    def _write(
        self, source, src_ids: list[int], settings: DecodeSettings, deadline=None, prompt: str = "", eager=False
    ) -> tuple[list, list[str]]:
        """The model's hypotheses for one source, and their code with the prompt's values put back.
        `eager`: decode with `Seq2Seq.step`, the reference path (the benchmark compares the two)."""
        b = self.bundle
        mapping = source.slots.mapping()
        # A placeholder the prompt holds no value for would reach the code as an undefined name.
        unfilled = [i for tok, i in b.tgt_vocab.index.items() if PLACEHOLDER.match(tok) and tok not in mapping]
        hyps = decode(
            b.model,
            src_ids,
            settings,
            bos_id=Vocab.bos_id,
            eos_id=Vocab.eos_id,
            pad_id=Vocab.pad_id,
            unk_id=Vocab.unk_id,
            banned_ids=tuple(unfilled),
            vocab_tokens=b.tgt_vocab.tokens,
            # the whole example: the source holds only what fits in max_src, and following a cut
            # example would end the code where the cut is; with this prompt's values put in where
            # the example's own prompt named others (e2p.answer.edit), so that following it keeps them
            example_ids=b.tgt_vocab.encode(self._followed(source, prompt)),
            deadline=deadline,
            eager=eager,
        )
        return hyps, [decode_code(restore_code(b.tgt_vocab.decode(h.tokens), source.slots)) for h in hyps]

    def _followed(self, source, prompt: str) -> list[str]:
        """The example's target tokens the decoding follows: its code, or where the prompt's values
        can be put in for the values its own prompt named, that edited code (abstracted again, so
        the prompt's values are the placeholders the model copies)."""
        ex = source.neighbour
        if ex is None:
            return list(source.example_tokens)
        code = edit_to_prompt(prompt, ex)
        if wants_bare_value(prompt):  # the value asked for, not the example's sentence about it
            code = bare_prints(code or ex.code) or code
            code = only_asked_prints(prompt, code or ex.code) or code  # the quotient, not the remainder too
        code = in_prompt_order(prompt, code or ex.code) or code  # f(radius, height) where the prompt says so
        index = self.bundle.tgt_vocab.index
        code = with_known_names(code or ex.code, index.__contains__) or code  # names the model can write
        code = with_python3_names(code or ex.code) or code  # input, not Python 2's raw_input
        tokens = list(source.example_tokens) if code is None else self.bundle.featurizer.target(code, source.slots)
        return with_known_string_pieces(tokens, index.__contains__)  # "aeiouAEIOU" as `aeiou`, `AEIOU`


# What each rule of `rewritten` did to the example, in the words the app shows
SIZED = "its zero-filled result sized from its inputs, not written out for its own data"
LIFTED = "a script, shown as the function it computes: its inputs the parameters, its printed value returned"


def rewritten(prompt: str, example: Example) -> tuple[Example, tuple[str, ...]]:
    """`example` as the model is shown it, and what was done to it: its zero-filled results sized
    from its inputs (e2p.answer.buffers), and where the prompt asks for a function and it is a
    script, the function it computes (e2p.answer.lift)."""
    code, done = example.code, []
    if (sized := sized_buffers(code)) is not None:
        code, done = sized, [SIZED]
    if (function := lifted(prompt, code)) is not None:
        code, done = function, done + [LIFTED]
    return (replace(example, code=code), tuple(done)) if done else (example, ())


def set_threads(n: int = 1) -> None:
    """Limit torch's threads (a web server shares few cores among users)."""
    torch.set_num_threads(max(1, n))


def _not_text(prompt: str) -> str | None:
    """The first character UTF-8 cannot encode (a lone surrogate, as a broken paste or an argv of
    invalid bytes gives), or None: the tokenizer, the vocabulary and the page all need UTF-8."""
    try:
        prompt.encode("utf-8")
    except UnicodeEncodeError as e:
        return prompt[e.start]
    return None
