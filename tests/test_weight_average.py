"""ema_decay: the trainer validates, keeps and resumes a moving average of the weights."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from conftest import REPO_ROOT
from safetensors.torch import load_file

from e2p.data.corpus import load_corpus
from e2p.errors import E2PError
from e2p.model.training import (
    TrainConfig,
    _load_checkpoint,
    _save_checkpoint,
    check_ema_decay,
    make_ema,
    make_model,
    make_optimizer,
    prepare,
    run_training,
)


def _tiny(**changes) -> TrainConfig:
    cfg = TrainConfig.load(REPO_ROOT / "train/configs/tiny.json")
    return replace(cfg, batch_tokens=600, max_epochs=1, checkpoint_every_s=1e9, **changes)


def _train(corpus, cfg: TrainConfig, work, monkeypatch):
    """(each step's weights, the kept weights) of a run; `train_step` is wrapped to record the steps."""
    import e2p.model.training as training

    steps, real = [], training.train_step

    def recorded(model, *args):
        loss = real(model, *args)
        steps.append({k: v.detach().clone() for k, v in training._unwrap(model).state_dict().items()})
        return loss

    monkeypatch.setattr(training, "train_step", recorded)
    prep = prepare(load_corpus(corpus), cfg)
    run_training(prep, cfg, work, log=lambda *_: None, progress=False)
    return steps, load_file(str(work / "best.safetensors"))


def test_the_kept_weights_are_the_average_not_the_last_step(synthetic_corpus, tmp_path, monkeypatch):
    decay = 0.9
    plain_steps, kept_plain = _train(synthetic_corpus, _tiny(), tmp_path / "plain", monkeypatch)
    steps, kept = _train(synthetic_corpus, _tiny(ema_decay=decay), tmp_path / "avg", monkeypatch)
    assert len(steps) >= 3
    # the average only watches: training itself takes the same steps
    assert all(torch.equal(plain_steps[-1][k], steps[-1][k]) for k in steps[-1])
    assert all(torch.equal(plain_steps[-1][k], kept_plain[k]) for k in kept_plain)
    expected = {k: v.clone() for k, v in steps[0].items()}  # the first update copies the weights
    for state in steps[1:]:
        for k, v in state.items():
            if v.is_floating_point():
                expected[k] = decay * expected[k] + (1 - decay) * v
    for k, v in kept.items():
        torch.testing.assert_close(v, expected[k], rtol=1e-4, atol=1e-6)
    assert any(not torch.equal(kept[k], steps[-1][k]) for k in kept)


def test_a_resumed_run_goes_on_with_its_average(tmp_path):
    cfg = TrainConfig(d_model=16, n_heads=2, enc_layers=1, dec_layers=1, d_ff=32, ema_decay=0.5)
    model = make_model(cfg, 50, 50)
    optimizer = make_optimizer(model, cfg)
    ema = make_ema(model, cfg)
    ema.update_parameters(model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update_parameters(model)
    _save_checkpoint(tmp_path / "ckpt", model, optimizer, {"epoch": 0})

    again = make_model(cfg, 50, 50)
    again_ema = make_ema(again, cfg)
    with pytest.raises(E2PError, match="no weight average"):
        _load_checkpoint(tmp_path / "ckpt", again, make_optimizer(again, cfg), again_ema)
    with pytest.raises(E2PError, match="no weight average"):  # a rank that holds no average checks too
        _load_checkpoint(tmp_path / "ckpt", again, make_optimizer(again, cfg), None, need_ema=True)

    _save_checkpoint(tmp_path / "ckpt", model, optimizer, {"epoch": 0}, ema)
    _load_checkpoint(tmp_path / "ckpt", again, make_optimizer(again, cfg), again_ema)
    for (name, saved), restored in zip(ema.module.state_dict().items(), again_ema.module.state_dict().values()):
        assert torch.equal(saved, restored), name
    assert int(again_ema.n_averaged) == 2
    first = next(iter(model.parameters()))
    assert not torch.equal(next(iter(again_ema.module.parameters())), first)  # halfway, not the last step


@pytest.mark.parametrize("decay", [1.0, -0.1, 1.5])
def test_a_decay_outside_zero_to_one_is_refused(decay):
    cfg = TrainConfig(d_model=16, n_heads=2, enc_layers=1, dec_layers=1, d_ff=32, ema_decay=decay)
    with pytest.raises(E2PError, match="ema_decay"):
        make_ema(make_model(cfg, 50, 50), cfg)
    with pytest.raises(E2PError, match="ema_decay"):
        check_ema_decay(cfg)
