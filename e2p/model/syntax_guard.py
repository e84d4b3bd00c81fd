"""Decoding that can only produce valid Python (issue 10, lever 3).

A `SyntaxGuard` is built once per target vocabulary; every live hypothesis carries a `GuardState`.
At each decoding step:

1. `allowed(states)` gives, per hypothesis, a vocabulary-wide boolean mask from the cheap
   state of the token stream: open brackets, inside a string (which quote, raw / bytes / f,
   a pending backslash, the f-string's field state), indentation depth, whether a block header
   was just closed by `<nl>` (only `<indent>` may follow), whether the line is empty (no `<nl>`,
   `<dedent>` only there). Masks are built once per distinct state key and cached, so a step
   costs one dictionary look-up per hypothesis and a `torch.stack`; decoding adds them to the
   log-probs as rows of 0 / -inf (`bans`), a sixth of what `masked_fill` takes.
2. The decoder proposes tokens in its own order; `advance(state, token)` accepts one only if the
   decoded prefix is still completable as a program, and returns the next state. Outside strings
   the check is one `compile()` of the current top-level statement (with open brackets closed):
   the prefix is completable where it compiles or where the first error lies at or after its end
   (the parser ran out of input, not into a wrong token). A `<nl>` must end a complete statement
   (a header gets a `pass` body and an open `try` a `finally` for the check; compiler errors
   such as `return` outside a function count). String content is checked character by character
   (no stray quote, newline, NUL, non-ASCII in bytes, unsupported escapes), and an f-string
   field's expression is compiled on its own. Within one `quiet` block (one decode) compile()'s
   outcomes are kept: beams that differ only in earlier statements compile the same text. The
   current line's text is kept rendered token by token as `decode_code` would write it.
3. `can_end(state)`: EOS only where the whole decoded program compiles.
4. Where no token is accepted (or the length limit forces an end), `valid_prefix_len` cuts the
   output back to the longest prefix that ends a line and compiles, so the result always compiles;
   an empty program is the last resort.

The text checked is what the generator will show: `decode_code` of the tokens, with the copy
placeholders standing for the values `restore_code` puts back (a number for NUMk, a string
literal for STRk outside strings, NAMEk stays a name), so the restored program compiles too.
"""

from __future__ import annotations

import ast
import contextlib
import keyword
import re
import string
import threading
import tokenize
import warnings
from collections import Counter
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from ..data.tokenizers import (
    CONT,
    DEDENT,
    INDENT,
    NL,
    PLACEHOLDER,
    STR_CLOSE_PREFIX,
    STR_OPEN_PREFIX,
    _needs_space,
    decode_code,
)

FILENAME = "<e2p-syntax-guard>"  # the file name of every compile() the guard runs
_QUIET = threading.local()  # .compiled: compile() outcomes kept by this thread's outermost `SyntaxGuard.quiet`
_MISSING = object()

MAX_CHECKS = 64  # most tokens one hypothesis tries per step before it is cut back and ends
MAX_COMPILED = 1 << 14  # compile() outcomes one `quiet` block keeps (all dropped when full)

# token kinds
(
    BANNED,
    EOS,
    NEWLINE,
    INDENT_K,
    DEDENT_K,
    OPEN,
    CLOSE,
    CONT_K,
    WORD,
    NUM_PH,
    STR_PH,
    NAME_PH,
    NUMBER,
    OP,
    OPEN_BR,
    CLOSE_BR,
    TEXT,
) = range(17)
_WORDLIKE = (WORD, NAME_PH, CONT_K)  # a `##` piece may extend these
_NOT_IN_STRINGS = (BANNED, EOS, NEWLINE, INDENT_K, DEDENT_K)  # inside a string every other token is text
_SPECIAL_CHARS = set("\\'\"{}()[]!:=#\r\n\x00")  # characters with a meaning inside strings or f-string fields
_CODE = (WORD, NUM_PH, STR_PH, NAME_PH, NUMBER, OP, OPEN_BR, OPEN)  # may appear outside strings

