"""Decoding strategies (greedy, beam, sampling) over `Seq2Seq.step`, fairseq style.

All strategies share `LogProbRules` (the one place where tokens are banned or forced),
encode the source once, and keep every live hypothesis as one row of a batched
`DecoderState`; rows are picked with `state.reorder` (beam back-pointers, dropped
finished samples).

Scores: `Hypothesis.logprob` is the sum of the model's log-probs of the output tokens
and of the final EOS; `Hypothesis.score = logprob / (len(tokens) + 1) ** length_penalty`
(fairseq's normalisation; the +1 counts EOS). length_penalty 0 ranks by raw log-prob;
1 by mean per-token log-prob.

Lengths: `max_len` is the most output tokens (EOS not counted); at that length EOS is
forced. `min_len` is the fewest output tokens before EOS may be chosen.

Syntax guard (`DecodeSettings.syntax_guard`, needs `vocab_tokens`): every strategy takes tokens
in its own order but keeps only those that `e2p.model.syntax_guard.SyntaxGuard` accepts (the prefix
stays completable as a Python program) and EOS only where the program compiles. In greedy
and sampling, where the model's choice is to end the line or the program (<nl>, EOS) and that
is refused, what is open is closed first (the string's quote, the innermost bracket) if that is accepted. A hypothesis
that finds no acceptable token, reaches max_len, or is refused an end PATIENCE times is cut back
to its longest prefix that compiles (`Hypothesis.cut`), so every output compiles. Log-probs
recorded are still the model's own; the guard only removes candidates.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import Tensor

from e2p.constants import REBUILD_COMMAND
from e2p.errors import E2PError
from e2p.model import onnx_step
from e2p.model.fast_decoder import fast_decoder_for
from e2p.model.syntax_guard import MAX_CHECKS, GuardState, SyntaxGuard
from e2p.model.transformer import Seq2Seq, evaluating
from e2p.retired import drop_retired

# Syntax guard: a hypothesis whose best token was EOS (anywhere) or an end of line (<nl> or EOS,
# within one line) this many times, and was refused each time, is cut back and ends: the model
# wants to stop and cannot, and what it writes instead is rarely worth the wait.
PATIENCE = 8

N_ALTERNATIVES = 5  # top-k (id, prob) kept per step for the confidence view
STRATEGIES = ("greedy", "beam", "sample")


class DecodeSettingsError(E2PError, ValueError):
    """A decoding setting out of range."""


# Decoding settings measured and not kept (docs/experiments.md), with the values at which an old
# artifact's config still answers as today: the close-example rule, off.
RETIRED_SETTINGS = {"follow_close": (0.0, None), "close_similarity": None}


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


@dataclass(frozen=True)
class DecodeSettings:
    strategy: str = "beam"  # "greedy" | "beam" | "sample"
    beam_size: int = 5  # 5 is the usual sweet spot for NMT-sized models
    max_len: int = 256  # most output tokens (EOS excluded); EOS is forced here
    min_len: int = 1  # fewest output tokens before EOS is allowed (1: never empty)
    length_penalty: float = 1.0  # score = logprob / (len + 1) ** length_penalty
    temperature: float = 1.0  # sampling only: < 1 sharpens, > 1 flattens
    top_p: float = 0.95  # sampling only: nucleus mass kept
    n_best: int = 5  # hypotheses returned (at most beam_size / distinct samples)
    num_samples: int = 5  # sampling only: samples drawn, as one batch
    no_repeat_ngram: int = 0  # ban repeating any n-gram of this size (0: off)
    seed: int | None = None  # sampling only: None = different every call
    use_cache: bool = True  # False re-runs the whole prefix each step (baseline)
    syntax_guard: bool = False  # only tokens that keep the output a valid Python program
    eos_penalty: float = 0.0  # subtracted from EOS's log-prob before choosing: > 0 writes longer code
    # (the model's greedy code is about a quarter shorter than the references, which BLEU's brevity
    # penalty punishes); the log-prob recorded for the final EOS includes it
    follow_example: float = 0.0  # retrieve-and-edit: where the output's last tokens occur in the
    # retrieved example, the token that follows them there (EOS at its end) is weighted by
    # exp(follow_example) and the distribution renormalised, so the model keeps to the example
    # where it is already on it and leaves it where it is sure of something else (0: off)
    examples: int = 1  # the retrieved examples tried in turn, best first: where no candidate written
    # with one in the source runs cleanly (rerank "run"), the model writes again with the next example

    def __post_init__(self) -> None:
        def bad(msg: str) -> None:
            raise DecodeSettingsError(msg)

        if self.strategy not in STRATEGIES:
            bad(f"strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        for name in ("beam_size", "max_len", "n_best", "num_samples", "examples"):
            v = getattr(self, name)
            if not _is_int(v) or v < 1:
                bad(f"{name} must be an int >= 1, got {v!r}")
        for name in ("min_len", "no_repeat_ngram"):
            v = getattr(self, name)
            if not _is_int(v) or v < 0:
                bad(f"{name} must be an int >= 0, got {v!r}")
        if self.min_len > self.max_len:
            bad(f"min_len ({self.min_len}) must not exceed max_len ({self.max_len})")
        if not isinstance(self.eos_penalty, (int, float)) or not math.isfinite(self.eos_penalty):
            bad(f"eos_penalty must be a finite number, got {self.eos_penalty!r}")
        if (
            not isinstance(self.follow_example, (int, float))
            or not math.isfinite(self.follow_example)
            or self.follow_example < 0
        ):
            bad(f"follow_example must be a finite number >= 0, got {self.follow_example!r}")
        if not isinstance(self.length_penalty, (int, float)) or not math.isfinite(self.length_penalty):
            bad(f"length_penalty must be a finite number, got {self.length_penalty!r}")
        if (
            not isinstance(self.temperature, (int, float))
            or not math.isfinite(self.temperature)
            or self.temperature <= 0
        ):
            bad(f"temperature must be a number > 0, got {self.temperature!r}")
        if not isinstance(self.top_p, (int, float)) or not 0 < self.top_p <= 1:
            bad(f"top_p must be in (0, 1], got {self.top_p!r}")
        if self.seed is not None and (not _is_int(self.seed) or self.seed < 0):
            bad(f"seed must be None or an int >= 0, got {self.seed!r}")
        for name in ("use_cache", "syntax_guard"):
            if not isinstance(getattr(self, name), bool):
                bad(f"{name} must be True or False, got {getattr(self, name)!r}")

    @classmethod
    def from_config(cls, values: dict) -> "DecodeSettings":
        """Settings as an artifact's config stores them. Artifacts written before a setting was
        retired still carry it: at its "off" value it is dropped; at any other it changed what the
        artifact answers, so the artifact is refused with the rebuild command."""
        return cls(**drop_retired(values, RETIRED_SETTINGS, _refuse_retired_setting))


def _refuse_retired_setting(name: str, value) -> DecodeSettingsError:
    return DecodeSettingsError(
        f"this artifact decodes with {name}, which was measured and not kept (docs/experiments.md): "
        f"rebuild it with {REBUILD_COMMAND}"
    )


@dataclass
class Hypothesis:
    tokens: list[int]  # output ids, without BOS / EOS
    score: float  # logprob / (len(tokens) + 1) ** length_penalty; higher is better
    logprob: float  # sum of token_logprobs plus eos_logprob
    token_logprobs: list[float]  # model log-prob of each output token
    alternatives: list[list[tuple[int, float]]]  # per output token: top-5 (id, prob)
    eos_logprob: float = 0.0  # log-prob of the final EOS
    hit_max_len: bool = False  # True when EOS was forced at max_len (output may be cut)
    cut: bool = False  # syntax guard: cut back to its longest prefix that compiles (see module doc)
    timed_out: bool = False  # the request's time limit ended the search here (the code may stop short)


# --------------------------------------------------------------------------- log-prob rules


def describe(settings: DecodeSettings, rerank: str | None = None, pool: int = 0) -> str:
    """The decoding settings in a few words: the one description the CLI, the evaluation tables
    and the app use."""
    search = f"beam {settings.beam_size}" if settings.strategy == "beam" else settings.strategy
    if settings.strategy == "sample":
        search += f" {settings.num_samples} T={settings.temperature:g} top-p={settings.top_p:g}"
    if settings.syntax_guard:
        search += " + syntax guard"
    if settings.eos_penalty:
        search += f", EOS -{settings.eos_penalty:g}"
    if settings.follow_example:
        search += f", follow example +{settings.follow_example:g}"
    if settings.no_repeat_ngram:
        search += f", no repeated {settings.no_repeat_ngram}-grams"
    if settings.examples > 1:
        search += f", up to {settings.examples} examples"
    if rerank is None:
        return search
    text = f"{search}, rerank={rerank}" + (f", pool={pool}" if pool else "")
    # the ranker mostly answers with a train program picked whole: say so wherever it is named
    return f"retrieval: {text}" if rerank == "ranker" else text


class LogProbRules:
    """Every ban / force on next-token log-probs, in one place.

    Banned entries become -inf; the rest are left as they are (not renormalised), so
    recorded log-probs are the model's own.
    """

    def __init__(
        self,
        *,
        min_len: int,
        max_len: int,
        bos_id: int,
        eos_id: int,
        pad_id: int,
        unk_id: int | None = None,
        no_repeat_ngram: int = 0,
        banned_ids: tuple[int, ...] = (),
        eos_penalty: float = 0.0,
        follow: float = 0.0,
        example_ids: Sequence[int] = (),
        deadline: float | None = None,
    ):
        self.min_len, self.max_len = min_len, max_len
        self.deadline = deadline  # time.monotonic() by which the search ends (None: no limit)
        self.timed_out = False
        self.eos_id = eos_id
        self.banned = (
            [pad_id, bos_id] + ([unk_id] if unk_id is not None else []) + [i for i in banned_ids if i != eos_id]
        )
        self.no_repeat_ngram = no_repeat_ngram
        self.eos_penalty = eos_penalty
        self.follow = follow
        self.example = list(example_ids)
        self.follow_index = FollowIndex(self.example) if follow and self.example else None

    def at_deadline(self, step: int, s: DecodeSettings) -> DecodeSettings:
        """`s`, or where the request's time is spent, `s` ending at this step: only EOS is left (under
        the guard the code is cut back to what compiles), as at max_len. Step 0 always runs."""
        if self.deadline is None or step == 0 or step >= s.max_len or time.monotonic() < self.deadline:
            return s
        self.timed_out = True
        self.max_len, self.min_len = step, min(self.min_len, step)
        return replace(s, max_len=step, min_len=min(s.min_len, step))

    def apply(self, lprobs: Tensor, prefixes: list[list[int]]) -> Tensor:
        """lprobs (N, V) for N rows whose generated tokens so far are prefixes[i]."""
        step = len(prefixes[0]) if prefixes else 0  # all rows have the same length
        out = lprobs + self._bias(lprobs)  # the banned ids -inf, EOS less its penalty: one operation
        if step < self.min_len:
            out[:, self.eos_id] = float("-inf")
        if step >= self.max_len:  # only EOS is left
            out.fill_(float("-inf"))
            out[:, self.eos_id] = lprobs[:, self.eos_id]
        if self.follow_index is not None:
            self._follow(out, lprobs, prefixes)
        n = self.no_repeat_ngram
        if n > 0 and step >= n - 1:
            for row, toks in enumerate(prefixes):
                for tok in self._ngram_bans(toks, n):
                    if tok != self.eos_id:  # a row can always finish
                        out[row, tok] = float("-inf")
        # A row with nothing left (tiny vocabularies, heavy n-gram bans) may still end.
        if _may_be_dead(out):
            dead = torch.isinf(out).all(dim=-1)
            if dead.any():
                out[dead, self.eos_id] = lprobs[dead, self.eos_id]
        return out

    def _bias(self, lprobs: Tensor) -> Tensor:
        """(V,): -inf at every banned id, -eos_penalty at EOS, 0 elsewhere (built once per shape)."""
        key = (lprobs.size(-1), lprobs.dtype, lprobs.device)
        if getattr(self, "_bias_key", None) != key:
            bias = torch.zeros(key[0], dtype=key[1], device=key[2])
            bias[self.banned] = float("-inf")
            bias[self.eos_id] -= self.eos_penalty
            self._bias_key, self._bias_value = key, bias
        return self._bias_value

    def _follow(self, out: Tensor, lprobs: Tensor, prefixes: list[list[int]]) -> None:
        """Weight each row's continuation of the example by exp(follow), renormalised over the
        model's own distribution (so the result is still one: log-probs, alternatives and beam
        scores stay comparable). All rows at once: a handful of tensor operations per step, on
        flat indices (a row-and-token index and boolean masks cost several times as much, and
        this runs every step of every answer)."""
        V = out.size(-1)
        flat = []  # row * V + token, for each token that continues a row's place in the example
        for row, prefix in enumerate(prefixes):
            flat += [row * V + tok for tok in self.follow_index.next_tokens(prefix, self.eos_id)]
        if not flat:
            return
        idx = torch.tensor(flat)
        out_flat = out.view(-1)
        keep = [not math.isinf(v) for v in out_flat.index_select(0, idx).tolist()]  # banned stays banned
        if not all(keep):
            flat = [f for f, k in zip(flat, keep) if k]
            if not flat:
                return
            idx = torch.tensor(flat)
        r = idx // V
        mass = (
            torch.zeros(out.size(0))
            .index_add_(0, r, lprobs.reshape(-1).index_select(0, idx).float().exp())
            .clamp_(max=1.0)
        )
        shift = torch.log1p(mass.double() * math.expm1(self.follow)).float()  # (N,): 0 where nothing follows
        out_flat.index_add_(0, idx, torch.full((len(flat),), self.follow))
        out -= shift[:, None]
        # rounding must not lift a probability above one: rows that follow are capped at 0
        cap = torch.full((out.size(0), 1), float("inf")).index_fill_(0, r, 0.0)
        out.clamp_(max=cap)

    @staticmethod
    def _ngram_bans(toks: list[int], n: int) -> set[int]:
        """Tokens that would complete an n-gram already present in toks."""
        key = tuple(toks[len(toks) - (n - 1) :]) if n > 1 else ()
        return {toks[i + n - 1] for i in range(len(toks) - n + 1) if tuple(toks[i : i + n - 1]) == key}


FOLLOW_MIN = 2  # output tokens that must match the example before the rule applies (fewer only
# at the very start); one token (a bare `<nl>` or `(`) occurs in too many places to say where we are
FOLLOW_MAX = 12  # the longest match looked for: enough to tell repeated lines apart


class FollowIndex:
    """Where in an example an output stands (`positions`), with the example's n-grams indexed once:
    each lookup is a few dictionary reads, where scanning the example for every suffix of every
    row's prefix cost about 0.7 ms a beam step."""

    def __init__(self, example: Sequence[int]):
        self.example = list(example)
        # grams[m][key]: the indices j (m <= j <= len) whose m tokens before j are `key`
        self.grams: list[dict[tuple[int, ...], list[int]]] = [{}]
        for m in range(1, min(FOLLOW_MAX, len(self.example)) + 1):
            index: dict[tuple[int, ...], list[int]] = {}
            for j in range(m, len(self.example) + 1):
                index.setdefault(tuple(self.example[j - m : j]), []).append(j)
            self.grams.append(index)
        self._next: dict[tuple[int, ...], list[int]] = {}  # next_tokens, by the prefix's last tokens

    def next_tokens(self, prefix: Sequence[int], eos_id: int) -> list[int]:
        """The example's tokens that may come after `prefix` (`eos_id` where the example is done),
        sorted. Beam rows share their recent tokens, so each answer is kept, keyed by the last
        FOLLOW_MAX tokens of the prefix: all that `positions` reads."""
        key = (eos_id, *prefix[-FOLLOW_MAX:])
        found = self._next.get(key)
        if found is None:
            ex = self.example
            found = sorted({ex[j] if j < len(ex) else eos_id for j in self.positions(prefix)})
            self._next[key] = found
        return found

    def positions(self, prefix: Sequence[int]) -> frozenset[int]:
        """Where in the example the output `prefix` stands: the indices j such that example[j] would
        come next (j == len(example): the example is done), after the longest suffix of `prefix` (at
        least FOLLOW_MIN tokens, or all of a shorter prefix) found in it. Empty where the output has
        left the example. (Keeping the place where the output last followed, so that a repeated
        phrase is taken in order, was measured and not kept: docs/experiments.md.)"""
        if not self.example:
            return frozenset()
        if not prefix:
            return frozenset({0})
        shortest = min(FOLLOW_MIN, len(prefix))
        for m in range(min(FOLLOW_MAX, len(prefix), len(self.example)), shortest - 1, -1):
            found = self.grams[m].get(tuple(prefix[-m:]))
            if found:
                return frozenset(found)
        return frozenset()


