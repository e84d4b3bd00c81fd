"""Model, attention and loss tests on a tiny random Transformer (fast, CPU)."""

import numpy as np
import pytest
import torch

torch.set_num_threads(1)  # two shared cores: stay polite

import models  # noqa: E402
from models import copy_model  # noqa: E402

from e2p.model.loss import make_token_weights, weighted_cross_entropy  # noqa: E402
from e2p.model.transformer import ConfigError, ModelConfig, Seq2Seq  # noqa: E402

PAD, BOS, EOS = 0, 1, 2
SRC_V, TGT_V = 17, 19  # different sizes so vocab mix-ups show


def tiny_config(**kw) -> ModelConfig:
    return models.tiny_config(SRC_V, TGT_V, **kw)


def tiny_model(seed: int = 0, **kw) -> Seq2Seq:
    return models.tiny_model(SRC_V, TGT_V, seed=seed, **kw)


def padded_batch():
    """Two sources (S=6) and targets (T=4), the second of each padded; S != T on purpose."""
    src = torch.tensor([[5, 6, 7, 8, 9, EOS], [4, 5, EOS, PAD, PAD, PAD]])
    tgt = torch.tensor([[BOS, 3, 4, 5], [BOS, 6, PAD, PAD]])
    return src, tgt


# --------------------------------------------------------------------------- config


def test_config_round_trips_through_dict():
    cfg = tiny_config(pre_norm=False, tie_output=False)
    d = cfg.to_dict()
    assert ModelConfig.from_dict(d) == cfg
    model = Seq2Seq(ModelConfig.from_dict(d))
    assert model.config == cfg


def test_config_rejects_unknown_and_missing_keys():
    d = tiny_config().to_dict()
    with pytest.raises(ConfigError, match="unknown ModelConfig key.*n_layer"):
        ModelConfig.from_dict({**d, "n_layer": 4})
    d.pop("tgt_vocab")
    with pytest.raises(ValueError, match="missing.*tgt_vocab"):
        ModelConfig.from_dict(d)


@pytest.mark.parametrize("bad", [dict(d_model=30, n_heads=4), dict(dropout=1.0), dict(pad_id=99), dict(enc_layers=0)])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        tiny_config(**bad)


def test_num_parameters_counts_tied_matrix_once():
    tied, untied = tiny_model(tie_output=True), tiny_model(tie_output=False)
    assert tied.lm_head.weight is tied.tgt_embed.weight
    assert untied.num_parameters() - tied.num_parameters() == TGT_V * 32


# --------------------------------------------------------------------------- forward


def test_forward_shapes_and_finite():
    model = tiny_model()
    src, tgt = padded_batch()
    logits = model(src, tgt)
    assert logits.shape == (2, 4, TGT_V)
    assert torch.isfinite(logits).all()
    memory, src_pad, w = model.encode(src)
    assert memory.shape == (2, 6, 32) and w is None
    assert src_pad.tolist()[1] == [False, False, False, True, True, True]


@pytest.mark.parametrize("pre_norm", [True, False])
def test_sdpa_path_equals_explicit_path(pre_norm):
    model = tiny_model(pre_norm=pre_norm)
    src, tgt = padded_batch()
    with torch.no_grad():
        fused = model(src, tgt)
        explicit, _ = model.forward_with_attention(src, tgt)
    torch.testing.assert_close(fused, explicit, atol=1e-5, rtol=1e-5)


def test_padding_does_not_change_real_positions():
    model = tiny_model()
    src, tgt = padded_batch()
    with torch.no_grad():
        batched = model(src, tgt)[1, :2]
        alone = model(src[1:, :3], tgt[1:, :2])[0]
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=1e-5)


def test_positions_beyond_max_len_raise_clearly():
    model = tiny_model(max_len=8)
    with pytest.raises(ValueError, match="max_len"):
        model(torch.full((1, 9), 5), torch.full((1, 3), 5))


# --------------------------------------------------------------------------- attention


def test_attention_weights_rows_sum_to_one_and_masked_entries_are_zero():
    model = tiny_model()
    src, tgt = padded_batch()
    with torch.no_grad():
        _, w = model.forward_with_attention(src, tgt)
    enc, dec, cross = w["encoder"], w["decoder"], w["cross"]
    assert enc.shape == (2, 2, 2, 6, 6)  # (L, B, H, S, S)
    assert dec.shape == (2, 2, 2, 4, 4)  # (L, B, H, T, T)
    assert cross.shape == (2, 2, 2, 4, 6)  # (L, B, H, T, S)
    for m in (enc, dec, cross):
        torch.testing.assert_close(m.sum(-1), torch.ones(m.shape[:-1]), atol=1e-5, rtol=0)
    # source padding (columns 3..5 of the second example) gets exactly zero weight
    assert (enc[:, 1, :, :, 3:] == 0).all()
    assert (cross[:, 1, :, :, 3:] == 0).all()
    assert (enc[:, 0] > 0).all()
    # future target positions (above the diagonal) and target padding: exactly zero
    future = torch.ones(4, 4, dtype=torch.bool).triu(1)
    assert (dec[..., future] == 0).all()
    assert (dec[..., ~future][:, 0] > 0).all()
    assert (dec[:, 1, :, :, 2:] == 0).all()


