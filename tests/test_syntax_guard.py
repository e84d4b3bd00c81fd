"""The syntax guard (e2p/model/syntax_guard.py): its state tracker on hand-written token streams, its
masks against its own verdicts, every corpus program accepted token by token, and decoding with
it on (greedy, beam, sampling) from a trained tiny model and from an adversarial random one:
every output compiles once its placeholders are filled in."""

from __future__ import annotations

import ast
import random
import warnings

import pytest
import torch

torch.set_num_threads(1)  # two shared cores: stay polite

# The guard compiles candidate prefixes such as `"\d"` or `x is 1`; their warnings are noise here
# (decode() silences them with SyntaxGuard.quiet(); these tests also call the guard directly).
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::SyntaxWarning"),
]

from models import tiny_model  # noqa: E402

from e2p.data.placeholders import Slots, abstract_example, restore_code  # noqa: E402
from e2p.data.tokenizers import DEDENT, INDENT, NL, code_tokens, decode_code  # noqa: E402
from e2p.data.vocab import SPECIALS, Vocab  # noqa: E402
from e2p.model.decoding import DecodeSettings, decode  # noqa: E402
from e2p.model.syntax_guard import SyntaxGuard  # noqa: E402
from e2p.model.transformer import Seq2Seq  # noqa: E402

EOS = Vocab.eos_id
IDS = dict(bos_id=Vocab.bos_id, eos_id=Vocab.eos_id, pad_id=Vocab.pad_id, unk_id=Vocab.unk_id)

# A vocabulary with every kind of token the tracker tells apart, hostile ones included.
KEYWORDS = (
    "def class return if elif else try except finally for in while lambda yield import from as with "
    "pass break continue not and or is None True False global nonlocal del assert raise async await"
).split()
OPERATORS = ("( ) [ ] { } : , . ; = == != < > <= >= + - * / // % ** += -= *= @ -> := ... ~ & | ^ << >>").split()
STRINGS = [
    '«"',
    '»"',
    "«'",
    "»'",
    '«f"',
    '»"',
    "«f'",
    '«"""',
    '»"""',
    "«'''",
    "»'''",
    "«r'",
    "«b'",
    '«u"',
    "«",
    "»",
    "«x'",
    '"',
    "'",
    "\\",
    "\n",
    " ",
    " is",
    "{",
    "}",
    "!",
    "é",
    "x4",
    "41",
    "N",
    "#",
    "<sep>",
]
WORDS = "x y f n r s a b print range len total is_even ##_prime ##_list ##1 ##x ##_ z 0 1 2 3 4 1.5 0x1F 10".split()
PLACEHOLDERS = ["NUM0", "STR0", "NAME0"]
TOKENS = list(
    dict.fromkeys(list(SPECIALS) + PLACEHOLDERS + [NL, INDENT, DEDENT] + KEYWORDS + OPERATORS + STRINGS + WORDS)
)
SLOTS = Slots(numbers=["2.5"], strings=['it\'s "q"'], names=["my_var"])


@pytest.fixture(scope="module")
def guard() -> SyntaxGuard:
    return SyntaxGuard(TOKENS, EOS)


def ids_of(tokens: list[str]) -> list[int]:
    index = {t: i for i, t in enumerate(TOKENS)}
    return [index[t] for t in tokens]


def toks(text: str) -> list[str]:
    """Whitespace-separated tokens; `<nl>` etc. as written."""
    return text.split()


def rejected_at(guard: SyntaxGuard, tokens: list[str]) -> int | None:
    """Index of the first token the guard rejects (None: all accepted); checks the mask agrees."""
    st = guard.start()
    for i, tok in enumerate(ids_of(tokens)):
        new = guard.advance(st, tok)
        if new is None:
            return i
        assert guard.mask_for(st)[tok], f"the mask bans {TOKENS[tok]!r}, which advance accepts"
        st = new
    return None


def state_after(guard: SyntaxGuard, tokens: list[str]):
    st = guard.replay(ids_of(tokens))
    assert st is not None, f"rejected: {tokens}"
    return st


