"""The answer policy (e2p.answer.policy): the one place a request's settings are decided, and its file."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from conftest import REPO_ROOT

from e2p.answer.policy import DEFAULT_PRESET, Answer, Policy, PolicyError, Request
from e2p.errors import E2PError
from e2p.model.decoding import DecodeSettings

BEAM = DecodeSettings(strategy="beam", beam_size=5, syntax_guard=True, follow_example=20.0, examples=2)
GREEDY = DecodeSettings(strategy="greedy", syntax_guard=True, eos_penalty=1.0)
SHIPPED = Policy(Answer(BEAM, "run", 0, False), Answer(GREEDY, "ranker", 10, True), example_pool=10, model_offset=-10)


def test_resolve_gives_the_default_answer_unless_asked_otherwise():
    assert SHIPPED.resolve() == Request(BEAM, "run", 0, False, True)
    # the retrieval baseline: its own decoding, pool and fallback
    assert SHIPPED.resolve("ranker") == Request(GREEDY, "ranker", 10, True, True)
    # another rerank orders the default answer's candidates
    assert SHIPPED.resolve("score") == Request(BEAM, "score", 0, False, True)
    # the user's overrides win over the policy's
    ask = SHIPPED.resolve("ranker", pool=3, fallback=False, edit=False, decoding={"max_len": 40})
    assert ask == Request(replace(GREEDY, max_len=40), "ranker", 3, False, False)
    assert ask.kwargs() == {"settings": ask.settings, "rerank": "ranker", "pool": 3, "fallback": False, "edit": False}


def test_own_is_the_default_answers_decoding_without_train_programs_or_fallback():
    with_pool = replace(SHIPPED, default=Answer(BEAM, "ranker", 10, True))
    assert with_pool.resolve(own=True) == Request(BEAM, "score", 0, False)  # a ranker default orders by score
    assert with_pool.resolve(own=True, pool=2, fallback=True) == Request(BEAM, "score", 2, True)
    assert SHIPPED.resolve(own=True) == SHIPPED.resolve() and SHIPPED.own_is_default
    assert not with_pool.own_is_default


@pytest.mark.parametrize(
    "kwargs, match",
    [({"rerank": "agree"}, "rerank must be one of"), ({"pool": -1}, "pool must be"), ({"pool": True}, "pool must be")],
)
def test_resolve_refuses_what_no_request_can_mean(kwargs, match):
    with pytest.raises(E2PError, match=match):
        SHIPPED.resolve(**kwargs)


def test_a_policy_round_trips_through_its_file(tmp_path):
    SHIPPED.save(tmp_path)
    assert Policy.load(tmp_path, "REBUILD") == SHIPPED
    data = json.loads((tmp_path / "policy.json").read_text())
    assert data["ranker"]["model_offset"] == -10 and data["default"]["decoding"]["follow_example"] == 20.0
    (tmp_path / "policy.json").write_text("{}")
    with pytest.raises(PolicyError, match="not an answer policy"):
        Policy.load(tmp_path, "REBUILD")
    (tmp_path / "policy.json").unlink()
    with pytest.raises(PolicyError, match="has no policy.json.*Rebuild it with: REBUILD"):
        Policy.load(tmp_path, "REBUILD")


def test_a_preset_names_only_what_differs_and_the_default_recipe_fills_the_rest():
    assert Policy.from_preset(None, max_len=256) == Policy.from_preset(DEFAULT_PRESET, max_len=256)
    shipped = Policy.load(REPO_ROOT / "artifacts", "REBUILD")
    assert Policy.from_preset(None, max_len=256) == shipped  # the defaults are the shipped policy
    greedy = Policy.from_preset({"default": {"decoding": {"strategy": "greedy"}, "rerank": "score"}}, max_len=96)
    assert greedy.default == Answer(DecodeSettings(strategy="greedy", max_len=96), "score", 0, True)
    assert greedy.ranker.pool == 10 and greedy.ranker.decoding.max_len == 96  # the section left out
    assert Policy.from_preset(None, max_len=96, retrieval=False).example_pool == 0  # nothing retrieved to show


@pytest.mark.parametrize(
    "preset, match",
    [
        ({"answers": {}}, "unknown policy section"),
        ({"default": {"decoding": {}, "pools": 3}}, "unknown answer option"),
        ({"default": {"decoding": {"follow": 3.0}}}, "the preset's policy"),
        ({"default": {"rerank": "agree"}}, "rerank must be one of"),
        ({"example_pool": -2}, "example_pool must be"),
    ],
)
def test_a_bad_preset_policy_is_named(preset, match):
    with pytest.raises(E2PError, match=match):
        Policy.from_preset(preset, max_len=96)
