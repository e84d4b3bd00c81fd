"""Every training preset loads; the helpers of the training loop behave."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import pytest
from conftest import REPO_ROOT

from e2p.errors import E2PError
from e2p.model.training import RETIRED_OPTIONS, TrainConfig, collate, lr_at, make_batches

CONFIGS = REPO_ROOT / "train/configs"
PRESETS = sorted(CONFIGS.rglob("*.json"))  # the ablations/ folder's too


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: str(p.relative_to(CONFIGS).with_suffix("")))
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


def test_the_presets_are_those_kept_and_the_ablations_resolve_by_name():
    from train.__main__ import config_path

    names = {str(p.relative_to(CONFIGS).with_suffix("")) for p in PRESETS}
    assert names == {
        "conala",
        "default",
        "original",
        "pretrain",
        "tiny",
        "tiny_copy",
        "tiny_default",
        "ablations/ablate_full",
        "ablations/ablate_no_copy",
        "ablations/ablate_no_retrieval",
    }
    assert config_path("ablations/ablate_no_copy") == CONFIGS / "ablations/ablate_no_copy.json"
    assert config_path("default") == CONFIGS / "default.json"
    assert config_path("my/run.json") == Path("my/run.json")  # a path, as given
    # each ablation takes one shipped component out of ablate_full, the shipped recipe's baseline
    full = TrainConfig.load(CONFIGS / "ablations/ablate_full.json")
    shipped = TrainConfig.load(CONFIGS / "default.json")
    assert full.copy and full.retrieval and full.copy_attention and shipped.copy and shipped.retrieval
    assert TrainConfig.load(config_path("ablations/ablate_no_copy")) == replace(full, copy=False)
    assert TrainConfig.load(config_path("ablations/ablate_no_retrieval")) == replace(full, retrieval=False)
    # the defaults are the default recipe
    assert shipped == TrainConfig()
    # the tiny model of the default-answer tests answers by the shipped rule: only its size differs
    from e2p.artifact.export import load_preset

    tiny, tiny_policy = load_preset(CONFIGS / "tiny_default.json")
    shipped_policy = load_preset(CONFIGS / "default.json")[1]

    def rule(policy):  # the policy but for the lengths and the beam's width, which follow the size
        def answer(a):
            return replace(a, decoding=replace(a.decoding, max_len=1, beam_size=1, n_best=1))

        return replace(policy, default=answer(policy.default), ranker=answer(policy.ranker))

    assert rule(tiny_policy) == rule(shipped_policy)


def test_a_preset_names_no_answer_setting_outside_its_policy():
    from e2p.model.training import MOVED_TO_POLICY

    for name in sorted(MOVED_TO_POLICY):
        with pytest.raises(E2PError, match="unknown training option"):
            TrainConfig.from_dict({name: 1})
        # an artifact's config.json written before policy.json existed names them: training never used them
        assert TrainConfig.from_trained({"d_model": 64, name: 1}) == TrainConfig(d_model=64)


@pytest.mark.parametrize("name", sorted(RETIRED_OPTIONS))
def test_retired_options_are_refused_in_a_preset_and_dropped_from_an_old_run_at_their_neutral_value(name):
    neutral = RETIRED_OPTIONS[name]
    with pytest.raises(E2PError, match="unknown training option"):
        TrainConfig.from_dict({name: neutral})
    # an artifact's config.json ("train") or a pack written before the option was retired
    assert TrainConfig.from_trained({"d_model": 64, name: neutral}) == TrainConfig(d_model=64)
    other = {bool: True, int: 2, float: 0.5, str: "elsewhere"}[type(neutral)]
    with pytest.raises(E2PError, match=f"{name} .* measured and not kept"):
        TrainConfig.from_trained({name: other})


def test_the_shipped_artifacts_training_config_still_reads():
    config = json.loads((REPO_ROOT / "artifacts/config.json").read_text())
    cfg = TrainConfig.from_trained(config["train"])  # it names the retired options at their neutral values
    # options added after it was built take their defaults, which are how it was trained (EVAL.md's split)
    added = {k: v for k, v in asdict(TrainConfig()).items() if k not in config["train"]}
    assert added == {"split": "eval", "threads": 0}
    assert asdict(cfg) == {k: v for k, v in config["train"].items() if k not in RETIRED_OPTIONS} | added
    assert cfg == TrainConfig.load(CONFIGS / "default.json")  # the default recipe trained it


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


def test_training_shows_the_nearest_example_also_where_inference_ranks_a_pool(synthetic_corpus):
    from e2p.data.corpus import load_corpus
    from e2p.model.training import prepare

    corpus = load_corpus(synthetic_corpus)
    base = TrainConfig.load(CONFIGS / "tiny.json")
    prep = prepare(corpus, base)
    assert prep.featurizer.order is None  # the ranker orders examples at inference only
    for ex in prep.train[:20]:
        ((nearest, _),) = prep.featurizer.retriever.nearest(ex.prompt, 1, exclude_key=ex.key)
        assert prep.featurizer.source(ex.prompt, exclude_key=ex.key).neighbour == nearest