def compiles(code: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(code, "<test>", "exec", dont_inherit=True)
        return True
    except (SyntaxError, ValueError):
        return False


# --------------------------------------------------------------------------- the state tracker


@pytest.mark.parametrize(
    "text",
    [
        "def f ( x ) : <nl> <indent> return x",
        "def is ##_prime ( n ) : <nl> <indent> return n % 2 == 1",
        "x = [ 1 , 2 ] <nl> print ( len ( x ) )",
        "for x in range ( 10 ) : <nl> <indent> if x : <nl> <indent> pass <nl> <dedent> else : <nl> <indent> break",
        "try : <nl> <indent> x = 1 <nl> <dedent> except : <nl> <indent> pass <nl> <dedent> "
        "finally : <nl> <indent> pass",
        "@ f <nl> def y ( ) : <nl> <indent> pass",
        "x = NUM0 + 1 <nl> y = STR0 <nl> print ( NAME0 )",
        "f = lambda x : x if x else y",
        "x = { 1 : 2 , 3 : [ 4 ] }",
        "class a : <nl> <indent> def f ( s ) : <nl> <indent> return s . x",
    ],
)
def test_valid_programs_are_accepted_and_may_end(guard, text):
    tokens = toks(text)
    assert rejected_at(guard, tokens) is None
    st = state_after(guard, tokens)
    assert guard.can_end(st)
    assert compiles(guard.text(ids_of(tokens)))


@pytest.mark.parametrize(
    "text, bad",
    [
        ("x = 1 2", 3),  # two atoms
        ("x = ( 1 ]", 4),  # the wrong closer
        ("x = ( 1 <nl>", 4),  # a line break inside brackets
        ("x = 1 <nl> <nl>", 4),  # an empty line
        ("x = 1 <nl> <indent>", 4),  # an indent that no header asked for
        ("<dedent>", 0),  # a dedent at depth 0
        ("if x : <nl> y", 4),  # a header's body must be indented
        ("if x : <nl> <indent> <dedent>", 5),  # ... and not empty
        ("x = 1 + <nl>", 4),  # a line that is not a statement
        ("def f ( a , a", 5),  # a repeated parameter
        ("try : <nl> <indent> x <nl> <dedent> y", 7),  # try without except
        ("x = 1 <nl> else :", 5),  # else without if (`else` alone may still start a name: else_x)
        ("@ f <nl> x", 3),  # a decorator on nothing
        ("NUM0 ##x", 1),  # would read `2.5x`
        ("STR0 = 1", 1),  # assigning to a string literal
        ("print ( x ) ##x", 4),  # a name piece after a bracket
        ("x = ) ", 2),
        ("x <sep>", 1),
        ("x = \\", 2),  # a stray backslash outside strings
    ],
)
def test_invalid_prefixes_are_rejected_where_they_go_wrong(guard, text, bad):
    assert rejected_at(guard, toks(text)) == bad


def test_after_a_header_only_indent_is_allowed(guard):
    st = state_after(guard, toks("if x : <nl>"))
    mask = guard.mask_for(st)
    assert mask.sum() == 1 and mask[TOKENS.index(INDENT)]
    assert not guard.can_end(st)


def test_masks_follow_brackets_lines_and_depth(guard):
    st = state_after(guard, toks("x = ( [ 1"))
    mask = guard.mask_for(st)
    assert mask[TOKENS.index("]")] and not mask[TOKENS.index(")")] and not mask[TOKENS.index("}")]
    assert not mask[TOKENS.index(NL)] and not mask[EOS]
    st = state_after(guard, toks("if x : <nl> <indent> pass <nl>"))
    mask = guard.mask_for(st)
    assert mask[TOKENS.index(DEDENT)] and not mask[TOKENS.index(NL)] and not mask[TOKENS.index(INDENT)]
    assert not mask[TOKENS.index("##x")]  # nothing to extend at a line start


def test_eos_only_where_the_program_compiles(guard):
    for text, ok in [
        ("x = 1", True),
        ("x = 1 +", False),
        ("def f ( ) :", False),
        ("return", False),
        ("def f ( ) : <nl> <indent> return", True),
        ("x = ( 1", False),
        ('x = «"', False),
    ]:
        st = guard.replay(ids_of(toks(text)))
        assert st is not None and guard.can_end(st) is ok, text


def test_a_keyword_may_start_a_name_but_then_must_continue(guard):
    st = state_after(guard, toks("def is"))  # `def is` is wrong, `def is_prime` is not
    mask = guard.mask_for(st)
    assert mask[TOKENS.index("##_prime")] and not mask[TOKENS.index("(")]
    assert guard.advance(st, TOKENS.index("(")) is None
    assert rejected_at(guard, toks("return ##_list = 1")) is None  # `return_list = 1` at the top
    assert rejected_at(guard, toks("return 1")) == 1  # `return` at the top is no statement


def test_compiler_errors_count_as_soon_as_they_show(guard):
    assert rejected_at(guard, toks("x = 1 <nl> break <nl>")) is not None  # outside a loop
    assert rejected_at(guard, toks("yield x")) is not None  # outside a function
    assert rejected_at(guard, toks("def f ( ) : <nl> <indent> yield x")) is None


def test_strings_character_by_character(guard):
    ok = [
        ["x", "=", '«"', "a", " ", "'", '»"'],  # the other quote is fine
        ["x", "=", '«"""', "a", "\n", '"', "b", '»"""'],  # newlines and single quotes in a triple string
        ["x", "=", "«'", "\\", "n", "»'"],  # an escape
        ["x", "=", "«'", "\\", "x4", "1", "»'"],  # a hex escape, completed
        ["x", "=", "«r'", "\\", "N", "»'"],  # raw: no escapes
        ["x", "=", "«'", "NUM0", "STR0", "NAME0", "»'"],  # placeholders inside a string are text
        ["x", "=", '«"', "«", "»", '»"'],  # stray string markers are text inside a string
    ]
    for tokens in ok:
        assert rejected_at(guard, tokens) is None, tokens
        assert compiles(guard.text(ids_of(tokens)))
    bad = [
        (["x", "=", '«"', "a", '"'], 4),  # its own quote
        (["x", "=", '«"', "\n"], 3),  # a newline in a one-line string
        (["x", "=", "«'", "\\", "»'"], 4),  # the closing quote escaped
        (["x", "=", "«'", "\\", "x4", "»'"], 5),  # an unfinished hex escape
        (["x", "=", "«'", "\\", "N"], 4),  # \N{...}: not supported
        (["x", "=", "«b'", "é"], 3),  # bytes are ASCII
        (["x", "=", '«"""', '"', '"', '"'], 5),  # three quotes end a triple string
        (["x", "=", '«"', "a", "<nl>"], 4),  # no line break inside a string
        (["x", "=", '«"', "a", "»'"], None),  # the other closing token is text...
        (["x", "=", '«"', "a", "»'", "<eos>"], None),
    ]
    for tokens, at in bad:
        if tokens[-1] == "<eos>":
            st = state_after(guard, tokens[:-1])
            assert not guard.can_end(st) and not guard.mask_for(st)[EOS]  # ...and the string is still open
            continue
        assert rejected_at(guard, tokens) == at, tokens


def test_f_strings_fields_are_compiled(guard):
    ok = [
        ["x", "=", '«f"', "a", "{", "x", "}", '»"'],
        ["x", "=", '«f"', "{", "x", "+", "1", "}", '»"'],
        ["x", "=", '«f"', "{", "{", "}", "}", '»"'],  # literal braces
        ["x", "=", '«f"', "{", "x", "!", "r", "}", '»"'],  # a conversion
        ["x", "=", '«f"', "{", "f", "(", "'", "a", "'", ")", "}", '»"'],  # another quote inside a field
        ["x", "=", '«f"', "{", "x", ":", "1", "}", '»"'],  # a format spec
    ]
    for tokens in ok:
        assert rejected_at(guard, tokens) is None, tokens
        assert compiles(guard.text(ids_of(tokens)))
    bad = [
        (["x", "=", '«f"', "{", "}"], 4),  # an empty field
        (["x", "=", '«f"', "{", "x", '»"'], 5),  # an open field
        (["x", "=", '«f"', "}", '»"'], 4),  # a lone closing brace
        (["x", "=", '«f"', "{", "1", "x4"], 5),  # `1x4` in a field
        (["x", "=", '«f"', "{", "x", ")"], 5),  # a stray closer
        (["x", "=", '«f"', "{", "\\"], 4),  # no backslash in a field (Python 3.11)
    ]
    for tokens, at in bad:
        assert rejected_at(guard, tokens) == at, tokens


def test_text_fills_placeholders_like_restore_code(guard):
    tokens = toks("x = NUM0 <nl> y = STR0 <nl> z = NAME0")
    text = guard.text(ids_of(tokens))
    assert text == "x = 1\ny = 's'\nz = NAME0\n"
    plain = toks("def f ( x ) : <nl> <indent> return x")
    assert guard.text(ids_of(plain)) == decode_code(plain)


def test_cut_back_to_the_longest_prefix_that_compiles(guard):
    ids = ids_of(toks("x = 1 <nl> y = 2 <nl> z = ( 3"))
    assert guard.valid_prefix_len(ids) == 8
    assert guard.valid_prefix_len(ids_of(toks("x = 1 <nl> y = 2"))) == 7
    assert guard.valid_prefix_len(ids_of(toks("try : <nl> <indent> x = 1"))) == 0


# --------------------------------------------------------------------------- masks against verdicts


def test_masks_never_ban_what_advance_accepts_and_are_exact_in_plain_strings(guard):
    """Random walks through accepted tokens; at every state, every token: a token the mask bans is
    rejected by advance; inside a plain (non-f) string the mask is the exact verdict."""
    rng = random.Random(0)
    for walk in range(12):
        st = guard.start()
        for _ in range(30):
            mask = guard.mask_for(st).tolist()
            verdicts = {t: guard.advance(st, t) for t in range(len(TOKENS)) if t != EOS}
            for t, new in verdicts.items():
                if new is not None:
                    assert mask[t], f"walk {walk}: mask bans accepted {TOKENS[t]!r}"
                if st.string is not None and not st.string.fmt and TOKENS[t] != "»" + st.string.quote:
                    assert mask[t] == (new is not None), TOKENS[t]
            accepted = [new for new in verdicts.values() if new is not None]
            if not accepted:
                break
            st = rng.choice(accepted)


# --------------------------------------------------------------------------- real code passes


def _replay_all(examples, vocab: Vocab) -> tuple[int, list[str]]:
    guard = SyntaxGuard.for_vocab(vocab.tokens, vocab.eos_id)
    with guard.quiet():
        return _replay(guard, examples, vocab)


def _replay(guard: SyntaxGuard, examples, vocab: Vocab) -> tuple[int, list[str]]:
    tested, failures = 0, []
    for ex in examples:
        _, tokens, _ = abstract_example(ex.prompt, ex.code)
        ids = vocab.encode(tokens)
        if vocab.unk_id in ids:
            continue
        tested += 1
        st = guard.start()
        for j, i in enumerate(ids):
            assert guard.mask_for(st)[i], f"mask bans {tokens[j]!r} in:\n{ex.code}"
            new = guard.advance(st, i)
            if new is None:
                # The one known refusal: a parameter named like an earlier one, as the first piece
                # of a longer name (`def f(temp, temp_c)`); the guard takes it as the repeat it reads as.
                params = {t for t in tokens[:j] if t.isidentifier()}
                if tokens[j] not in params:
                    failures.append(f"rejected {tokens[j]!r} at {j}:\n{decode_code(tokens[:j + 1])}")
                break
            st = new
        else:
            if not guard.can_end(st):
                failures.append(f"cannot end:\n{ex.code}")
    return tested, failures


def test_every_program_of_the_mini_corpus_is_accepted(mini_corpus_path):
    from e2p.data.corpus import read_corpus

    examples = read_corpus(mini_corpus_path).examples
    vocab = Vocab.build(
        (abstract_example(ex.prompt, ex.code)[1] for ex in examples), min_freq=1, reserved=[NL, INDENT, DEDENT]
    )
    tested, failures = _replay_all(examples, vocab)
    assert tested == len(examples) and not failures, failures


def test_corpus_programs_are_accepted(full_corpus, repo_root):
    """Every train/valid program the shipped vocabulary can spell (a fixed sample of 400)."""
    vocab = Vocab.load(repo_root / "artifacts" / "tgt_vocab.json")
    examples = [ex for ex in full_corpus.examples]
    examples = random.Random(0).sample(examples, min(400, len(examples)))
    tested, failures = _replay_all(examples, vocab)
    assert tested >= 300 and not failures, failures[:3]


# --------------------------------------------------------------------------- decoding with the guard


class NoisyModel(Seq2Seq):
    """A random model made adversarial: large noise on every step's log-probs, and extra weight on
    the tokens that break programs (brackets, quotes, colons, indents, backslashes, braces)."""

    def step(self, tokens_last, state):
        lp, state = super().step(tokens_last, state)
        noise = torch.randn(lp.shape, generator=self.noise) * 3.0 + self.bias
        return torch.log_softmax(lp + noise, dim=-1), state


def noisy_model(seed: int, vocab_size: int) -> NoisyModel:
    model = tiny_model(vocab_size, seed=seed, cls=NoisyModel, enc_layers=1, dec_layers=1, dropout=0.0)
    model.noise = torch.Generator().manual_seed(seed)
    model.bias = torch.zeros(vocab_size)
    nasty = set("()[]{}:") | {'«"', '«f"', "«'''", '"', "\\", "{", "}", INDENT, DEDENT, NL, "return", "else"}
    for i, t in enumerate(TOKENS):
        if t in nasty:
            model.bias[i] = 2.0
    return model


def restored(tokens: list[str]) -> str:
    return decode_code(restore_code(tokens, SLOTS))


SETTINGS = {
    "greedy": DecodeSettings(strategy="greedy", max_len=48),
    "beam": DecodeSettings(strategy="beam", beam_size=3, n_best=3, max_len=48),
    "sample": DecodeSettings(strategy="sample", num_samples=4, n_best=4, max_len=48, top_p=1.0, temperature=1.3),
}


@pytest.mark.parametrize("strategy", ["greedy", "beam", "sample"])
def test_adversarial_streams_always_compile_with_the_guard(strategy):
    """Without the guard most of these outputs do not even parse; with it every one compiles."""
    unfilled = ()
    outputs, unguarded = [], []
    for seed in range(4):
        model = noisy_model(seed, len(TOKENS))
        src = [4 + (seed * 7 + k) % (len(TOKENS) - 4) for k in range(6)]
        s = SETTINGS[strategy]
        if strategy == "sample":
            s = DecodeSettings(**{**s.__dict__, "seed": seed})
        guarded = decode(
            model,
            src,
            DecodeSettings(**{**s.__dict__, "syntax_guard": True}),
            **IDS,
            banned_ids=unfilled,
            vocab_tokens=TOKENS,
        )
        model.noise.manual_seed(seed)
        free = decode(model, src, s, **IDS, banned_ids=unfilled)
        assert guarded
        for h in guarded:
            assert h.logprob == pytest.approx(sum(h.token_logprobs) + h.eos_logprob, abs=1e-4)
            assert len(h.tokens) == len(h.token_logprobs) == len(h.alternatives) <= 48
            outputs.append(restored([TOKENS[i] for i in h.tokens]))
        unguarded += [restored([TOKENS[i] for i in h.tokens]) for h in free]
    bad = [code for code in outputs if not compiles(code)]
    assert not bad, bad[:3]
    assert all(ast.parse(code) is not None for code in outputs)
    assert sum(not compiles(code) for code in unguarded) >= len(unguarded) // 2  # the test has teeth
    # Lines this noisy seldom end within 48 tokens, so many outputs are cut back to nothing; not all.
    assert any(code.strip() for code in outputs)


def test_guard_copes_with_no_repeat_ngram_bans():
    model = noisy_model(3, len(TOKENS))
    s = DecodeSettings(strategy="greedy", max_len=48, no_repeat_ngram=2, syntax_guard=True)
    for h in decode(model, [5, 6, 7], s, **IDS, vocab_tokens=TOKENS):
        assert compiles(restored([TOKENS[i] for i in h.tokens]))


@pytest.mark.parametrize("strategy", ["greedy", "beam", "sample"])
def test_tiny_trained_model_output_always_compiles(tiny_default_artifacts, strategy):
    from e2p.answer.bundle import load_bundle
    from e2p.data.tokenizers import PLACEHOLDER

    b = load_bundle(tiny_default_artifacts)
    prompts = [
        "write a python function to add 3 and 4",
        "write a python program to print the numbers from 1 to 9",
        "write a python function to check whether 12 is even",
        "print a list of 5 zeros",
        "'\"{}\\ x = ( [ 0x1F",
        "return return return else : :",
    ]
    n = 0
    for k, prompt in enumerate(prompts):
        source = b.featurizer.source(prompt)
        mapping = source.slots.mapping()
        unfilled = tuple(i for tok, i in b.tgt_vocab.index.items() if PLACEHOLDER.match(tok) and tok not in mapping)
        s = DecodeSettings(**{**SETTINGS[strategy].__dict__, "syntax_guard": True, "seed": k})
        hyps = decode(
            b.model, b.src_vocab.encode(source.tokens), s, **IDS, banned_ids=unfilled, vocab_tokens=b.tgt_vocab.tokens
        )
        for h in hyps:
            code = decode_code(restore_code(b.tgt_vocab.decode(h.tokens), source.slots))
            assert compiles(code), code
            n += 1
    assert n >= len(prompts)


def test_code_tokens_of_guarded_output_round_trip(guard):
    """What the guard lets through is ordinary code: tokenizing its text again gives it back."""
    tokens = toks("def f ( x ) : <nl> <indent> return x + NUM0")
    code = guard.text(ids_of(tokens))
    assert code_tokens(code)[:8] == tokens[:8]


# --------------------------------------------------------------------------- the speed paths (issue 29)
# What makes the guard cheap per step, each against the plain computation it stands for: the line
# kept rendered token by token (not decode_code per check), ban rows added (not masked_fill), compile()
# outcomes kept within `quiet`, greedy's first choice from one top-k, the rows-left test by one reduction.


def _walk_states(guard: SyntaxGuard, walks: int, steps: int, seed: int = 0) -> list:
    """States along random walks: at each, the first token (random order) the guard accepts."""
    rng, states = random.Random(seed), []
    ids = [i for i in range(len(TOKENS)) if i != EOS]
    for _ in range(walks):
        st = guard.start()
        for _ in range(steps):
            states.append(st)
            rng.shuffle(ids)
            st = next((new for new in map(lambda t: guard.advance(st, t), ids) if new is not None), None)
            if st is None:
                break
    return states


def test_kept_line_text_and_ban_rows_equal_the_plain_computations(guard):
    import e2p.model.syntax_guard as sg

    with guard.quiet():
        states = _walk_states(guard, walks=30, steps=40)
    assert sum(st.string is not None for st in states) > 50 and sum(bool(st.line) for st in states) > 500
    for st in states:
        assert sg.SyntaxGuard._line_text(st) == decode_code([INDENT] * st.depth + list(st.line)).rstrip("\n")
    allowed = guard.allowed(states)
    bans = guard.bans(states)
    assert torch.equal(bans, torch.zeros(allowed.shape).masked_fill(~allowed, float("-inf")))
    assert torch.equal(guard.bans(states[7:8]), bans[7:8])
    lprobs = torch.randn(allowed.shape).log_softmax(-1)
    lprobs[torch.rand(allowed.shape) < 0.1] = float("-inf")
    assert torch.equal(lprobs + bans, lprobs.masked_fill(~allowed, float("-inf")))


def test_compile_outcomes_kept_within_quiet_change_no_verdict(guard):
    import e2p.model.syntax_guard as sg

    states = _walk_states(guard, walks=6, steps=30, seed=1)
    probe = random.Random(2).sample(range(len(TOKENS)), 40)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = [[guard.advance(st, t) for t in probe] for st in states]  # outside quiet: nothing kept
    with guard.quiet():
        with guard.quiet():  # an inner block shares the outer one's outcomes
            kept = [[guard.advance(st, t) for t in probe] for st in states]
            assert sg._QUIET.compiled
        again = [[guard.advance(st, t) for t in probe] for st in states]  # now answered from what was kept
    assert sg._QUIET.compiled is None  # nothing outlives the block

    def seen(new):
        return None if new is None else (new.done, new.seg, new.line, new.string, new.brackets, new.must_extend)

    assert [[seen(n) for n in row] for row in plain] == [[seen(n) for n in row] for row in kept]
    assert [[seen(n) for n in row] for row in kept] == [[seen(n) for n in row] for row in again]
    assert any(n is None for row in plain for n in row) and any(n is not None for row in plain for n in row)


def test_greedy_first_choice_from_one_top_k_is_the_best_accepted(guard):
    from e2p.model.decoding import _alternatives, _best_accepted, _top_accepted

    states = _walk_states(guard, walks=8, steps=25, seed=3)
    gen = torch.Generator().manual_seed(0)
    fast_paths = 0
    for k, st in enumerate(states):
        row = torch.randn(1, len(TOKENS), generator=gen).log_softmax(-1)
        if k % 4 == 1:  # a tie at the top
            top = row.topk(2).indices[0]
            row[0, top[1]] = row[0, top[0]]
        if k % 4 == 2:  # mostly banned, sometimes entirely
            row[0, torch.rand(len(TOKENS), generator=gen) < (0.9 if k % 8 else 1.0)] = float("-inf")
        forced = k % 5 == 0
        ref = row.clone()
        tok, new = _best_accepted(guard, st, ref[0], EOS, forced)
        got = row.clone()
        tok2, new2, alts, picked = _top_accepted(guard, st, got, EOS, forced)
        assert tok2 == tok and (new2 is None) == (new is None)
        assert new is None or (new2.line, new2.seg, new2.string) == (new.line, new.seg, new.string)
        assert torch.equal(got, ref)  # the same tokens set to -inf
        if alts is not None:
            fast_paths += 1
            assert alts == _alternatives(ref)[0] and picked.tolist() == [tok]
    assert 10 < fast_paths < len(states)


def test_rows_left_test_never_misses_an_empty_row():
    from e2p.model.decoding import _may_be_dead

    inf, nan = float("-inf"), float("nan")
    cases = ([[0.0, -1.0], [-2.0, inf]], [[inf, inf], [0.0, -1.0]], [[nan, inf], [inf, -3.0]], [[float("inf"), inf]])
    for rows in cases:
        out = torch.tensor(rows)
        if bool(torch.isinf(out).all(dim=-1).any()):
            assert _may_be_dead(out)
    assert not _may_be_dead(torch.tensor([[0.0, inf], [-1.0, -2.0]]))
    assert _may_be_dead(torch.tensor([[0.0, inf], [inf, inf]]))


@pytest.mark.parametrize("strategy", ["greedy", "beam", "sample"])
def test_decoding_with_the_speed_paths_equals_the_plain_computations(monkeypatch, strategy):
    """Every hypothesis (tokens, scores, log-probs, alternatives, cuts) the same with each speed path
    switched back to the computation it replaces."""
    import threading

    import e2p.model.decoding as decoding
    import e2p.model.syntax_guard as sg

    def masks(lprobs, raw, hyps, guard, rules, step, max_len):  # the masked_fill version
        if guard is None or step >= max_len:
            return lprobs
        allowed = guard.allowed([h.guard for h in hyps], lprobs.device)
        out = lprobs.masked_fill(~allowed, float("-inf"))
        if not rules.no_repeat_ngram and step >= rules.min_len:
            return out
        dead = torch.isinf(out).all(dim=-1)
        if dead.any():
            again = raw.masked_fill(~allowed, float("-inf"))
            again[:, rules.banned] = float("-inf")
            out[dead] = again[dead]
        return out

    class KeepNothing(threading.local):
        compiled = None

        def __setattr__(self, name, value):
            pass

    def run():
        out = []
        for seed in range(3):
            model = noisy_model(seed, len(TOKENS))
            for extra in ({}, {"no_repeat_ngram": 2, "min_len": 6}):
                s = DecodeSettings(**{**SETTINGS[strategy].__dict__, "syntax_guard": True, "seed": seed, **extra})
                model.noise.manual_seed(seed)
                for h in decode(model, [5, 6, 7 + seed], s, **IDS, vocab_tokens=TOKENS):
                    out.append((h.tokens, h.score, h.logprob, h.token_logprobs, h.alternatives, h.eos_logprob, h.cut))
        return out

    fast = run()
    SyntaxGuard._CACHE.clear()
    monkeypatch.setattr(decoding, "_guard_masks", masks)
    monkeypatch.setattr(decoding, "_may_be_dead", lambda out: True)

    def plain_top_accepted(g, gs, lprobs, eos_id, forced):
        return (*decoding._best_accepted(g, gs, lprobs[0], eos_id, forced), None, None)

    monkeypatch.setattr(decoding, "_top_accepted", plain_top_accepted)
    monkeypatch.setattr(sg, "_rendered", lambda r, tokens: None)
    monkeypatch.setattr(sg, "_QUIET", KeepNothing())
    try:
        assert run() == fast
    finally:
        SyntaxGuard._CACHE.clear()
