"""What the generator tells about its answer: where it came from, which pool it used, cut-off code."""

from dataclasses import replace

from e2p.answer.generator import ORIGIN_TEXT, Generator
from e2p.evaluation.report import tree_key
from e2p.model.decoding import DecodeSettings


def test_code_cut_at_the_length_limit_is_flagged(tiny_default_artifacts):
    g = Generator(tiny_default_artifacts)
    cut = DecodeSettings(strategy="greedy", min_len=3, max_len=3)  # EOS is banned until the limit
    result = g.generate("write a function to add two numbers", cut, rerank="score", pool=0, fallback=False)
    assert result.tokens_are_code and len(result.tgt_tokens) == 4  # 3 tokens and <eos>
    assert any("length limit of 3 tokens" in w for w in result.warnings)
    free = g.generate(
        "write a function to add two numbers",
        DecodeSettings(strategy="greedy", max_len=60),
        rerank="score",
        pool=0,
        fallback=False,
    )
    assert len(free.tgt_tokens) - 1 < 60 or any("length limit" in w for w in free.warnings)
    if len(free.tgt_tokens) - 1 < 60:
        assert not any("length limit" in w for w in free.warnings)


def test_the_ranker_always_has_a_pool_to_rank(tiny_default_artifacts):
    g = Generator(tiny_default_artifacts)
    pool = g.policy.resolve("ranker").pool
    assert pool == g.policy.ranker.pool > 0
    assert g.policy.resolve("score").pool == g.policy.default.pool and g.policy.resolve("ranker", pool=0).pool == 0
    result = g.generate("write a function to add two numbers", rerank="ranker", attention=False)
    assert sum(c.origin in ("retrieval", "edited") for c in result.candidates) >= pool


def test_every_source_has_words_and_retrieval_is_called_retrieval():
    assert ORIGIN_TEXT["model"] == "written by the model"
    assert all(ORIGIN_TEXT[k].startswith("retrieval:") for k in ("retrieval", "edited"))


def test_following_the_example_writes_the_retrieved_program(tiny_default_artifacts):
    g = Generator(tiny_default_artifacts)
    prompt = "write a python function to add two numbers"
    neighbour = g.bundle.featurizer.source(prompt).neighbour
    greedy = DecodeSettings(strategy="greedy", max_len=120)
    own = g.generate(prompt, greedy, rerank="score", pool=0, fallback=False, attention=False)
    assert own.origin == "model" and tree_key(own.code) != tree_key(neighbour.code)  # the tiny model alone
    kept = g.generate(
        prompt, replace(greedy, follow_example=50.0), rerank="score", pool=0, fallback=False, attention=False
    )
    assert kept.origin == "model" and kept.tokens_are_code  # still the model's decoding, token by token
    assert tree_key(kept.code) == tree_key(neighbour.code)


def test_following_a_cut_example_keeps_to_it_past_the_cut(tiny_default_artifacts):
    g = Generator(tiny_default_artifacts)
    prompt = "write a python function to add two numbers"
    shown = g.bundle.featurizer.source(prompt)
    cut = len(shown.tokens) - 4  # the source ends four tokens before the example's code does
    g.bundle.featurizer.config = replace(g.bundle.featurizer.config, max_src=cut)
    assert len(g.bundle.featurizer.source(prompt).tokens) == cut
    kept = g.generate(
        prompt,
        DecodeSettings(strategy="greedy", max_len=120, follow_example=50.0),
        rerank="score",
        pool=0,
        fallback=False,
        attention=False,
    )
    assert tree_key(kept.code) == tree_key(shown.neighbour.code)  # not the program cut four tokens short


def test_explaining_later_gives_what_one_pass_gives(tiny_default_artifacts, sandbox_off):
    """The app shows the code first (generate(explain=False)), then where its tokens came from and
    the attention maps (explain): the same as a request that does it all at once."""
    import numpy as np

    g = Generator(tiny_default_artifacts)
    prompt = "write a python function to add 3 and 4"
    settings = DecodeSettings(strategy="greedy", max_len=30, syntax_guard=True)
    whole = g.generate(prompt, settings, rerank="score", pool=0)
    quick = g.generate(prompt, settings, rerank="score", pool=0, attention=False, explain=False)
    assert quick.code == whole.code and quick.origins is None and quick.attention == {}
    later = g.explain(quick)
    assert later.origins == whole.origins and later.code == quick.code
    assert set(later.attention) == {"encoder", "decoder", "cross"}
    for kind, maps in whole.attention.items():
        assert np.allclose(later.attention[kind], maps, atol=1e-6), kind
    assert g.explain(quick, attention=False).attention == {}