# --------------------------------------------------------------------------- helpers


@dataclass
class _Partial:
    """A hypothesis under construction (one row of the decoder batch)."""

    tokens: list[int] = field(default_factory=list)
    token_logprobs: list[float] = field(default_factory=list)
    alternatives: list[list[tuple[int, float]]] = field(default_factory=list)
    eos_lps: list[float] = field(default_factory=list)  # the model's EOS log-prob before each token
    guard: GuardState | None = None  # the syntax guard's state (None: no guard)
    refused: tuple[int, int] = (0, 0)  # syntax guard: EOS refused so far, line ends refused on this line

    def extend(
        self,
        tok: int,
        lp: float,
        alts: list[tuple[int, float]],
        eos_lp: float = 0.0,
        guard: GuardState | None = None,
        refused: tuple[int, int] = (0, 0),
    ) -> "_Partial":
        return _Partial(
            self.tokens + [tok],
            self.token_logprobs + [lp],
            self.alternatives + [alts],
            self.eos_lps + [eos_lp],
            guard,
            refused,
        )

    def refusals(self, wanted: int, tok: int, eos_id: int, nl_id: int | None) -> tuple[int, int]:
        """`refused` after `tok` was taken where the model's best token was `wanted`."""
        eos, line = self.refused
        ends = wanted == eos_id or wanted == nl_id
        return eos + (wanted == eos_id and tok != eos_id), 0 if tok == nl_id else line + (ends and tok != wanted)

    def finish(self, eos_lp: float, length_penalty: float, max_len: int) -> Hypothesis:
        logprob = sum(self.token_logprobs) + eos_lp
        return Hypothesis(
            tokens=self.tokens,
            score=logprob / (len(self.tokens) + 1) ** length_penalty,
            logprob=logprob,
            token_logprobs=self.token_logprobs,
            alternatives=self.alternatives,
            eos_logprob=eos_lp,
            hit_max_len=len(self.tokens) >= max_len,
        )


