import random

import pytest

from e2p.data.augment import augment_examples, paraphrase_prompt, renamable_names, rename_code
from e2p.data.corpus import Example
from e2p.data.features import FeatureConfig, Featurizer
from e2p.data.retrieval import Retriever
from e2p.syntax import compiles

CODE = """import random
def pick(numbers, k=2):
    chosen = random.sample(numbers, k)
    total = 0
    for value in chosen:
        total += value
    print(f"sum of {total}")
    return total
print(pick([1, 2, 3], k=2))
"""


def test_only_safe_names_are_renamable():
    names = renamable_names(CODE, "write a function to pick numbers")
    # `numbers` is in the prompt, `k` is a keyword argument, `total` is inside an f-string,
    # `pick` is a function and `random` a module: none of them may change.
    assert names == ["chosen", "value"]


def test_renaming_never_touches_parts_of_other_words():
    renamed = rename_code(CODE, {"chosen": "picked", "value": "item"})
    assert "random.sample" in renamed and "import random" in renamed
    assert "for item in picked:" in renamed and "total += item" in renamed
    assert compiles(renamed)


def test_a_renaming_that_changes_meaning_is_refused():
    # `total` also lives inside the f-string, so renaming only the tokens would change the output.
    assert rename_code(CODE, {"total": "acc"}) is None
    assert rename_code("x = (", {"x": "y"}) is None


def test_attributes_keep_their_names():
    code = "class P:\n    pass\np = P()\np.count = 1\ncount = p.count + 1\n"
    renamed = rename_code(code, {"count": "n"})
    assert "p.count = 1" in renamed and "n = p.count + 1" in renamed


def test_paraphrase_swaps_only_the_opening():
    rng = random.Random(0)
    out = paraphrase_prompt("Write a python function to add 2 and 3", rng)
    assert out != "Write a python function to add 2 and 3"
    assert out.endswith(" add 2 and 3")
    assert paraphrase_prompt("sort a list", rng) == "sort a list"


def test_augmented_examples_compile_and_remember_their_family():
    train = [
        Example("write a python function to add two numbers", "def add(a, b):\n    s = a + b\n    return s\n", 1),
        Example("write a program to print hello", "msg = 'hello'\nprint(msg)\n", 4),
    ]
    out = augment_examples(train, copies=3, seed=1)
    assert out, "some variants are expected"
    for ex in out:
        assert compiles(ex.code)
        assert ex.family in {t.key for t in train}
        assert (ex.prompt, ex.code) not in {(t.prompt, t.code) for t in train}
    assert augment_examples(train, copies=3, seed=1) == out  # seeded


def test_an_augmented_example_never_retrieves_its_original():
    original = Example("write a python program to print hello", "msg = 'hello'\nprint(msg)\n", 1)
    other = Example("write a program to print the sum of two numbers", "print(1 + 2)\n", 3)
    featurizer = Featurizer(FeatureConfig(copy=False), Retriever([original, other]))
    variant = Example("write a program to print hello", "text = 'hello'\nprint(text)\n", 1, family=original.key)
    src = featurizer.source(variant.prompt, exclude_key=variant.family)
    assert src.neighbour == other
    tokens, _ = featurizer.pair(variant)
    assert tokens == src.tokens


@pytest.mark.slow
def test_every_augmented_corpus_example_keeps_its_meaning(full_corpus):
    import warnings

    train = full_corpus.split("train")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the corpus's own code trips SyntaxWarnings
        out = augment_examples(train, copies=1, seed=0)
        assert len(out) > len(train) // 2
        assert all(compiles(ex.code) for ex in out)