def test_attention_maps_orientation_shapes_and_no_state_on_module():
    model = tiny_model(enc_layers=1, dec_layers=2)
    model.train()
    before = set(vars(model))
    src_ids = [5, 6, 7, 8, 9, EOS]  # S = 6
    tgt_ids = [BOS, 3, 4]  # T = 3
    maps = model.attention_maps(src_ids, tgt_ids)
    assert model.training, "training mode must be restored"
    assert set(vars(model)) == before
    assert maps["encoder"].shape == (1, 2, 6, 6)  # [L, H, S, S]
    assert maps["decoder"].shape == (2, 2, 3, 3)  # [L, H, T, T]
    assert maps["cross"].shape == (2, 2, 3, 6)  # [L, H, T, S]: rows target, cols source
    assert maps["src_ids"] == src_ids and maps["tgt_ids"] == tgt_ids
    for key in ("encoder", "decoder", "cross"):
        assert maps[key].dtype == np.float32
        np.testing.assert_allclose(maps[key].sum(-1), 1.0, atol=1e-5)
    assert (maps["decoder"][..., np.triu_indices(3, 1)[0], np.triu_indices(3, 1)[1]] == 0).all()
    assert maps["decoder"][:, :, 0, 0] == pytest.approx(1.0)  # BOS sees only itself
    # the same pass twice gives the same maps (eval mode, no dropout, nothing cached)
    again = model.attention_maps(src_ids, tgt_ids)
    np.testing.assert_array_equal(again["cross"], maps["cross"])


# --------------------------------------------------------------------------- incremental decoding


@pytest.mark.parametrize("pre_norm", [True, False])
def test_cached_step_equals_uncached_and_full_pass(pre_norm):
    model = tiny_model(pre_norm=pre_norm)
    src, _ = padded_batch()
    feed = torch.tensor([[BOS, 3, 4, 5, 6], [BOS, 7, 7, 8, 3]])  # (B, 5)
    with torch.inference_mode():
        memory, src_pad, _ = model.encode(src)
        cached = model.init_state(memory, src_pad, use_cache=True)
        uncached = model.init_state(memory, src_pad, use_cache=False)
        full = torch.log_softmax(model.decode_full(feed, memory, src_pad)[0], -1)  # (B, T, V)
        for t in range(feed.size(1)):
            lp_c, cached = model.step(feed[:, t], cached)
            lp_u, uncached = model.step(feed[:, t], uncached)
            torch.testing.assert_close(lp_c, lp_u, atol=1e-5, rtol=0)
            torch.testing.assert_close(lp_c, full[:, t], atol=1e-5, rtol=0)
        assert cached.length == 5 and cached.self_kv[0][0].shape == (2, 2, 5, 16)
        assert cached.cross_kv[0][0].shape == (2, 2, 6, 16)  # (B, H, S, D)


@pytest.mark.parametrize("use_cache", [True, False])
def test_state_reorder_moves_every_cached_tensor(use_cache):
    model = tiny_model()
    src, _ = padded_batch()
    with torch.inference_mode():
        memory, src_pad, _ = model.encode(src)
        state = model.init_state(memory, src_pad, use_cache=use_cache)
        _, state = model.step(torch.tensor([BOS, BOS]), state)
        _, state = model.step(torch.tensor([3, 4]), state)
        index = torch.tensor([1, 0, 1])
        moved = state.reorder(index)
        assert moved.tokens.size(0) == 3 and state.tokens.size(0) == 2  # original untouched
        lp_moved, _ = model.step(torch.tensor([5, 5, 5]), moved)
        lp_orig, _ = model.step(torch.tensor([5, 5]), state)
    torch.testing.assert_close(lp_moved, lp_orig[index], atol=1e-5, rtol=0)


# --------------------------------------------------------------------------- loss


