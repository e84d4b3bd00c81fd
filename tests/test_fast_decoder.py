"""The fast decoder step (e2p.model.fast_decoder) against the reference `Seq2Seq.step`."""

import pytest
import torch

torch.set_num_threads(1)

import models  # noqa: E402

from e2p.model.decoding import DecodeSettings, decode  # noqa: E402
from e2p.model.fast_decoder import FastDecoder, _move_rows, fast_decoder_for  # noqa: E402

IDS, SRC, SHAPES = models.STEP_IDS, models.STEP_SRC, models.STEP_SHAPES


@pytest.fixture(params=list(SHAPES), scope="module")
def model(request):
    vocab = 30
    return models.tiny_model(vocab, seed=3, **SHAPES[request.param])


def test_each_step_agrees_with_the_reference(model):
    """Log-probs of every step of a beam of 3 rows, reordered between steps as a beam does."""
    fast = FastDecoder(model)
    # rows after the first step multiply by the output layer through oneDNN where torch has it
    assert (fast.head_rows is not None) == torch.backends.mkldnn.is_available()
    models.assert_steps_agree_with_the_reference(model, fast, SRC)


@pytest.mark.parametrize("strategy", ["greedy", "beam", "sample"])
def test_decoding_gives_the_reference_candidates(model, strategy):
    settings = DecodeSettings(strategy=strategy, beam_size=4, n_best=4, num_samples=4, seed=7, max_len=20)
    for src in (SRC, [9, 9, 4, 2], [7, 2]):
        fast = decode(model, src, settings, **IDS)
        ref = decode(model, src, settings, **IDS, eager=True)
        assert [h.tokens for h in fast] == [h.tokens for h in ref]
        for f, r in zip(fast, ref):
            assert f.score == pytest.approx(r.score, abs=1e-4)


def test_the_fast_decoder_follows_the_weights():
    """Training updates the weights in place: the fused copy is built again, never stale."""
    model = models.tiny_model(30, seed=1, share_embeddings=True, copy_attention=True)
    first = fast_decoder_for(model)
    assert fast_decoder_for(model) is first  # unchanged weights: built once
    with torch.no_grad():
        model.decoder[0].self_attn.k_proj.weight.add_(0.5)
    again = fast_decoder_for(model)
    assert again is not first
    # d_model 32, stored (in, out)
    assert torch.equal(again.layers[0].qkv_w[:, 32:64], model.decoder[0].self_attn.k_proj.weight.t())
    settings = DecodeSettings(strategy="greedy", max_len=15)
    fast, ref = decode(model, SRC, settings, **IDS), decode(model, SRC, settings, **IDS, eager=True)
    assert fast[0].tokens == ref[0].tokens


def test_weights_are_every_matrix_a_step_multiplies_by():
    model = models.tiny_model(30, seed=0, share_embeddings=True, copy_attention=True)
    fast = FastDecoder(model)
    C, F_, V, L = 32, 64, 30, 2
    step_macs = sum(w.numel() for w in fast.weights())
    assert step_macs == L * (3 * C * C + C * C + C * C + C * C + C * F_ + F_ * C) + V * C + C * C + C


@pytest.mark.parametrize("strategy", ["greedy", "beam"])
def test_greedy_and_beam_5_give_the_reference_candidates(model, strategy):
    """The decoding loops as the benchmark runs them: beam 5 with its n-best, greedy forced long
    (min_len) and with an EOS penalty (the rules' one additive bias), every candidate as the reference's."""
    settings = DecodeSettings(strategy=strategy, beam_size=5, n_best=5, min_len=12, max_len=25, eos_penalty=0.3)
    for src in (SRC, [9, 9, 4, 2], [7, 2], [3, 4, 5, 6, 7, 8, 9, 10, 11]):
        fast = decode(model, src, settings, **IDS, unk_id=3)
        ref = decode(model, src, settings, **IDS, unk_id=3, eager=True)
        assert [h.tokens for h in fast] == [h.tokens for h in ref]
        assert len(fast) == (5 if strategy == "beam" else 1)
        for f, r in zip(fast, ref):
            assert f.score == pytest.approx(r.score, abs=1e-4)
            assert f.token_logprobs == pytest.approx(r.token_logprobs, abs=1e-4)
            assert [[i for i, _ in a] for a in f.alternatives] == [[i for i, _ in a] for a in r.alternatives]
            assert 3 not in f.tokens and 0 not in f.tokens and 1 not in f.tokens  # unk, pad, bos banned


def test_rows_move_in_place_as_a_gather_would_move_them():
    """A beam's reorder copies rows in place: the cache ends as `index_select` would make it, for
    shifts, duplicates and cycles (a row kept aside), past the filled part untouched."""
    import random

    rng = random.Random(0)
    cases = [[0, 0, 1, 2, 3], [1, 0], [2, 0, 1], [1, 2, 0, 0], [4, 4, 4, 4, 4], [0, 1, 2]]
    for _ in range(2000):
        rows = rng.randint(1, 6)
        picks = [rng.randrange(rows) for _ in range(rows)]
        cases.append(picks if rng.random() < 0.5 else rng.sample(range(rows), rows))
    for index in cases:
        rows, n = len(index), rng.randint(1, 4)
        cache = torch.randn(rows, 2, 1, n + 2, 3)
        expected = cache.clone()
        expected[:, :, :, :n] = cache[:, :, :, :n].index_select(0, torch.tensor(index))
        moved = _move_rows(cache, index, n)
        assert torch.equal(cache, expected), index
        assert moved == (index != list(range(rows)))
