"""Token origins (written / copied from the prompt / copied from the example) and the copy loss."""

import pytest
import torch
from models import copy_model, small_config

from e2p.model.loss import copy_supervision_loss
from e2p.model.origins import (
    FROM_EXAMPLE,
    FROM_PROMPT,
    ORIGINS,
    WRITTEN,
    origin_split,
    origins_from_routes,
    token_origins,
)
from e2p.model.transformer import Seq2Seq

SRC = [5, 9, 7, 11, 12, 13]  # prompt: the first 3 positions; example: the rest
OUT = [9, 12, 20]  # from the prompt, from the example, in neither


def test_route_shares_add_up_to_the_models_probability_of_each_token():
    model = copy_model()
    origins = token_origins(model, SRC, [2] + OUT, OUT, prompt_len=3)
    with torch.no_grad():
        scores = model(torch.tensor([SRC]), torch.tensor([[2] + OUT]))[0]  # (T, V) log-probs
    for t, (tok, origin) in enumerate(zip(OUT, origins)):
        assert sum(origin.shares) == pytest.approx(float(scores[t, tok].exp()), rel=1e-4)
        assert origin.origin == ORIGINS[max(range(3), key=origin.shares.__getitem__)]
    assert origins[0].shares[2] == 0  # token 9 is only in the prompt
    assert origins[1].shares[1] == 0  # token 12 is only in the example
    assert origins[2].shares[1:] == (0, 0) and origins[2].origin == WRITTEN


def test_a_model_that_always_copies_marks_each_token_by_where_it_is():
    model = copy_model()
    with torch.no_grad():
        model.copy_gate.weight.zero_()
        model.copy_gate.bias.fill_(-30.0)  # gate ~ 0: the output is the copy distribution only
    origins = token_origins(model, SRC, [2] + OUT[:2], OUT[:2], prompt_len=3)
    assert [o.origin for o in origins] == [FROM_PROMPT, FROM_EXAMPLE]
    assert all(o.gate < 1e-6 for o in origins)
    assert origin_split([origins, None]) == {WRITTEN: 0.0, FROM_PROMPT: 0.5, FROM_EXAMPLE: 0.5}
    assert origin_split([None]) is None


def test_no_origins_without_copy_attention():
    assert token_origins(Seq2Seq(small_config()).eval(), SRC, [2, 9], [9], prompt_len=3) is None


def test_one_inspection_pass_gives_the_maps_and_the_origins_of_the_separate_passes():
    model = copy_model()
    views = model.inspect(SRC, [2] + OUT)
    maps = model.attention_maps(SRC, [2] + OUT)
    for name in ("encoder", "decoder", "cross"):
        assert (views[name] == maps[name]).all()  # the same explicit attention path
    one_pass = origins_from_routes(views["routes"], SRC, OUT, prompt_len=3)
    separate = token_origins(model, SRC, [2] + OUT, OUT, prompt_len=3)
    assert [o.origin for o in one_pass] == [o.origin for o in separate]
    for a, b in zip(one_pass, separate):  # fused and explicit attention agree to float rounding
        assert a.gate == pytest.approx(b.gate, abs=1e-5) and a.shares == pytest.approx(b.shares, abs=1e-5)
    no_maps = model.inspect(SRC, [2] + OUT, maps=False)
    assert "cross" not in no_maps and "routes" in no_maps


def test_copy_loss_teaches_the_gate_to_copy_only_what_the_source_holds():
    index = torch.tensor([[5, 9, 7], [5, 9, 7]])
    targets = torch.tensor([9, 20])  # in the source at position 1; nowhere in the source
    gate = torch.full((2, 1), 0.5, requires_grad=True)
    att = torch.full((2, 3), 1 / 3, requires_grad=True)
    copy_supervision_loss((gate, att, index), targets).backward()
    assert gate.grad[0, 0] > 0 > gate.grad[1, 0]  # copy the first; write the second
    assert att.grad[0, 1] < 0 and att.grad[0, 0] == 0 == att.grad[0, 2]  # mass onto the match
    assert torch.all(att.grad[1] == 0)  # nothing to point at


def test_copy_loss_is_small_where_the_model_already_copies_right():
    index = torch.tensor([[5, 9, 7]])
    good = copy_supervision_loss((torch.tensor([[1e-4]]), torch.tensor([[0.0, 1.0, 0.0]]), index), torch.tensor([9]))
    bad = copy_supervision_loss((torch.tensor([[0.99]]), torch.tensor([[1.0, 0.0, 0.0]]), index), torch.tensor([9]))
    assert good < 0.01 < 5 < bad
