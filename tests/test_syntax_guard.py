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
