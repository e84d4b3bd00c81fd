"""The encoder's source: the prompt, then its retrieved train example."""

import pytest

from e2p.data.corpus import Example
from e2p.data.features import CODE, SEP, FeatureConfig, Featurizer
from e2p.data.retrieval import Retriever
from e2p.errors import E2PError

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


def test_the_nearest_example_follows_the_prompt():
    f = Featurizer(FeatureConfig(copy=False, max_src=500), Retriever(TRAIN))
    src = f.source("add two numbers")
    assert src.tokens.count(SEP) == 1 and src.tokens.count(CODE) == 1
    assert src.tokens[: src.prompt_len] == ["add", "two", "numbers"]
    (nearest, _), *_ = Retriever(TRAIN).nearest("add two numbers", 1)
    assert src.neighbour == nearest
    assert neighbour_codes(src) == [code_of(f, nearest, src)]


def test_the_source_says_how_similar_the_shown_example_is():
    f = Featurizer(FeatureConfig(copy=False, max_src=500), Retriever(TRAIN))
    ((first, sim),) = Retriever(TRAIN).nearest("add two numbers", 1)
    src = f.source("add two numbers")
    assert src.neighbour == first and src.similarity == pytest.approx(sim) and 0 < sim <= 1
    assert Featurizer(FeatureConfig(copy=False, retrieval=False), None).source("add two numbers").similarity == 0.0


def test_one_neighbour_is_the_nearest_as_before():
    f = Featurizer(FeatureConfig(copy=False), Retriever(TRAIN))
    src = f.source("reverse a string")
    assert src.tokens.count(SEP) == 1 and src.neighbour == TRAIN[3]


def test_a_training_pair_shows_the_nearest_other_example_never_the_example_itself():
    f = Featurizer(FeatureConfig(copy=False, max_src=500), Retriever(TRAIN))
    example = TRAIN[0]
    ((nearest, _),) = Retriever(TRAIN).nearest(example.prompt, 1, exclude_key=example.key)
    source = f.source(example.prompt, exclude_key=example.key)
    assert source.neighbour == nearest != example
    assert f.pair(example) == (source.tokens, f.target(example.code, source.slots))


def test_example_pool_shows_the_examples_the_order_puts_first_at_inference_only():
    retriever = Retriever(TRAIN)
    seen = []

    def by_line_desc(prompt, hits):  # stands in for the ranker: any order over the retrieved hits
        seen.append((prompt, [ex.line for ex, _ in hits]))
        return sorted((ex for ex, _ in hits), key=lambda ex: -ex.line)

    cfg = FeatureConfig(copy=False, example_pool=3, max_src=500)
    f = Featurizer(cfg, retriever, by_line_desc)
    nearest = [ex.line for ex, _ in retriever.nearest("add two numbers", 3)]
    src = f.source("add two numbers")
    assert seen == [("add two numbers", nearest)]  # the order sees the pool, nearest first
    assert src.neighbour.line == max(nearest) != nearest[0]
    assert neighbour_codes(src) == [code_of(f, src.neighbour, src)]
    # without an order (training), or with a pool of one, the nearest is shown
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


def test_an_old_artifacts_features_load_where_they_show_one_example():
    """Artifacts written before neighbours and train_pool were retired still carry them: one example
    (the only sources today's code builds) loads, and train_pool shaped training only."""
    old = {"copy": True, "retrieval": True, "max_src": 200, "neighbours": 1, "train_pool": 3, "example_pool": 10}
    assert FeatureConfig.from_dict(old) == FeatureConfig(max_src=200, example_pool=10)
    with pytest.raises(E2PError, match="neighbours 2, which was measured and not kept"):
        FeatureConfig.from_dict({**old, "neighbours": 2})
