"""The cycle collector is paused while a process loads, and what was loaded is frozen out of it after."""

from __future__ import annotations

import gc

import pytest

from e2p.collector import loading


@pytest.fixture
def unfrozen():
    """Each test starts and ends with nothing frozen and the collector on, as the other tests expect."""
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.enable()


def test_the_collector_is_off_while_loading_and_on_after(unfrozen):
    with loading():
        assert not gc.isenabled()
        kept = [[i] for i in range(5000)]  # tracked objects loaded meanwhile
    assert gc.isenabled()
    assert gc.get_freeze_count() >= len(kept)  # frozen: later collections skip them


def test_a_collector_that_was_off_stays_off(unfrozen):
    gc.disable()
    with loading():
        pass
    assert not gc.isenabled()


def test_a_failed_load_still_turns_the_collector_back_on(unfrozen):
    with pytest.raises(RuntimeError):
        with loading():
            raise RuntimeError("the weights are damaged")
    assert gc.isenabled()


def test_collect_first_leaves_loadings_garbage_out_of_the_frozen_set(unfrozen):
    class Node:
        pass

    frozen = {}
    for collect in (False, True):
        gc.unfreeze()
        gc.collect()
        with loading(collect=collect):
            for _ in range(2000):  # garbage: pairs that only refer to each other
                a, b = Node(), Node()
                a.other, b.other = b, a
            del a, b
        frozen[collect] = gc.get_freeze_count()
    assert frozen[False] - frozen[True] >= 4000  # without the collection, the 4,000 nodes were frozen


def test_the_cli_loads_the_model_with_the_collector_paused(tiny_artifacts, unfrozen, monkeypatch):
    """`python -m e2p generate` loads through `_load`: the model's objects end up frozen."""
    from e2p import commands

    seen = []
    from e2p.answer import generator

    real = generator.Generator.__init__

    def init(self, *args, **kwargs):
        seen.append(gc.isenabled())
        real(self, *args, **kwargs)

    monkeypatch.setattr(generator.Generator, "__init__", init)
    g = commands._load(str(tiny_artifacts))
    assert seen == [False] and gc.isenabled()
    assert gc.get_freeze_count() > 10_000
    assert g.model is not None
