"""The trainer's speed options keep its maths: the fused loss equals the plain one (value and
gradients), the fast dropout masks have dropout's distribution, the explicit attention path equals
SDPA, and the plain and the configured trainer agree where nothing random is left."""

from __future__ import annotations

import json
import platform
from dataclasses import replace

import pytest
import torch
from conftest import REPO_ROOT
from models import tiny_model

import e2p.model.transformer as model_module
from e2p.model.loss import make_token_weights, output_cross_entropy, weighted_cross_entropy
from e2p.model.training import (
    SPEED_OPTIONS,
    TrainConfig,
    make_model,
    make_optimizer,
    plain,
    reuse_freed_memory,
    train_step,
    with_speed_options,
)
from e2p.model.transformer import Seq2Seq, dropout_mask, keep_scale

PAD = 0


def small_model(copy: bool, dropout: float = 0.0, seed: int = 0) -> Seq2Seq:
    """A `tiny_config` model over 40 tokens with 512 positions, in training mode."""
    changes = dict(share_embeddings=copy, copy_attention=copy, dropout=dropout, max_len=512)
    return tiny_model(40, seed=seed, **changes).train()


def batch():
    torch.manual_seed(1)
    src = torch.randint(4, 40, (3, 7))
    src[1, 5:] = PAD
    src[2, 3:] = PAD
    tgt_in = torch.randint(4, 40, (3, 6))
    tgt_out = torch.randint(4, 40, (3, 6))
    tgt_out[1, 4:] = PAD
    tgt_out[2, 2:] = PAD
    return src, tgt_in, tgt_out


@pytest.mark.parametrize("copy", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_fused_loss_equals_the_plain_loss_and_its_gradients(copy, weighted, smoothing):
    model = small_model(copy)
    src, tgt_in, tgt_out = batch()
    weights = make_token_weights(40, {5: 2.0, 7: 0.5}) if weighted else None
    plain_loss = weighted_cross_entropy(model(src, tgt_in), tgt_out, weights, smoothing, PAD)
    plain_loss.backward()
    expected = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    select = tgt_out != PAD
    fused = output_cross_entropy(*model(src, tgt_in, select), tgt_out[select], weights, smoothing)
    fused.backward()
    torch.testing.assert_close(fused, plain_loss, rtol=1e-6, atol=1e-6)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad, expected[name], rtol=1e-4, atol=1e-6, msg=name)


def test_fused_copy_loss_gradcheck_in_double_with_floored_probabilities():
    from e2p.model.loss import _CopyMixtureCrossEntropy

    torch.manual_seed(0)
    logits = (torch.randn(4, 9, dtype=torch.double) * torch.tensor([1.0, 1, 1, 40])[:, None]).requires_grad_()
    gate = torch.rand(4, 1, dtype=torch.double).requires_grad_()
    mix = torch.rand(4, 3, dtype=torch.double).requires_grad_()
    index, targets, w = torch.randint(0, 9, (4, 3)), torch.randint(0, 9, (4,)), torch.rand(4, dtype=torch.double)
    with torch.no_grad():  # the last row is so sharp that some of its probabilities hit the 1e-9 floor
        assert ((gate * logits.softmax(1)).scatter_add(1, index, mix)[3] < 1e-9).any()
    assert torch.autograd.gradcheck(
        lambda a, b, c: _CopyMixtureCrossEntropy.apply(a, b, c, index, targets, w, 0.1), (logits, gate, mix)
    )


def test_dropout_mask_has_dropouts_distribution_and_follows_torch_seed():
    p = 0.1
    mask = dropout_mask((400, 500), p)
    values = mask.unique().tolist()
    assert len(values) == 2 and values[0] == 0.0 and values[1] == pytest.approx(keep_scale(p))
    assert abs(keep_scale(p) - 1 / (1 - p)) < 1e-4
    assert (mask == 0).float().mean().item() == pytest.approx(p, abs=0.003)
    assert mask.mean().item() == pytest.approx(1.0, abs=0.005)
    torch.manual_seed(3)
    a = dropout_mask((1000,), 0.3)
    torch.manual_seed(3)
    b = dropout_mask((1000,), 0.3)
    assert torch.equal(a, b)
    assert not torch.equal(a, dropout_mask((1000,), 0.3))  # the next draw is another mask
    unscaled = dropout_mask((7, 3), 0.5, scaled=False)
    assert set(unscaled.unique().tolist()) <= {0.0, 1.0} and unscaled.shape == (7, 3)