def _end(hyp: _Partial, eos_lp: float, s: DecodeSettings, guard: SyntaxGuard | None) -> Hypothesis:
    """Finish `hyp` with EOS of log-prob `eos_lp`. With the guard, a program that does not compile
    as it stands (max_len reached, or no token was accepted) is first cut back to its longest
    prefix that does, which then ends with the model's EOS log-prob at that point."""
    if guard is None or guard.can_end(hyp.guard):
        return hyp.finish(eos_lp, s.length_penalty, s.max_len)
    guard.stats["cuts"] += 1
    k = guard.valid_prefix_len(hyp.tokens)
    cut = _Partial(hyp.tokens[:k], hyp.token_logprobs[:k], hyp.alternatives[:k], hyp.eos_lps[:k])
    out = cut.finish(hyp.eos_lps[k] if k < len(hyp.tokens) else eos_lp, s.length_penalty, s.max_len)
    out.hit_max_len = len(hyp.tokens) >= s.max_len
    out.cut = True
    return out


def _may_be_dead(out: Tensor) -> bool:
    """False where no row of `out` (N, V) can be all -inf: every row's maximum is finite (or NaN).
    One reduction and a read-back of N numbers, where `isinf(out).all(-1).any()` takes three."""
    return any(math.isinf(v) for v in out.amax(dim=-1).tolist())