_QUOTES = ('"""', "'''", '"', "'")
_PREFIXES = {"", "r", "u", "f", "b", "br", "rb", "fr", "rf"}
_LETTERS = string.ascii_letters
_PAIRS = {"(": ")", "[": "]", "{": "}"}
_OPERATORS = set(tokenize.EXACT_TOKEN_TYPES) - set("()[]{}")
_NUMBER = re.compile(tokenize.Number)
_CONT_PIECE = re.compile(r"\w+")
_SPECIAL = re.compile(r"<[a-z]+>")
_CHAIN = {"elif", "else", "except", "finally"}  # lines that continue the statement above
MAX_COMPLETIONS = 6  # completions _prefix_ok tries for one prefix
NUM_TEXT = "1"  # what a number placeholder is checked as (restore_code puts a numeral there)
STR_TOKENS = (STR_OPEN_PREFIX + "'", "s", STR_CLOSE_PREFIX + "'")  # ... and a string placeholder

# f-string field states
LIT, BRACE_OPEN, BRACE_CLOSE, EXPR, BANG, CONV, SPEC = range(7)


class StrState(NamedTuple):
    """Inside a string literal: what may come next."""

    quote: str
    raw: bool
    bytes: bool
    fmt: bool
    esc: bool = False  # the last character was an unescaped backslash
    hexleft: int = 0  # hex digits an escape (`\x`, `\u`, `\U`) still needs
    qrun: int = 0  # triple-quoted: unescaped quote characters just before (at most 2)
    fmode: int = LIT  # f-strings: where in a replacement field we are
    expr: str = ""  # f-strings: the field's expression so far
    expr_br: str = ""  # ... its open brackets
    expr_q: str = ""  # ... the quote of a string open inside it


class GuardState:
    """What the guard knows about one hypothesis. Not modified once `advance` returns it (each
    token makes a new one with `_evolve`), apart from its cached `can_end` verdict."""

    __slots__ = (
        "done",
        "seg",
        "seg_lines",
        "depth",
        "line",
        "first",
        "brackets",
        "string",
        "need_indent",
        "after_indent",
        "prev",
        "colon_end",
        "tries",
        "after_decorator",
        "must_extend",
        "_end",
        "_key",
        "_text",
        "_render",
    )

    def __init__(self):
        self.done = ""  # text of finished top-level statements
        self.seg = ""  # finished lines of the current top-level statement (the part that is compiled)
        self.seg_lines = 0
        self.depth = 0  # indentation depth, as decode_code counts it
        self.line: tuple[str, ...] = ()  # the current line's tokens, placeholders substituted
        self.first = ""  # the current line's first token
        self.brackets = ""  # open brackets outside strings
        self.string: StrState | None = None
        self.need_indent = False  # a header line just ended: only <indent> may follow
        self.after_indent = False  # <indent> was the last token: a statement must follow
        self.prev = -1  # kind of the last token
        self.colon_end = False  # the line ends with a `:` outside brackets (a block header)
        self.tries: tuple[int, ...] = ()  # depths of `try:` headers still waiting for except/finally
        self.after_decorator = False  # the last line was a decorator
        self.must_extend = False  # a keyword that is wrong as a keyword: only a `##` piece may follow
        self._end: bool | None = None  # cached can_end
        self._key: tuple | None = None  # cached SyntaxGuard._key
        self._text: str | None = None  # cached SyntaxGuard._line_text
        self._render: _Render | None = _EMPTY_LINE  # the line as decode_code builds it (None: ask decode_code)

    def _evolve(self, **changes) -> "GuardState":
        new = GuardState.__new__(GuardState)
        new.done = self.done
        new.seg = self.seg
        new.seg_lines = self.seg_lines
        new.depth = self.depth
        new.line = self.line
        new.first = self.first
        new.brackets = self.brackets
        new.string = self.string
        new.need_indent = self.need_indent
        new.after_indent = self.after_indent
        new.prev = self.prev
        new.colon_end = self.colon_end
        new.tries = self.tries
        new.after_decorator = self.after_decorator
        new.must_extend = self.must_extend
        new._end = None
        new._key = None
        new._text = None
        # a new line without its rendering falls back to decode_code
        new._render = self._render if "line" not in changes else None
        for name, value in changes.items():
            setattr(new, name, value)
        return new


class _Render(NamedTuple):
    """A line part-way through `decode_code`: its pieces joined, the token before (for spacing),
    the quote of a string still open, and whether there is any piece at all."""

    raw: str
    prev: str
    quote: str | None
    pieces: bool


_EMPTY_LINE = _Render("", "", None, False)
_LINE_BREAKS = (NL, INDENT, DEDENT)