def test_loss_ignores_padding():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 7)
    targets = torch.tensor([[3, 4, PAD], [5, PAD, PAD]])
    loss = weighted_cross_entropy(logits, targets, None, 0.0, PAD)
    ce = torch.nn.functional.cross_entropy
    expected = torch.stack(
        [
            ce(logits[0, 0], torch.tensor(3)),
            ce(logits[0, 1], torch.tensor(4)),
            ce(logits[1, 0], torch.tensor(5)),
        ]
    ).mean()
    torch.testing.assert_close(loss, expected)
    changed = logits.clone()
    changed[0, 2] = 100 * torch.randn(7)  # garbage at a pad position
    assert weighted_cross_entropy(changed, targets, None, 0.0, PAD).item() == pytest.approx(loss.item())
    all_pad = weighted_cross_entropy(logits, torch.zeros(2, 3, dtype=torch.long), None, 0.0, PAD)
    assert all_pad.item() == 0.0


def test_token_weights_change_the_loss_as_weighted_mean():
    torch.manual_seed(0)
    logits = torch.randn(1, 2, 7)
    targets = torch.tensor([[3, 4]])
    ce = torch.nn.functional.cross_entropy(logits[0], targets[0], reduction="none")
    weights = make_token_weights(7, {4: 3.0})
    assert weights.tolist() == [1, 1, 1, 1, 3, 1, 1]
    loss = weighted_cross_entropy(logits, targets, weights, 0.0, PAD)
    torch.testing.assert_close(loss, (ce[0] + 3 * ce[1]) / 4)
    assert loss.item() != pytest.approx(ce.mean().item())
    ones = weighted_cross_entropy(logits, targets, make_token_weights(7, {}), 0.0, PAD)
    torch.testing.assert_close(ones, ce.mean())
    with pytest.raises(ValueError):
        make_token_weights(7, {9: 2.0})
    with pytest.raises(ValueError):
        make_token_weights(7, {3: -1.0})


def test_label_smoothing_raises_loss_on_a_perfect_prediction():
    targets = torch.tensor([[3, 4, 5]])
    logits = 30.0 * torch.nn.functional.one_hot(targets, 7).float()  # certain and right
    sharp = weighted_cross_entropy(logits, targets, None, 0.0, PAD)
    smooth = weighted_cross_entropy(logits, targets, None, 0.1, PAD)
    assert sharp.item() < 1e-6
    assert smooth.item() > 0.5


def test_loss_backpropagates_into_the_model():
    model = tiny_model().train()
    src, tgt = padded_batch()
    targets = torch.tensor([[3, 4, 5, EOS], [6, EOS, PAD, PAD]])
    loss = weighted_cross_entropy(model(src, tgt), targets, None, 0.1, PAD)
    loss.backward()
    assert model.src_embed.weight.grad is not None
    assert torch.isfinite(model.tgt_embed.weight.grad).all()


def test_shared_embeddings_use_one_table():
    cfg = ModelConfig(
        src_vocab=20, tgt_vocab=20, d_model=16, n_heads=2, enc_layers=1, dec_layers=1, d_ff=32, share_embeddings=True
    )
    model = Seq2Seq(cfg)
    assert model.src_embed.weight is model.tgt_embed.weight is model.lm_head.weight
    logits = model(torch.randint(4, 20, (2, 5)), torch.randint(4, 20, (2, 3)))
    assert logits.shape == (2, 3, 20)
    with pytest.raises(ConfigError, match="joint vocabulary"):
        ModelConfig(src_vocab=20, tgt_vocab=21, share_embeddings=True)


def test_copy_attention_is_a_distribution_and_cache_agrees():
    """Pointer-generator output: log-probs that sum to 1, equal on the fused, explicit,
    cached and uncached paths."""
    from e2p.model.decoding import DecodeSettings, decode

    model = copy_model(dec_layers=2)
    src = torch.tensor([[5, 9, 7, 11, 0], [6, 6, 8, 0, 0]])
    tgt = torch.tensor([[2, 5, 9, 7], [2, 6, 8, 8]])
    with torch.no_grad():
        scores = model(src, tgt)
        explicit, _ = model.forward_with_attention(src, tgt)
    assert torch.allclose(scores.exp().sum(-1), torch.ones(2, 4), atol=1e-4)
    assert torch.allclose(scores, explicit, atol=1e-5)
    for strategy in ("greedy", "beam"):
        s = DecodeSettings(strategy=strategy, beam_size=3, n_best=3, max_len=8)
        ids = dict(bos_id=2, eos_id=3, pad_id=0)
        cached = decode(model, [5, 9, 7, 11], s, **ids)
        plain = decode(model, [5, 9, 7, 11], DecodeSettings(**{**s.__dict__, "use_cache": False}), **ids)
        assert [h.tokens for h in cached] == [h.tokens for h in plain]
        assert [h.score for h in cached] == pytest.approx([h.score for h in plain], abs=1e-5)
    with pytest.raises(ConfigError, match="share_embeddings"):
        ModelConfig(src_vocab=30, tgt_vocab=30, copy_attention=True)