def _alternatives(lprobs: Tensor) -> list[list[tuple[int, float]]]:
    """Top-k (id, prob) per row of lprobs (N, V); banned ids have prob 0."""
    p, ids = lprobs.topk(min(N_ALTERNATIVES, lprobs.size(-1)), dim=-1)  # (N, k)
    return [list(zip(i, q)) for i, q in zip(ids.tolist(), p.exp().tolist())]


def nucleus_filter(probs: Tensor, top_p: float) -> Tensor:
    """Keep the smallest set of most likely ids whose mass reaches top_p; renormalise.

    probs (N, V) -> (N, V). The most likely id is always kept.
    """
    if top_p >= 1.0:
        return probs
    sorted_p, order = probs.sort(dim=-1, descending=True)  # (N, V)
    mass_before = sorted_p.cumsum(dim=-1) - sorted_p
    sorted_p = sorted_p.masked_fill(mass_before >= top_p, 0.0)
    kept = torch.zeros_like(probs).scatter(-1, order, sorted_p)
    return kept / kept.sum(dim=-1, keepdim=True)


def _encode_one(model: Seq2Seq, src_ids: list[int], settings: DecodeSettings, eager: bool = False):
    """(stepper, state): what `step(last, state)` is called on, and the state after encoding.
    With the cache and not `eager`, the stepper is the model's ONNX Runtime step where one was built
    for its weights (`onnx_step.onnx_decoder_for`, as `Generator` does), else its FastDecoder (same
    maths, fewer operations); otherwise the model itself (`Seq2Seq.step`, the reference)."""
    cfg = model.config
    if not src_ids:
        raise DecodeSettingsError("cannot decode an empty source")
    if len(src_ids) > cfg.max_len:
        raise DecodeSettingsError(f"source has {len(src_ids)} tokens, more than the model's max_len {cfg.max_len}")
    if settings.max_len + 1 > cfg.max_len:
        raise DecodeSettingsError(f"max_len {settings.max_len} is too long for this model: at most {cfg.max_len - 1}")
    device = model.lm_head.weight.device
    src = torch.tensor([src_ids], dtype=torch.long, device=device)  # (1, S)
    memory, src_pad, _ = model.encode(src)
    if settings.use_cache and not eager:
        stepper = onnx_step.attached(model)  # the ONNX Runtime step, where the caller built it
        if stepper is None or bool(src_pad.any()):
            stepper = fast_decoder_for(model)
        return stepper, stepper.init_state(memory, src_pad, src, capacity=settings.max_len + 1)
    return model, model.init_state(memory, src_pad, use_cache=settings.use_cache, src=src)