def _rendered(r: _Render | None, tokens: Sequence[str]) -> _Render | None:
    """`r` after `tokens`, exactly as `decode_code`'s loop goes on within one line; None where a
    token would end the line (or `r` is None: the caller asks decode_code itself)."""
    if r is None:
        return None
    raw, prev, quote, pieces = r
    for tok in tokens:
        if tok in _LINE_BREAKS:
            return None
        if quote is not None:
            if tok == STR_CLOSE_PREFIX + quote:
                raw, quote, prev = raw + quote, None, '"'
            else:
                raw += tok
            pieces = True
            continue
        if tok.startswith(STR_OPEN_PREFIX) and len(tok) > 1:
            body = tok[len(STR_OPEN_PREFIX) :]
            q = body.lstrip(_LETTERS)
            quote = q if q in _QUOTES else '"'
            raw += (" " if _needs_space(prev, "x") else "") + body
            prev = "x"
        elif tok.startswith(STR_CLOSE_PREFIX):
            continue  # decode_code: nothing to close
        elif tok.startswith(CONT) and len(tok) > len(CONT):
            prev = tok[len(CONT) :]
            raw += prev
        else:
            raw += (" " if _needs_space(prev, tok) else "") + tok
            prev = tok
        pieces = True
    return _Render(raw, prev, quote, pieces)


def _indent(depth: int) -> str:
    return "    " * depth


