"""An ensemble decodes with the mean of its members' next-token distributions, through every
decoding path (greedy, beam, with and without the key-value cache)."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import REPO_ROOT
from models import copy_model, small_config

from e2p.answer.generator import Generator
from e2p.errors import E2PError
from e2p.model.decoding import DecodeSettings, decode
from e2p.model.ensemble import Ensemble
from e2p.model.transformer import Seq2Seq

IDS = dict(bos_id=1, eos_id=2, pad_id=0)
SRC = [5, 6, 7, 8, 9, 10]


def _first_step(model, use_cache=True):
    src = torch.tensor([SRC])
    memory, src_pad, _ = model.encode(src)
    state = model.init_state(memory, src_pad, use_cache=use_cache, src=src)
    lprobs, _ = model.step(torch.tensor([IDS["bos_id"]]), state)
    return lprobs[0]


@pytest.mark.parametrize("use_cache", [True, False])
def test_each_step_is_the_mean_of_the_members_probabilities(use_cache):
    a, b = copy_model(seed=0), copy_model(seed=1)
    with torch.inference_mode():
        mixed = _first_step(Ensemble([a, b]), use_cache)
        pa, pb = _first_step(a, use_cache).exp(), _first_step(b, use_cache).exp()
    torch.testing.assert_close(mixed.exp(), (pa + pb) / 2)
    assert float(mixed.exp().sum()) == pytest.approx(1.0, abs=1e-5)
    assert not torch.allclose(pa, pb)  # the members differ, so the mean is a real mixture


@pytest.mark.parametrize("strategy", ["greedy", "beam"])
def test_an_ensemble_of_one_model_and_itself_decodes_like_the_model(strategy):
    model = copy_model(seed=3)
    settings = DecodeSettings(strategy=strategy, beam_size=3, n_best=3, max_len=12)
    alone = decode(model, SRC, settings, **IDS)
    twice = decode(Ensemble([model, model]), SRC, settings, **IDS)
    assert [h.tokens for h in twice] == [h.tokens for h in alone]
    assert [h.score for h in twice] == pytest.approx([h.score for h in alone], abs=1e-4)


def test_greedy_follows_the_mixture_not_either_member():
    a, b = copy_model(seed=0), copy_model(seed=1)
    settings = DecodeSettings(strategy="greedy", max_len=1, min_len=1)
    with torch.inference_mode():
        mixed = (_first_step(a).exp() + _first_step(b).exp()) / 2
        mixed[[IDS["pad_id"], IDS["bos_id"], IDS["eos_id"]]] = -math.inf  # never emitted / banned by min_len
    [hyp] = decode(Ensemble([a, b]), SRC, settings, **IDS)
    assert hyp.tokens == [int(mixed.argmax())]


def test_members_must_share_the_vocabularies():
    with pytest.raises(ValueError, match="share"):
        Ensemble([copy_model(), Seq2Seq(small_config(src_vocab=31, tgt_vocab=31)).eval()])


def test_the_sweep_decodes_with_an_artifact_and_itself_like_the_artifact(tiny_copy_artifacts, tiny_artifacts):
    """`decoding_sweep.py --ensemble`: the generator writes through the ensemble; an artifact with other
    vocabularies is refused with a message."""
    import sys

    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    try:
        from decoding_sweep import with_members
    finally:
        sys.path.remove(str(REPO_ROOT / "benchmarks"))
    prompt = "write a function to add two numbers"
    settings = DecodeSettings(strategy="beam", beam_size=3, n_best=3, max_len=30)
    generator = Generator(str(tiny_copy_artifacts))
    alone = generator.generate(prompt, settings, rerank="score", attention=False, pool=0, fallback=False)
    generator.decoder = with_members(generator, [str(tiny_copy_artifacts)])
    assert isinstance(generator.decoder, Ensemble) and len(generator.decoder.members) == 2
    steps = []
    second = generator.decoder.members[1]
    second.step = lambda *a, _step=second.step: steps.append(1) or _step(*a)  # the second member is asked
    twice = generator.generate(prompt, settings, rerank="score", attention=False, pool=0, fallback=False)
    assert steps and twice.code == alone.code
    with pytest.raises(E2PError, match="vocabularies differ"):
        with_members(generator, [str(tiny_artifacts)])