# --------------------------------------------------------------------------- syntax guard


def _guard_masks(
    lprobs: Tensor,
    raw: Tensor,
    hyps: list[_Partial],
    guard: SyntaxGuard | None,
    rules: LogProbRules,
    step: int,
    max_len: int,
) -> Tensor:
    """The rules' log-probs with what the guard's cheap state bans set to -inf. At max_len the
    rules force EOS and the guard stays out (the output is cut back if it must be)."""
    if guard is None or step >= max_len:
        return lprobs
    states = [h.guard for h in hyps]
    # 0 / -inf added: what masked_fill(~allowed, -inf) gives for log-probs (never NaN or +inf)
    out = lprobs + guard.bans(states, lprobs.device, lprobs.dtype)
    if not rules.no_repeat_ngram and step >= rules.min_len:  # no ban the guard could need to undo
        return out
    if not _may_be_dead(out):
        return out
    dead = torch.isinf(out).all(dim=-1)
    if dead.any():  # the rules' bans (n-grams, min_len) left nothing the guard allows: drop them
        allowed = guard.allowed(states, lprobs.device)  # (N, V)
        again = raw.masked_fill(~allowed, float("-inf"))
        again[:, rules.banned] = float("-inf")
        out[dead] = again[dead]
    return out


def _check(guard: SyntaxGuard, gs: GuardState, tok: int, eos_id: int, forced: bool):
    """(accepted, state after tok); EOS is accepted where the program compiles, or when forced."""
    if tok == eos_id:
        return forced or guard.can_end(gs), None
    new = guard.advance(gs, tok)
    return new is not None, new


def _best_accepted(
    guard: SyntaxGuard, gs: GuardState, row: Tensor, eos_id: int, forced: bool, checks: int = MAX_CHECKS
):
    """The most likely token of `row` (V,) that the guard accepts, and the state after it (None
    for EOS); tokens it rejects become -inf in `row`. (-1, None) where it accepts none of the
    first `checks`."""
    for _ in range(checks):
        tok = int(row.argmax())
        if float(row[tok]) == float("-inf"):
            break
        ok, new = _check(guard, gs, tok, eos_id, forced)
        if ok:
            return tok, new
        row[tok] = float("-inf")
    return -1, None


def _top_accepted(guard: SyntaxGuard, gs: GuardState, lprobs: Tensor, eos_id: int, forced: bool):
    """`_best_accepted` on the one row of `lprobs` (1, V), tried first from one top-k: where the
    row's unique maximum is accepted (the usual case) nothing was set to -inf, so that top-k is
    also what `_alternatives(lprobs)` gives. (token, state, alternatives, token as a (1,) tensor);
    the last two None where the search went on in `_best_accepted` (ties, a rejection)."""
    top_p, top_i = lprobs.topk(min(N_ALTERNATIVES, lprobs.size(-1)), dim=-1)
    lps, checks = top_p[0].tolist(), MAX_CHECKS
    if lps[0] > float("-inf") and (len(lps) == 1 or lps[1] < lps[0]):  # argmax's choice: no tie, no NaN
        ids = top_i[0].tolist()
        ok, new = _check(guard, gs, ids[0], eos_id, forced)
        if ok:
            return ids[0], new, list(zip(ids, top_p.exp()[0].tolist())), top_i[0, :1]
        lprobs[0, ids[0]] = float("-inf")  # as _best_accepted's first try leaves it
        checks -= 1
    tok, new = _best_accepted(guard, gs, lprobs[0], eos_id, forced, checks)
    return tok, new, None, None


def _sampled_accepted(
    guard: SyntaxGuard,
    gs: GuardState,
    row: Tensor,
    probs: Tensor,
    tok: int,
    eos_id: int,
    forced: bool,
    gen: torch.Generator,
):
    """Like `_best_accepted` for a sample: a rejected token leaves the nucleus and the row is drawn
    again; where the nucleus holds nothing acceptable, the model's order decides."""
    for _ in range(MAX_CHECKS):
        ok, new = _check(guard, gs, tok, eos_id, forced)
        if ok:
            return tok, new
        row[tok] = float("-inf")
        probs[tok] = 0.0
        total = float(probs.sum())
        if total <= 0.0:
            break
        tok = int(torch.multinomial(probs / total, 1, generator=gen))
    return _best_accepted(guard, gs, row, eos_id, forced)


def _wanted_end(guard: SyntaxGuard, gs: GuardState, row: Tensor, wanted: int, eos_id: int, forced: bool):
    """Where the model's choice `wanted` ends the line or the program (<nl>, EOS) and the guard
    refuses it, what is open is closed first (the string's quote, the innermost bracket): the
    model wanted to stop here. (token, state), or (-1, None) where that does not apply."""
    if wanted != eos_id and wanted != guard.nl_id:
        return -1, None
    ok, new = _check(guard, gs, wanted, eos_id, forced)
    if ok:
        return wanted, new
    for tok in guard.closers(gs):
        if float(row[tok]) > float("-inf"):
            ok, new = _check(guard, gs, tok, eos_id, forced)
            if ok:
                return tok, new
    return -1, None