@pytest.mark.parametrize("copy", [True, False])
def test_fast_dropout_path_without_drops_equals_the_eval_pass(copy, monkeypatch):
    """With every mask all kept, the training pass of the fast path (explicit attention maths,
    additive mask bias, fused residual) must equal the deterministic SDPA pass."""
    model = small_model(copy, dropout=0.1)
    src, tgt_in, _ = batch()
    with torch.no_grad():
        expected = model.eval()(src, tgt_in)
    monkeypatch.setattr(
        model_module,
        "dropout_mask",
        lambda shape, p, dtype=torch.float32, scaled=True: torch.ones(tuple(shape), dtype=dtype),
    )
    monkeypatch.setattr(model_module, "keep_scale", lambda p: 1.0)
    model.train().set_fast_dropout(True)
    with torch.no_grad():
        got = model(src, tgt_in)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    model.set_fast_dropout(False)
    assert not any(getattr(m, "fast", False) for m in model.modules())


def test_fast_dropout_drops_in_training_only():
    model = small_model(False, dropout=0.3).set_fast_dropout(True)
    src, tgt_in, _ = batch()
    with torch.no_grad():
        a, b = model.train()(src, tgt_in), model(src, tgt_in)
        c, d = model.eval()(src, tgt_in), model(src, tgt_in)
    assert not torch.allclose(a, b)  # fresh masks each pass
    assert torch.equal(c, d)


def tiny_train_config(**kw) -> TrainConfig:
    cfg = TrainConfig.load(REPO_ROOT / "train/configs/tiny.json")
    return replace(cfg, shared_vocab=True, copy_attention=True, **kw)


def test_plain_turns_every_speed_option_off_and_the_default_recipe_has_them_on():
    cfg = TrainConfig()
    assert all(getattr(cfg, name) for name in SPEED_OPTIONS)  # the default recipe trains with them
    on = with_speed_options(plain(cfg))
    assert all(getattr(on, name) for name in SPEED_OPTIONS)
    off = plain(replace(on, copy_supervision=0.5))
    assert not any(getattr(off, name) for name in SPEED_OPTIONS) and off.copy_supervision == 0.0
    # both mallopt calls succeed wherever glibc is the C library, and only there
    assert reuse_freed_memory() is (platform.libc_ver()[0] == "glibc")


def test_plain_and_configured_trainer_take_the_same_steps_without_dropout():
    """Nothing random left (dropout 0): the configured trainer's losses and weights follow the
    plain trainer's to float rounding over a few steps."""
    cfg = tiny_train_config(dropout=0.0)
    src, tgt_in, tgt_out = batch()
    runs = []
    for c in (plain(cfg), with_speed_options(cfg)):
        torch.manual_seed(0)
        model = make_model(c, 40, 40).train()
        optimizer = make_optimizer(model, c)
        losses = [float(train_step(model, optimizer, src, tgt_in, tgt_out, c, None, 3e-3)) for _ in range(4)]
        runs.append((losses, model.state_dict()))
    (plain_losses, plain_state), (losses, state) = runs
    assert losses == pytest.approx(plain_losses, rel=1e-5)
    for name, tensor in state.items():
        if name.endswith("k_proj.bias"):  # its true gradient is 0 (softmax ignores a shift of every
            continue  # score), so Adam turns rounding noise into full-size steps on both sides
        torch.testing.assert_close(tensor, plain_state[name], rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.slow
def test_side_by_side_benchmark_reports_both_trainers(synthetic_corpus):
    from e2p.evaluation.benchmark import train_side_by_side

    config = json.loads((REPO_ROOT / "train/configs/tiny.json").read_text())
    config.update(shared_vocab=True, copy_attention=True)
    result = train_side_by_side(config, str(synthetic_corpus), steps=2, threads=1)
    assert result["train_steps"] == 2 and result["train_target_tokens"] > 0
    assert result["train_tokens_per_s_plain"] > 0 and result["train_tokens_per_s"] > 0
    assert result["train_speedup"] > 0
    assert set(result["train_speed_options"]) == set(SPEED_OPTIONS)
