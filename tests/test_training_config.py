"""Every training preset loads; the helpers of the training loop behave."""

from __future__ import annotations

import json

import pytest
from conftest import REPO_ROOT

from e2p.errors import E2PError
from e2p.model.training import TrainConfig, collate, lr_at, make_batches

PRESETS = sorted((REPO_ROOT / "train/configs").glob("*.json"))


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.stem)
def test_presets_build_a_model_config(path):
    if "base" in json.loads(path.read_text()):  # a pretraining preset: its base config, overridden
        from train.pretrain import load_config

        cfg = load_config(str(path))[1]
    else:
        cfg = TrainConfig.load(path)
    model_cfg = cfg.model_config(100, 100)
    assert model_cfg.max_len >= cfg.max_tgt + 2


def test_unknown_option_is_named():
    with pytest.raises(E2PError, match="unknown training option"):
        TrainConfig.from_dict({"d_model": 64, "dmodel": 64})


def test_batches_cover_every_pair_once_within_the_budget():
    pairs = [([4] * (3 + i % 17), [5] * (2 + i % 29)) for i in range(200)]
    batches = make_batches(pairs, batch_tokens=300, seed=3)
    assert sorted(i for b in batches for i in b) == list(range(200))
    for b in batches:
        longest = max(max(len(pairs[i][0]), len(pairs[i][1]) + 1) for i in b)
        assert len(b) == 1 or longest * len(b) <= 300
    assert batches != make_batches(pairs, batch_tokens=300, seed=4)  # shuffled by seed


def test_collate_shifts_target_by_one():
    src, tgt_in, tgt_out = collate([([7, 8], [9, 10, 11])], [0], "cpu")
    assert src.tolist() == [[7, 8]]
    assert tgt_in.tolist() == [[2, 9, 10, 11]]
    assert tgt_out.tolist() == [[9, 10, 11, 3]]


def test_learning_rate_warms_up_then_decays():
    cfg = TrainConfig(lr=1e-3, warmup_steps=10)
    rates = [lr_at(s, cfg, 100) for s in range(100)]
    assert rates[0] < rates[9] == pytest.approx(1e-3)
    assert rates[-1] < rates[50] < rates[10]
    assert min(rates[10:]) >= 1e-4 - 1e-12


def test_rank_train_examples_shows_the_rankers_first_in_training(synthetic_corpus):
    from dataclasses import replace

    from e2p.answer.ranking import RankerFeatures, fit_ranker
    from e2p.data.corpus import load_corpus
    from e2p.model.training import prepare, ranker_pool

    corpus = load_corpus(synthetic_corpus)
    base = replace(TrainConfig.load(REPO_ROOT / "train/configs/tiny.json"), example_pool=4, ranker_pool=4)
    plain, ranked = prepare(corpus, base), prepare(corpus, replace(base, rank_train_examples=True))
    assert plain.featurizer.order is None
    train = ranked.train
    ranker, features = fit_ranker(train, k=max(2, ranker_pool(base))), RankerFeatures(train)
    moved = 0
    for ex in train:
        key = ex.family or ex.key
        hits = ranked.featurizer.retriever.nearest(ex.prompt, 4, exclude_key=key)
        first = hits[int(ranker.scores(features.rows(ex.prompt, hits)).argmax())][0]
        assert ranked.featurizer.source(ex.prompt, exclude_key=key).neighbour == first
        moved += first != hits[0][0]
    assert moved  # some training sources now show another example than the nearest
    assert ranked.train_pairs != plain.train_pairs
    # the vocabulary is the nearest-neighbour one, so pretrained weights still fit
    assert ranked.src_vocab.tokens == plain.src_vocab.tokens


def test_more_neighbours_drawn_at_random_keep_the_nearest_neighbour_vocabulary(synthetic_corpus):
    from dataclasses import replace

    from e2p.data.corpus import load_corpus
    from e2p.model.training import prepare

    corpus = load_corpus(synthetic_corpus)
    base = replace(TrainConfig.load(REPO_ROOT / "train/configs/tiny.json"), min_freq=3)
    plain = prepare(corpus, base)
    two = prepare(corpus, replace(base, neighbours=2, train_pool=3))
    assert two.train_pairs != plain.train_pairs  # the sources now hold two drawn examples
    # pretrained weights built on the nearest-neighbour vocabulary still fit
    assert two.src_vocab.tokens == plain.src_vocab.tokens