def _stuck(refused: tuple[int, int]) -> bool:
    return max(refused) >= PATIENCE


def _start(guard: SyntaxGuard | None) -> _Partial:
    return _Partial(guard=guard.start() if guard is not None else None)


# --------------------------------------------------------------------------- strategies


def _greedy(model, state, rules, s: DecodeSettings, bos_id, eos_id, guard=None) -> list[Hypothesis]:
    hyp = _start(guard)
    last = torch.full((1,), bos_id, dtype=torch.long, device=state.device)
    for step in range(s.max_len + 1):
        s = rules.at_deadline(step, s)
        raw, state = model.step(last, state)  # (1, V)
        lprobs = rules.apply(raw, [hyp.tokens])
        new, refused = None, (0, 0)
        if guard is None:  # one top-k and one read back: the token, its log-prob, the alternatives
            top_p, top_i = lprobs.topk(min(N_ALTERNATIVES, lprobs.size(-1)), dim=-1)
            ids, lps, probs = top_i[0].tolist(), top_p[0].tolist(), top_p[0].exp().tolist()
            tok, lp = ids[0], lps[0]
            if len(lps) > 1 and lps[1] == lp:  # a tie: argmax's choice (its first index), as elsewhere
                tok = int(lprobs[0].argmax())
            if tok == eos_id:
                return [_end(hyp, lp, s, guard)]
            hyp = hyp.extend(tok, lp, list(zip(ids, probs)), raw[0, eos_id].item(), new, refused)
            last = top_i[0, :1] if tok == ids[0] else torch.tensor([tok], device=last.device)
            continue
        wanted, forced = int(lprobs[0].argmax()), step >= s.max_len
        lprobs = _guard_masks(lprobs, raw, [hyp], guard, rules, step, s.max_len)
        tok, new = _wanted_end(guard, hyp.guard, lprobs[0], wanted, eos_id, forced)
        alts, picked = None, None
        if tok < 0:
            tok, new, alts, picked = _top_accepted(guard, hyp.guard, lprobs, eos_id, forced)
        refused = hyp.refusals(wanted, tok, eos_id, guard.nl_id)
        if tok < 0 or _stuck(refused):  # cut back and end
            return [_end(hyp, float(raw[0, eos_id]), s, guard)]
        lp = float(lprobs[0, tok])
        if tok == eos_id:
            return [_end(hyp, lp, s, guard)]
        if alts is None:
            alts = _alternatives(lprobs)[0]
        hyp = hyp.extend(tok, lp, alts, float(raw[0, eos_id]), new, refused)
        last = picked if picked is not None else torch.tensor([tok], device=last.device)
    raise AssertionError("unreachable: EOS is forced at max_len")


def _beam(model, state, rules, s: DecodeSettings, bos_id, eos_id, guard=None) -> list[Hypothesis]:
    K = s.beam_size
    beams = [_start(guard)]  # starts with one row; the first step fans out to K
    scores = torch.zeros(1, device=state.device)  # (N,) raw log-prob sums
    last = torch.full((1,), bos_id, dtype=torch.long, device=scores.device)
    finished: list[Hypothesis] = []
    for step in range(s.max_len + 1):
        s = rules.at_deadline(step, s)
        raw, state = model.step(last, state)  # (N, V)
        lprobs = rules.apply(raw, [b.tokens for b in beams])
        wanted = lprobs.argmax(dim=-1).tolist() if guard is not None else []  # each row's best token
        lprobs = _guard_masks(lprobs, raw, beams, guard, rules, step, s.max_len)
        forced = step >= s.max_len
        V = lprobs.size(-1)
        cand = (scores[:, None] + lprobs).view(-1)  # (N * V,)
        # 2K: K may end with EOS; with the guard, room for the candidates it rejects
        window = 2 * K if guard is None else 2 * K + MAX_CHECKS
        top_s, top_i = cand.topk(min(window, cand.numel()))
        # each candidate's log-prob, read back with the scores (only rejected ones change below)
        top_lp = lprobs.reshape(-1)[top_i].tolist()
        picked = []  # (row, token, score, log-prob, guard state, refusals)
        n_valid = 0  # candidates accepted so far: EOS counts only among the top K of them
        stopped = set()  # rows cut back and ended this step
        for sc, flat, lp in zip(top_s.tolist(), top_i.tolist(), top_lp):
            if sc == float("-inf") or n_valid >= 2 * K:
                break
            row, tok = divmod(flat, V)
            new, refused = None, (0, 0)
            if guard is not None:
                if row in stopped:
                    continue
                ok, new = _check(guard, beams[row].guard, tok, eos_id, forced)
                if not ok:
                    lprobs[row, tok] = float("-inf")
                    continue
                refused = beams[row].refusals(wanted[row], tok, eos_id, guard.nl_id)
                if tok != eos_id and _stuck(refused):
                    finished.append(_end(beams[row], float(raw[row, eos_id]), s, guard))  # cut back and end
                    stopped.add(row)
                    continue
            if tok == eos_id:
                if n_valid < K:  # fairseq: EOS counts only among the top K candidates
                    finished.append(_end(beams[row], lp, s, guard))
            elif len(picked) < K:
                picked.append((row, tok, sc, lp, new, refused))
            n_valid += 1
            if len(picked) >= K and n_valid >= K:
                break
        if guard is not None and not picked and not finished:  # every row is stuck: cut back and end
            eos = raw[:, eos_id].tolist()
            finished = [_end(b, eos[i], s, guard) for i, b in enumerate(beams)]
        if not picked or _beam_done(finished, picked, K, step, s.length_penalty):
            break
        alts = _alternatives(lprobs)
        eos = raw[:, eos_id].tolist()
        beams = [
            beams[row].extend(tok, lp, alts[row], eos[row], new, refused) for row, tok, _, lp, new, refused in picked
        ]
        index = torch.tensor([row for row, *_ in picked], dtype=torch.long, device=scores.device)
        state = state.reorder(index)  # back-pointers: row i continues beam rows[i]
        scores = torch.tensor([sc for _, _, sc, *_ in picked], device=scores.device)
        last = torch.tensor([tok for _, tok, *_ in picked], dtype=torch.long, device=scores.device)
    finished.sort(key=lambda h: h.score, reverse=True)
    return finished[: s.n_best]


