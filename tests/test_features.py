"""The encoder's source: the prompt, then its retrieved train examples (one or more)."""

import random

import pytest

from e2p.data.corpus import Example
from e2p.data.features import CODE, SEP, FeatureConfig, Featurizer
from e2p.data.retrieval import Retriever

TRAIN = [
    Example("add two numbers and print the sum", "print(1 + 2)\n", 1),
    Example("add two numbers and return the sum", "def add(a, b):\n    return a + b\n", 2),
    Example("add three numbers", "print(1 + 2 + 3)\n", 3),
    Example("reverse a string", "print('abc'[::-1])\n", 4),
]


def neighbour_codes(src) -> list[str]:
    """The code of each retrieved example in the source, as one string of tokens."""
    blocks = " ".join(src.tokens).split(f" {SEP} ")[1:]
    return [block.split(f" {CODE} ", 1)[1] for block in blocks]


def code_of(f, ex, src) -> str:
    return " ".join(f.target(ex.code, src.slots))


def test_two_neighbours_follow_the_prompt_nearest_first():
    f = Featurizer(FeatureConfig(copy=False, neighbours=2, max_src=500), Retriever(TRAIN))
    src = f.source("add two numbers")
    assert src.tokens.count(SEP) == 2 and src.tokens.count(CODE) == 2
    assert src.tokens[: src.prompt_len] == ["add", "two", "numbers"]
    hits = [ex for ex, _ in Retriever(TRAIN).nearest("add two numbers", 2)]
    assert src.neighbour == hits[0]
    assert neighbour_codes(src) == [code_of(f, ex, src) for ex in hits]


def test_the_source_says_how_similar_the_shown_example_is():
    f = Featurizer(FeatureConfig(copy=False, neighbours=2, max_src=500), Retriever(TRAIN))
    (first, sim), _ = Retriever(TRAIN).nearest("add two numbers", 2)
    src = f.source("add two numbers")
    assert src.neighbour == first and src.similarity == pytest.approx(sim) and 0 < sim <= 1
    assert Featurizer(FeatureConfig(copy=False, retrieval=False), None).source("add two numbers").similarity == 0.0


def test_one_neighbour_is_the_nearest_as_before():
    f = Featurizer(FeatureConfig(copy=False), Retriever(TRAIN))
    src = f.source("reverse a string")
    assert src.tokens.count(SEP) == 1 and src.neighbour == TRAIN[3]


def test_training_draws_neighbours_from_the_pool_in_rank_order_and_never_the_example_itself():
    f = Featurizer(FeatureConfig(copy=False, neighbours=1, train_pool=3, max_src=500), Retriever(TRAIN))
    example = TRAIN[0]
    drawn = {
        f.source(example.prompt, exclude_key=example.key, rng=random.Random(seed)).neighbour.line for seed in range(30)
    }
    assert drawn == {2, 3, 4}  # the three nearest other examples, each drawn sometimes
    f2 = Featurizer(FeatureConfig(copy=False, neighbours=2, train_pool=3, max_src=500), Retriever(TRAIN))
    nearest = [ex.line for ex, _ in Retriever(TRAIN).nearest(example.prompt, 3, exclude_key=example.key)]
    for seed in range(10):
        src = f2.source(example.prompt, exclude_key=example.key, rng=random.Random(seed))
        lines = [next(ex.line for ex in TRAIN if code_of(f2, ex, src) == code) for code in neighbour_codes(src)]
        assert len(lines) == 2 and lines == sorted(lines, key=nearest.index)
    # without rng (inference, and the valid split in training) the pool is not used
    assert f.source(example.prompt, exclude_key=example.key).neighbour.line == nearest[0]


def test_example_pool_shows_the_examples_the_order_puts_first_at_inference_only():
    retriever = Retriever(TRAIN)
    seen = []

    def by_line_desc(prompt, hits):  # stands in for the ranker: any order over the retrieved hits
        seen.append((prompt, [ex.line for ex, _ in hits]))
        return sorted((ex for ex, _ in hits), key=lambda ex: -ex.line)

    cfg = FeatureConfig(copy=False, neighbours=1, example_pool=3, max_src=500)
    f = Featurizer(cfg, retriever, by_line_desc)
    nearest = [ex.line for ex, _ in retriever.nearest("add two numbers", 3)]
    src = f.source("add two numbers")
    assert seen == [("add two numbers", nearest)]  # the order sees the pool, nearest first
    assert src.neighbour.line == max(nearest) != nearest[0]
    assert neighbour_codes(src) == [code_of(f, src.neighbour, src)]
    # training draws as before: the order is never asked
    drawn = f.source(TRAIN[0].prompt, exclude_key=TRAIN[0].key, rng=random.Random(0))
    assert len(seen) == 1 and drawn.neighbour.line == retriever.nearest(TRAIN[0].prompt, 2)[1][0].line
    # without an order, or with a pool no larger than the neighbours shown, the nearest is shown
    assert Featurizer(cfg, retriever).source("add two numbers").neighbour.line == nearest[0]
    one = Featurizer(FeatureConfig(copy=False, example_pool=1), retriever, by_line_desc)
    assert one.source("add two numbers").neighbour.line == nearest[0] and len(seen) == 1


def test_start_shows_the_next_examples_in_order():
    retriever = Retriever(TRAIN)
    nearest = [ex.line for ex, _ in retriever.nearest("add two numbers", 3)]
    f = Featurizer(FeatureConfig(copy=False), retriever)
    assert [f.source("add two numbers", start=i).neighbour.line for i in range(3)] == nearest
    by_line_desc = lambda prompt, hits: sorted((ex for ex, _ in hits), key=lambda ex: -ex.line)  # noqa: E731
    ranked = Featurizer(FeatureConfig(copy=False, example_pool=3), retriever, by_line_desc)
    assert [ranked.source("add two numbers", start=i).neighbour.line for i in range(3)] == sorted(nearest)[::-1]