class SyntaxGuard:
    def __init__(self, tokens: Sequence[str], eos_id: int):
        self.tokens = list(tokens)
        self.eos_id = eos_id
        self.size = len(self.tokens)
        self.kind = [self._classify(i, t) for i, t in enumerate(self.tokens)]
        self._index = {t: i for i, t in enumerate(self.tokens)}
        self.nl_id = self._index.get(NL)  # None in a vocabulary without <nl>
        self.outside = [self._outside_text(t, k) for t, k in zip(self.tokens, self.kind)]
        self.inside = [NUM_TEXT if k == NUM_PH else t for t, k in zip(self.tokens, self.kind)]
        kinds = torch.tensor(self.kind)
        self._code = torch.zeros(self.size, dtype=torch.bool)
        for k in _CODE:
            self._code |= kinds == k
        self._cont = kinds == CONT_K
        self._closer = {c: torch.tensor([t == c for t in self.tokens]) for c in ")]}"}
        self._single = {k: kinds == k for k in (NEWLINE, INDENT_K, DEDENT_K, EOS)}
        # text that is fine anywhere in a string's literal part or a field's expression
        self._plain = torch.tensor(
            [
                k not in _NOT_IN_STRINGS
                and t.isascii()
                and not _SPECIAL_CHARS & set(t)
                and not t.startswith(STR_CLOSE_PREFIX)
                for t, k in zip(self.tokens, self.kind)
            ]
        )
        self._not_plain = [i for i, p in enumerate(self._plain.tolist()) if not p]
        self._masks: dict[tuple, Tensor] = {}
        self._device_masks: dict[tuple, Tensor] = {}
        self._bans: dict[tuple, Tensor] = {}  # (key, device, dtype) -> (V,) 0 where allowed, -inf where not
        self._lock = threading.Lock()
        self.stats: Counter = Counter()  # compiles, rejections, cuts (approximate under threads)

    # ----------------------------------------------------------------------- construction

    _CACHE: dict[tuple, "SyntaxGuard"] = {}

    @classmethod
    def for_vocab(cls, tokens: Sequence[str], eos_id: int) -> "SyntaxGuard":
        """One guard per vocabulary (its masks are cached in it)."""
        key = (tuple(tokens), eos_id)
        guard = cls._CACHE.get(key)
        if guard is None:
            guard = cls._CACHE[key] = cls(tokens, eos_id)
        return guard

    def _classify(self, i: int, t: str) -> int:
        if i == self.eos_id:
            return EOS
        if t == NL:
            return NEWLINE
        if t == INDENT:
            return INDENT_K
        if t == DEDENT:
            return DEDENT_K
        if _SPECIAL.fullmatch(t) or not t:
            return BANNED
        if PLACEHOLDER.match(t):
            return {"N": NUM_PH, "S": STR_PH}[t[0]] if not t.startswith("NAME") else NAME_PH
        if t.startswith(STR_OPEN_PREFIX):
            body = t[len(STR_OPEN_PREFIX) :]
            quote = body.lstrip(_LETTERS)
            prefix = body[: len(body) - len(quote)]
            return OPEN if quote in _QUOTES and prefix.lower() in _PREFIXES else TEXT
        if t.startswith(STR_CLOSE_PREFIX):
            return CLOSE if t[len(STR_CLOSE_PREFIX) :] in _QUOTES else TEXT
        if t.startswith(CONT) and len(t) > len(CONT):
            return CONT_K if _CONT_PIECE.fullmatch(t[len(CONT) :]) else TEXT
        if t in _PAIRS:
            return OPEN_BR
        if t in _PAIRS.values():
            return CLOSE_BR
        if t.isidentifier():
            return WORD
        if _NUMBER.fullmatch(t):
            return NUMBER
        if t in _OPERATORS:
            return OP
        return TEXT  # only ever inside a string

    @staticmethod
    def _outside_text(t: str, kind: int) -> tuple[str, ...]:
        if kind == NUM_PH:
            return (NUM_TEXT,)
        if kind == STR_PH:
            return STR_TOKENS
        return (t,)

    def start(self) -> GuardState:
        return GuardState()

    @staticmethod
    @contextlib.contextmanager
    def quiet():
        """Silence the warnings the guard's own compile() calls raise (`"\\d"`, `x is 1`): noise
        here, and under `-W error` they would turn valid programs into rejected ones.
        Within the outermost such block (one `decode`, one `replay`) this thread keeps compile()'s
        outcomes and reuses them: beams that differ only in earlier statements compile the same text.
        Nowhere else (a warning filter could change an outcome), and not beyond the block."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=re.escape(FILENAME) + "$")
            outermost = getattr(_QUIET, "compiled", None) is None
            if outermost:
                _QUIET.compiled = {}
            try:
                yield
            finally:
                if outermost:
                    _QUIET.compiled = None

    def closers(self, st: GuardState) -> list[int]:
        """Tokens that close what is open: the string's closing quote, else the innermost bracket's
        closer (where the vocabulary has it). Tried first when the model wants to end a line."""
        if st.string is not None:
            want = STR_CLOSE_PREFIX + st.string.quote
        elif st.brackets:
            want = _PAIRS[st.brackets[-1]]
        else:
            return []
        i = self._index.get(want)
        return [] if i is None else [i]

    # ----------------------------------------------------------------------- masks

    def _key(self, st: GuardState) -> tuple:
        key = st._key
        if key is None:
            key = st._key = self._state_key(st)
        return key

    def _state_key(self, st: GuardState) -> tuple:
        s = st.string
        if s is not None:
            br, q = (s.expr_br, s.expr_q) if s.fmode == EXPR else ("", "")
            return ("s", s.quote, s.raw, s.bytes, s.fmt, s.esc, s.hexleft, s.qrun, s.fmode, br, q)
        if st.need_indent:
            return ("i",)
        if st.must_extend:
            return ("c",)
        empty = not st.line
        return (
            "o",
            empty and st.depth > 0 and not st.after_indent,
            not st.after_indent and not st.brackets,
            not empty and not st.brackets,
            st.brackets[-1:],
            st.prev in _WORDLIKE,
        )

    def _build(self, key: tuple) -> Tensor:
        if key[0] == "i":
            return self._single[INDENT_K].clone()
        if key[0] == "c":
            return self._cont.clone()
        if key[0] == "o":
            _, dedent_ok, eos_ok, nl_ok, top, wordlike = key
            m = self._code.clone()
            if top:
                m |= self._closer[_PAIRS[top]]
            if wordlike:
                m |= self._cont
            for ok, k in ((dedent_ok, DEDENT_K), (eos_ok, EOS), (nl_ok, NEWLINE)):
                if ok:
                    m |= self._single[k]
            return m
        _, quote, raw, is_bytes, fmt, esc, hexleft, qrun, fmode, br, q = key
        s = StrState(quote, raw, is_bytes, fmt, esc, hexleft, qrun, fmode, "x" if fmode == EXPR else "", br, q)
        close = STR_CLOSE_PREFIX + quote
        if fmode in (LIT, EXPR, SPEC) and not esc and not hexleft:  # plain text is fine: look at the rest
            allowed, todo = self._plain.clone(), self._not_plain
        else:
            allowed, todo = torch.zeros(self.size, dtype=torch.bool), range(self.size)
        for i in todo:
            t, k = self.tokens[i], self.kind[i]
            if t == close:
                allowed[i] = self._closes(s)
            elif k not in _NOT_IN_STRINGS:
                allowed[i] = self._feed(s, self.inside[i], check=False) is not None
        return allowed

    def mask_for(self, st: GuardState, device: torch.device | str = "cpu") -> Tensor:
        """(V,) bool: the tokens the cheap state allows (a superset of what `advance` accepts)."""
        key = self._key(st)
        dkey = (key, device)
        m = self._device_masks.get(dkey)
        if m is None:
            with self._lock:
                base = self._masks.get(key)
                if base is None:
                    base = self._masks[key] = self._build(key)
                m = self._device_masks[dkey] = base.to(device)
        return m

    def allowed(self, states: Sequence[GuardState], device: torch.device | str = "cpu") -> Tensor:
        """(N, V) bool masks, one row per state."""
        if len(states) == 1:
            return self.mask_for(states[0], device)[None]
        return torch.stack([self.mask_for(st, device) for st in states])

    def bans(
        self, states: Sequence[GuardState], device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
    ) -> Tensor:
        """(N, V) of `dtype`: 0 where `allowed`, -inf where not. Adding it to log-probs bans what
        the masks ban (as `masked_fill(~allowed, -inf)` does for anything but NaN and +inf) in
        one cheap addition (a sixth of masked_fill's time); each row is built once per state key."""
        rows = []
        for st in states:
            bkey = (self._key(st), device, dtype)
            row = self._bans.get(bkey)
            if row is None:
                banned = ~self.mask_for(st, device)
                row = torch.zeros(self.size, dtype=dtype, device=device).masked_fill_(banned, float("-inf"))
                self._bans[bkey] = row
            rows.append(row)
        return rows[0][None] if len(rows) == 1 else torch.stack(rows)

    # ----------------------------------------------------------------------- checks

    def _diagnose(self, text: str, end: tuple[int, int], mode: str = "exec", flags: int = 0) -> tuple[bool, str]:
        """(passes, message): `text` passes where it compiles (message "") or where its first
        error lies at or after `end` (line, 0-based column): the parser ran out of input, it did
        not run into a wrong token."""
        out = self._compile(text, mode, flags)
        if out is None:
            return True, ""
        lineno, offset, msg = out
        if lineno is False:  # not a SyntaxError
            return False, msg
        return lineno is not None and (lineno, (offset or 1) - 1) >= end, msg

    def _compile(self, text: str, mode: str = "exec", flags: int = 0) -> tuple | None:
        """compile()'s verdict on `text`: None where it compiles, else (line, offset, message) of
        the SyntaxError, or (False, None, message) for another error. Kept within `quiet`."""
        cache = getattr(_QUIET, "compiled", None)
        key = (text, mode, flags)
        if cache is not None:
            out = cache.get(key, _MISSING)
            if out is not _MISSING:
                return out
        self.stats["compiles"] += 1
        try:
            compile(text, FILENAME, mode, flags, dont_inherit=True)
            out = None
        except SyntaxError as err:
            out = (err.lineno, err.offset, str(err.msg))
        except (ValueError, MemoryError, RecursionError, OverflowError) as err:
            out = (False, None, str(err) or type(err).__name__)
        if cache is not None:
            if len(cache) >= MAX_COMPILED:
                cache.clear()
            cache[key] = out
        return out

    def _completable(self, text: str, end: tuple[int, int], mode: str = "exec") -> bool:
        return self._diagnose(text, end, mode)[0]

    def _prefix_ok(
        self, head: str, closers: Sequence[str], tail: str, end: tuple[int, int], mode: str = "exec"
    ) -> str | None:
        """Whether `head` (ending at `end`) can be completed; `closers` close its open brackets.

        Some of the parser's messages point back into the prefix although more input would mend
        it (`x[` -> "Perhaps you forgot a comma?", `a if b` -> "expected 'else'", `{1: 2, 3` ->
        "':' expected after dictionary key", `(*a` -> "cannot use starred expression here");
        those are retried with the completion the message asks for (` x`, ` else x` before any
        closer, `: x`, `=x`, `, x`), a few tries at most.
        Returns None where it cannot be completed, else the message of the first try ("" where
        it compiled, or where a filler was needed)."""
        queue, seen = [("", -1)], set()
        while queue and len(seen) < MAX_COMPLETIONS:
            inner, at = queue.pop(0)
            if (inner, at) in seen:
                continue
            seen.add((inner, at))
            parts = list(closers)
            if at >= 0:
                parts.insert(at, " else x")
            ok, msg = self._diagnose(head + inner + "".join(parts) + tail, end, mode)
            if ok:
                return msg if not inner and at < 0 else ""
            if "expected 'else'" in msg and at < 0:
                queue += [(inner, p) for p in range(len(closers) + 1)]
            elif "':' expected" in msg and not inner.endswith(": x"):
                queue.append((inner + ": x", at))
            elif "non-default argument" in msg and not inner.endswith("=x"):
                queue.append((inner + "=x", at))
            elif "starred" in msg and not inner.endswith(", x"):
                queue.append((inner + ", x", at))
            elif not inner.endswith("x"):
                queue.append((inner + " x", at))
        return None

    def _compiles(self, text: str, mode: str = "exec") -> bool:
        return self._compile(text, mode) is None

    @staticmethod
    def _line_text(st: GuardState) -> str:
        """The current line as decode_code writes it (an open string closed), without newline;
        from the state's rendering (kept token by token), else from decode_code itself."""
        if not st.line:
            return ""
        text = st._text
        if text is None:
            r = st._render
            if r is None:
                text = decode_code([INDENT] * st.depth + list(st.line)).rstrip("\n")
            elif not r.pieces:
                text = ""
            else:
                text = _indent(st.depth) + (r.raw if r.quote is None else r.raw + r.quote).strip()
            st._text = text
        return text

    def _inline_ok(self, st: GuardState, keyword_last: bool) -> bool | str:
        """Whether the state's line is a completable prefix; "extend" where it is only so with its
        last token (a keyword) as the first piece of a longer name (`is ##_prime`)."""
        line = self._line_text(st)
        end_col = len(line) - (len(st.string.quote) if st.string is not None else 0)
        closers = [_PAIRS[b] for b in reversed(st.brackets)]
        end = (st.seg_lines + 1, end_col)
        msg = self._prefix_ok(st.seg + line, closers, "\n", end)
        if msg is not None:
            if msg.startswith("expected ':'"):
                # A header that parses up to its `:`: the compiler's own errors (a duplicate
                # argument, `return` in a class body) show once it has a colon and a body.
                text = st.seg + line + "".join(closers) + ":\n" + _indent(st.depth + 1) + "pass\n"
                if self._diagnose(text, (0, 0), flags=ast.PyCF_ONLY_AST)[1] == "":  # it parses
                    return self._completable(text, end)
            return True
        # `is`, `for`, `not`... may be the first piece of a name (`is ##_prime`)
        if keyword_last and self._completable(st.seg + line + "_" + "".join(closers) + "\n", end):
            return "extend"
        return False

    def can_end(self, st: GuardState) -> bool:
        """EOS is allowed: the whole program decoded so far compiles as it is."""
        if st._end is None:
            ok = st.string is None and not st.brackets and not st.need_indent and not st.after_indent
            if ok:
                line = self._line_text(st)
                ok = self._compiles(st.done + st.seg + (line + "\n" if line else ""))
            st._end = ok
        return st._end

    # ----------------------------------------------------------------------- transitions

    def advance(self, st: GuardState, tok: int) -> GuardState | None:
        """The state after `tok` (not EOS), or None where `tok` leaves no way to a valid program."""
        new = self._advance(st, tok)
        if new is None:
            self.stats["rejected"] += 1
        return new

    def _advance(self, st: GuardState, tok: int) -> GuardState | None:
        if not 0 <= tok < self.size:
            return None
        kind = self.kind[tok]
        if st.string is not None:
            return self._advance_string(st, tok, kind)
        if kind == INDENT_K:
            return (
                st._evolve(depth=st.depth + 1, need_indent=False, after_indent=True, prev=kind)
                if st.need_indent
                else None
            )
        if st.need_indent:
            return None
        if kind == DEDENT_K:
            if st.line or st.depth == 0 or st.after_indent:
                return None
            return st._evolve(depth=st.depth - 1, prev=kind)
        if kind == NEWLINE:
            return self._newline(st)
        if kind not in _CODE and kind not in (CONT_K, CLOSE_BR):
            return None
        if kind == CONT_K and st.prev not in _WORDLIKE:
            return None
        if st.must_extend and kind != CONT_K:
            return None
        t = self.tokens[tok]
        brackets = st.brackets
        if kind == CLOSE_BR:
            if not brackets or _PAIRS[brackets[-1]] != t:
                return None
            brackets = brackets[:-1]
        elif kind == OPEN_BR:
            brackets += t
        changes = dict(
            line=st.line + self.outside[tok],
            _render=_rendered(st._render, self.outside[tok]),
            brackets=brackets,
            prev=kind,
            after_indent=False,
            colon_end=t == ":" and not brackets,
            must_extend=False,
        )
        if not st.line:  # the line's first token
            changes["first"] = t
            changes["tries"] = tuple(d for d in st.tries if d < st.depth)
            if st.depth == 0 and t not in _CHAIN and not st.after_decorator and not st.tries and st.seg:
                changes.update(done=st.done + st.seg, seg="", seg_lines=0)  # a new top-level statement
        if kind == OPEN:
            body = t[len(STR_OPEN_PREFIX) :]
            quote = body.lstrip(_LETTERS)
            prefix = body[: len(body) - len(quote)].lower()
            changes["string"] = StrState(quote, "r" in prefix, "b" in prefix, "f" in prefix)
        new = st._evolve(**changes)
        verdict = self._inline_ok(new, kind == WORD and keyword.iskeyword(t))
        if verdict == "extend":  # wrong as a keyword, fine as the first piece of a name
            new.must_extend = True
        return new if verdict else None

    def _newline(self, st: GuardState) -> GuardState | None:
        if not st.line or st.brackets:
            return None
        line = self._line_text(st)
        tries = st.tries + ((st.depth,) if st.first == "try" else ())
        completion = ""
        if st.colon_end:  # a header: give it a body
            completion += _indent(st.depth + 1) + "pass\n"
        elif st.first == "@":  # a decorator: give it something to decorate
            completion += _indent(st.depth) + "def _():\n" + _indent(st.depth + 1) + "pass\n"
        for d in sorted(set(tries), reverse=True):  # an open `try:` needs a handler
            completion += _indent(d) + "finally:\n" + _indent(d + 1) + "pass\n"
        if not self._completable(st.seg + line + "\n" + completion, (st.seg_lines + 2, 0)):
            return None
        return st._evolve(
            seg=st.seg + line + "\n",
            seg_lines=st.seg_lines + 1,
            line=(),
            _render=_EMPTY_LINE,
            first="",
            need_indent=st.colon_end,
            colon_end=False,
            prev=NEWLINE,
            tries=tries,
            after_decorator=st.first == "@",
        )

    @staticmethod
    def _closes(s: StrState) -> bool:
        """The string's closing quote may come now."""
        return not s.esc and not s.hexleft and not s.qrun and (not s.fmt or s.fmode == LIT)

    def _advance_string(self, st: GuardState, tok: int, kind: int) -> GuardState | None:
        s = st.string
        t = self.tokens[tok]
        if t == STR_CLOSE_PREFIX + s.quote:
            if not self._closes(s):
                return None
            new = st._evolve(
                string=None, line=st.line + (t,), _render=_rendered(st._render, (t,)), prev=CLOSE, colon_end=False
            )
            return new if self._inline_ok(new, False) else None
        if kind in _NOT_IN_STRINGS:
            return None
        text = self.inside[tok]
        s2 = self._feed(s, text, check=True)
        if s2 is None:
            return None
        return st._evolve(string=s2, line=st.line + (text,), _render=_rendered(st._render, (text,)), prev=TEXT)

    def _feed(self, s: StrState, text: str, check: bool) -> StrState | None:
        """The string state after the characters of `text`, or None where they cannot be there.
        `check`: compile f-string expressions (False: characters only, for the cached masks)."""
        qc, triple = s.quote[0], len(s.quote) == 3
        esc, hexleft, qrun = s.esc, s.hexleft, s.qrun
        fmode, expr, expr_br, expr_q = s.fmode, s.expr, s.expr_br, s.expr_q
        for c in text:
            if c == "\x00" or (s.bytes and ord(c) > 127) or (c in "\r\n" and not triple):
                return None
            if fmode == LIT:
                if c != qc or esc or hexleft:
                    qrun = 0
                if hexleft:
                    if c not in string.hexdigits:
                        return None
                    hexleft -= 1
                elif esc:
                    esc = False
                    if c in "\r\n" or (s.fmt and c in "{}") or (not s.raw and not s.bytes and c == "N"):
                        return None  # a line continuation, `\{`, `\N{name}`: not supported
                    if not s.raw:
                        hexleft = {"x": 2, "u": 0 if s.bytes else 4, "U": 0 if s.bytes else 8}.get(c, 0)
                elif c == "\\":
                    esc = True
                elif c == qc:
                    qrun += 1
                    if not triple or qrun >= 3:
                        return None
                elif s.fmt and c == "{":
                    fmode = BRACE_OPEN
                elif s.fmt and c == "}":
                    fmode = BRACE_CLOSE
                continue
            if fmode == BRACE_CLOSE:
                if c != "}":
                    return None
                fmode = LIT
                continue
            if fmode == BRACE_OPEN:
                if c == "{":
                    fmode = LIT
                    continue
                if c in "}!:=":
                    return None
                fmode, expr, expr_br, expr_q = EXPR, "", "", ""
            if c in ("\\", "#", "\n", "\r") or c in s.quote:
                return None  # never inside an f-string's field (Python 3.11)
            if fmode == EXPR:
                if expr_q:
                    expr += c
                    if c == expr_q:
                        expr_q = ""
                elif c in "'\"":
                    expr, expr_q = expr + c, c
                elif c in _PAIRS:
                    expr, expr_br = expr + c, expr_br + c
                elif c in ")]}" and expr_br:
                    if _PAIRS[expr_br[-1]] != c:
                        return None
                    expr, expr_br = expr + c, expr_br[:-1]
                elif c in ")]":
                    return None
                elif c in "}:" and not expr_br:  # the field's end, or its format spec
                    if check and not self._field_ok(expr):
                        return None
                    fmode = LIT if c == "}" else SPEC
                elif c == "!" and not expr_br:  # a conversion (`!r`), or `!=`
                    fmode = BANG
                else:
                    expr += c
            elif fmode == BANG:
                if c == "=":
                    fmode, expr = EXPR, expr + "!="
                elif c in "rsa":
                    if check and not self._field_ok(expr):
                        return None
                    fmode = CONV
                else:
                    return None
            elif fmode == CONV:
                if c not in "}:":
                    return None
                fmode = LIT if c == "}" else SPEC
            elif fmode == SPEC:
                if c == "{":
                    return None  # nested fields: not supported
                if c == "}":
                    fmode = LIT
        if check and fmode == EXPR and expr.strip():
            closers = [_PAIRS[b] for b in reversed(expr_br)] + ["\n)"]
            if self._prefix_ok("(" + expr + expr_q, closers, "", (1, 1 + len(expr)), "eval") is None:
                return None
        return StrState(s.quote, s.raw, s.bytes, s.fmt, esc, hexleft, qrun, fmode, expr, expr_br, expr_q)

    def _field_ok(self, expr: str) -> bool:
        return bool(expr.strip()) and self._compiles("(" + expr + "\n)", "eval")

    # ----------------------------------------------------------------------- whole outputs

    def text(self, ids: Sequence[int]) -> str:
        """The program the guard checks for these ids (decode_code, placeholders substituted)."""
        out: list[str] = []
        quote = None
        for i in ids:
            t, k = self.tokens[i], self.kind[i]
            if k == EOS:
                break
            if quote is not None:
                if t == STR_CLOSE_PREFIX + quote or k in (NEWLINE, INDENT_K, DEDENT_K):
                    quote = None
                out.append(self.inside[i])
            elif k == OPEN:
                body = t[len(STR_OPEN_PREFIX) :]
                q = body.lstrip(_LETTERS)
                quote = q if q in _QUOTES else '"'
                out.append(t)
            else:
                out.extend(self.outside[i])
        return decode_code(out)

    def valid_prefix_len(self, ids: Sequence[int]) -> int:
        """The longest prefix length whose program compiles: all of ids, or up to a `<nl>`, or 0."""
        cuts = [len(ids)] + [k for k in range(len(ids) - 1, 0, -1) if self.kind[ids[k - 1]] == NEWLINE]
        for k in cuts:
            if self._compiles(self.text(ids[:k])):
                return k
        return 0

    def replay(self, ids: Sequence[int]) -> GuardState | None:
        """The state after ids (None where the guard rejects one of them)."""
        st = self.start()
        with self.quiet():
            for i in ids:
                st = self.advance(st, i)
                if st is None:
                    return None
        return st