def _beam_done(finished: list[Hypothesis], picked: list, K: int, step: int, length_penalty: float) -> bool:
    """Whether the beam search may stop: K hypotheses have ended and no live one scores better, as
    it stands, than the K-th best of them. (Stopping as soon as K have ended, fairseq's rule, loses
    the one that keeps to the example: with `follow_example`, rows that leave the example early
    often jump to its end and finish first, while the row that follows it whole, the best by far,
    is still on its way.)"""
    if len(finished) < K:
        return False
    kth = sorted((h.score for h in finished), reverse=True)[K - 1]
    best_live = max(sc for _, _, sc, *_ in picked) / (step + 2) ** length_penalty  # its step + 1 tokens and EOS
    return best_live <= kth


def _sample(model, state, rules, s: DecodeSettings, bos_id, eos_id, guard=None) -> list[Hypothesis]:
    device = state.device
    gen = torch.Generator(device=device)
    if s.seed is None:
        gen.seed()
    else:
        gen.manual_seed(s.seed)
    N = s.num_samples
    state = state.reorder(torch.zeros(N, dtype=torch.long, device=device))  # N copies
    alive = [_start(guard) for _ in range(N)]
    last = torch.full((N,), bos_id, dtype=torch.long, device=device)
    finished: list[Hypothesis] = []
    for step in range(s.max_len + 1):
        s = rules.at_deadline(step, s)
        raw, state = model.step(last, state)  # (n, V)
        lprobs = rules.apply(raw, [h.tokens for h in alive])
        lprobs = _guard_masks(lprobs, raw, alive, guard, rules, step, s.max_len)
        probs = nucleus_filter(torch.softmax(lprobs / s.temperature, dim=-1), s.top_p)
        tok = torch.multinomial(probs, 1, generator=gen).squeeze(1)  # (n,)
        toks = tok.tolist()
        states: list[GuardState | None] = [None] * len(toks)
        refused = [(0, 0)] * len(toks)
        if guard is not None:
            forced = step >= s.max_len
            for i, wanted in enumerate(toks):
                t, states[i] = _wanted_end(guard, alive[i].guard, lprobs[i], wanted, eos_id, forced)
                if t < 0:
                    t, states[i] = _sampled_accepted(
                        guard, alive[i].guard, lprobs[i], probs[i], wanted, eos_id, forced, gen
                    )
                refused[i] = alive[i].refusals(wanted, t, eos_id, guard.nl_id)
                toks[i] = -1 if _stuck(refused[i]) else t
            tok = torch.tensor([max(t, 0) for t in toks], dtype=torch.long, device=device)
        lp = lprobs.gather(1, tok[:, None]).squeeze(1).tolist()  # the model's log-prob
        eos = raw[:, eos_id].tolist()
        alts = _alternatives(lprobs)
        keep, next_alive = [], []
        for i, (t, tok_lp) in enumerate(zip(toks, lp)):
            if t < 0:  # stuck (nothing accepted, or refused too often): cut back and end
                finished.append(_end(alive[i], eos[i], s, guard))
            elif t == eos_id:
                finished.append(_end(alive[i], tok_lp, s, guard))
            else:
                keep.append(i)
                next_alive.append(alive[i].extend(t, tok_lp, alts[i], eos[i], states[i], refused[i]))
        if not keep:
            break
        index = torch.tensor(keep, dtype=torch.long, device=device)
        state = state.reorder(index)  # drop finished samples
        alive, last = next_alive, tok[index]
    unique: dict[tuple[int, ...], Hypothesis] = {}
    for h in sorted(finished, key=lambda h: h.score, reverse=True):
        unique.setdefault(tuple(h.tokens), h)
    return list(unique.values())[: s.n_best]


_STRATEGY_FNS = {"greedy": _greedy, "beam": _beam, "sample": _sample}


def decode(
    model: Seq2Seq,
    src_ids: list[int],
    settings: DecodeSettings,
    *,
    bos_id: int,
    eos_id: int,
    pad_id: int,
    unk_id: int | None = None,
    banned_ids: tuple[int, ...] = (),
    vocab_tokens: Sequence[str] | None = None,
    example_ids: Sequence[int] = (),
    deadline: float | None = None,
    eager: bool = False,
) -> list[Hypothesis]:
    """Decode one source; returns the n-best hypotheses, best (highest score) first.

    Greedy returns one; beam at most min(n_best, beam_size); sampling at most n_best
    distinct samples out of num_samples. pad, bos (and unk when given) and `banned_ids`
    (e.g. copy placeholders the prompt has no value for) are never emitted.
    `vocab_tokens`: the target vocabulary's tokens, by id; needed for `settings.syntax_guard`.
    `example_ids`: the retrieved example's code (target ids) that `settings.follow_example` follows.
    `deadline`: a `time.monotonic()` time by which the search ends as at max_len (hypotheses `timed_out`).
    `eager`: step with `Seq2Seq.step` (the reference) instead of its FastDecoder (e2p.model.fast_decoder).
    """
    rules = LogProbRules(
        min_len=settings.min_len,
        max_len=settings.max_len,
        bos_id=bos_id,
        eos_id=eos_id,
        pad_id=pad_id,
        unk_id=unk_id,
        no_repeat_ngram=settings.no_repeat_ngram,
        banned_ids=tuple(banned_ids),
        eos_penalty=settings.eos_penalty,
        follow=settings.follow_example,
        example_ids=example_ids,
        deadline=deadline,
    )
    guard = None
    if settings.syntax_guard:
        if vocab_tokens is None:
            raise DecodeSettingsError("syntax_guard needs the target vocabulary: pass vocab_tokens")
        if len(vocab_tokens) != model.config.tgt_vocab:
            raise DecodeSettingsError(
                f"vocab_tokens has {len(vocab_tokens)} tokens, the model {model.config.tgt_vocab}"
            )
        guard = SyntaxGuard.for_vocab(vocab_tokens, eos_id)
    quiet = guard.quiet() if guard is not None else contextlib.nullcontext()
    with evaluating(model), torch.inference_mode(), quiet:
        stepper, state = _encode_one(model, src_ids, settings, eager)
        hyps = _STRATEGY_FNS[settings.strategy](stepper, state, rules, settings, bos_id, eos_id, guard)
    for h in hyps:
        h.timed_out = rules.timed_out
    return hyps


def greedy_batch(
    model: Seq2Seq,
    batch_src: list[list[int]],
    max_len: int,
    bos_id: int,
    eos_id: int,
    pad_id: int,
    *,
    min_len: int = 1,
    unk_id: int | None = None,
) -> list[list[int]]:
    """Greedy-decode many sources as one padded batch; output ids without BOS/EOS.

    Same rules as `decode` with strategy="greedy" (min_len 1 by default), so each row
    equals the single-source greedy output. Finished rows leave the batch.
    """
    if not batch_src:
        return []
    if any(len(s) == 0 for s in batch_src):
        raise DecodeSettingsError("cannot decode an empty source")
    cfg = model.config
    S = max(len(s) for s in batch_src)
    if S > cfg.max_len or max_len + 1 > cfg.max_len:
        raise DecodeSettingsError(f"source length {S} / max_len {max_len} too long for model max_len {cfg.max_len}")
    rules = LogProbRules(min_len=min_len, max_len=max_len, bos_id=bos_id, eos_id=eos_id, pad_id=pad_id, unk_id=unk_id)
    device = model.lm_head.weight.device
    B = len(batch_src)
    src = torch.full((B, S), pad_id, dtype=torch.long, device=device)  # (B, S) right-padded
    for i, s in enumerate(batch_src):
        src[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    outputs: list[list[int]] = [[] for _ in range(B)]
    with evaluating(model), torch.inference_mode():
        memory, src_pad, _ = model.encode(src)
        state = model.init_state(memory, src_pad, src=src)
        alive = list(range(B))  # original index of each batch row
        last = torch.full((B,), bos_id, dtype=torch.long, device=device)
        for _ in range(max_len):  # at max_len EOS would be forced: no need to run it
            lprobs, state = model.step(last, state)  # (n, V)
            lprobs = rules.apply(lprobs, [outputs[i] for i in alive])
            toks = lprobs.argmax(dim=-1)  # (n,)
            tok_list = toks.tolist()
            keep = [j for j, t in enumerate(tok_list) if t != eos_id]
            for j in keep:
                outputs[alive[j]].append(tok_list[j])
            if not keep:
                break
            if len(keep) < len(alive):
                index = torch.tensor(keep, dtype=torch.long, device=device)
                state, toks = state.reorder(index), toks[index]
                alive = [alive[j] for j in keep]
            last = toks
    return outputs


def score_targets(
    model: Seq2Seq,
    src_ids: list[int],
    targets: list[list[int]],
    *,
    bos_id: int,
    eos_id: int,
    pad_id: int,
    length_penalty: float = 1.0,
) -> list[Hypothesis]:
    """The model's verdict on given outputs: one teacher-forced pass scores them all.

    Each target (ids without BOS/EOS) becomes a Hypothesis scored exactly as search scores
    its own (log-prob including EOS, normalised by length), so they can be ranked together.
    """
    if not targets:
        return []
    device = model.lm_head.weight.device
    n, T = len(targets), max(len(t) for t in targets) + 1
    tgt_in = torch.full((n, T), pad_id, dtype=torch.long, device=device)  # (n, T)
    for row, t in enumerate(targets):
        tgt_in[row, : len(t) + 1] = torch.tensor([bos_id] + t, dtype=torch.long)
    src = torch.tensor([src_ids], dtype=torch.long, device=device).expand(n, -1)  # (n, S)
    with evaluating(model), torch.inference_mode():
        lprobs = F.log_softmax(model(src, tgt_in).float(), dim=-1)  # (n, T, V)
    out = []
    for row, t in enumerate(targets):
        steps = lprobs[row, : len(t) + 1]  # (len+1, V): the last row predicts EOS
        gold = steps.gather(-1, torch.tensor(t + [eos_id], device=device)[:, None]).squeeze(-1)
        token_lps = gold[:-1].tolist()
        eos_lp = float(gold[-1])
        logprob = sum(token_lps) + eos_lp
        out.append(
            Hypothesis(
                tokens=list(t),
                score=logprob / (len(t) + 1) ** length_penalty,
                logprob=logprob,
                token_logprobs=token_lps,
                alternatives=_alternatives(steps[:-1]),
                eos_logprob=eos_lp,
            )
        )
    return out
