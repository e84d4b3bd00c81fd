"""The decoder step run by ONNX Runtime (e2p.model.onnx_step) against the reference `Seq2Seq.step`."""

import pytest
import torch

torch.set_num_threads(1)

import models  # noqa: E402

from e2p.model import onnx_step  # noqa: E402
from e2p.model.decoding import DecodeSettings, decode  # noqa: E402

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (requirements.txt installs it)")
pytest.importorskip("onnx", reason="onnx is not installed (requirements.txt installs it)")

IDS, SRC, SHAPES = models.STEP_IDS, models.STEP_SRC, models.STEP_SHAPES


@pytest.fixture(autouse=True)
def graph_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("E2P_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(params=list(SHAPES))
def model(request):
    return models.tiny_model(30, seed=3, **SHAPES[request.param])


def test_each_step_agrees_with_the_reference(model):
    """Log-probs of every step of a beam of 3 rows, reordered between steps as a beam does."""
    onnx = onnx_step.onnx_decoder_for(model)
    assert onnx is not None and onnx_step.attached(model) is onnx
    models.assert_steps_agree_with_the_reference(model, onnx, SRC)


def test_the_cache_grows_as_the_output_does(model, monkeypatch):
    """The cache starts with room for FIRST_ROOM positions and doubles when full; the steps agree with
    the reference across each growth, with a beam's reorders between them."""
    monkeypatch.setattr(onnx_step, "FIRST_ROOM", 2)
    onnx = onnx_step.onnx_decoder_for(model)
    models.assert_steps_agree_with_the_reference(model, onnx, SRC, steps=12)
    source = torch.tensor([SRC])
    with torch.inference_mode():
        memory, src_pad, _ = model.encode(source)
        state = onnx.init_state(memory, src_pad, source, capacity=11)
        rooms = []
        for _ in range(11):
            _, state = onnx.step(torch.tensor([1]), state)
            rooms.append(state.cache.size(3))
    assert rooms == [2, 2, 4, 4, 8, 8, 8, 8, 11, 11, 11]  # never more than the capacity asked for


@pytest.mark.parametrize("strategy", ["greedy", "beam", "sample"])
def test_decoding_with_it_gives_the_reference_candidates(model, strategy, monkeypatch):
    monkeypatch.setattr(onnx_step, "FIRST_ROOM", 4)  # the cache grows twice within max_len
    assert onnx_step.onnx_decoder_for(model) is not None  # decode now steps with it
    settings = DecodeSettings(strategy=strategy, beam_size=5, n_best=5, num_samples=4, seed=7, min_len=8, max_len=20)
    for src in (SRC, [9, 9, 4, 2], [7, 2]):
        got = decode(model, src, settings, **IDS)
        ref = decode(model, src, settings, **IDS, eager=True)
        assert [h.tokens for h in got] == [h.tokens for h in ref]
        for g, r in zip(got, ref):
            assert g.token_logprobs == pytest.approx(r.token_logprobs, abs=1e-4)


def test_its_threads_do_not_spin_while_waiting(model):
    """With more than one thread, ONNX Runtime's pool would spin between steps, taking a core from the
    app's other sessions and the browsers."""
    session = onnx_step.onnx_decoder_for(model).session
    assert session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_the_graph_is_kept_on_disk_and_follows_the_weights(graph_cache, monkeypatch):
    model = models.tiny_model(30, seed=1, share_embeddings=True, copy_attention=True)
    first = onnx_step.onnx_decoder_for(model)
    assert onnx_step.onnx_decoder_for(model) is first  # built once per weights
    (kept,) = graph_cache.glob("step-*.onnx")
    # the same weights in a new model (a new process): the graph is read back, not exported again
    same = models.tiny_model(30, seed=1, share_embeddings=True, copy_attention=True)
    monkeypatch.setattr(onnx_step, "_export", lambda fast: pytest.fail("exported again"))
    assert onnx_step.onnx_decoder_for(same) is not None
    monkeypatch.undo()
    monkeypatch.setenv("E2P_CACHE_DIR", str(graph_cache))
    # training changes the weights in place: the old graph is no longer used, a new one is made
    with torch.no_grad():
        model.decoder[0].self_attn.k_proj.weight.add_(0.5)
    assert onnx_step.attached(model) is None  # decoding falls back to FastDecoder until rebuilt
    settings = DecodeSettings(strategy="greedy", max_len=15)
    assert decode(model, SRC, settings, **IDS)[0].tokens == decode(model, SRC, settings, **IDS, eager=True)[0].tokens
    assert onnx_step.onnx_decoder_for(model) is not first
    assert len(list(graph_cache.glob("step-*.onnx"))) == 2


def test_a_cache_that_cannot_be_written_is_skipped(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache folder would be")
    monkeypatch.setenv("E2P_CACHE_DIR", str(blocker / "cache"))
    model = models.tiny_model(30, seed=2, share_embeddings=True, copy_attention=True)
    onnx = onnx_step.onnx_decoder_for(model)
    assert onnx is not None  # built in memory, used all the same
    settings = DecodeSettings(strategy="beam", beam_size=3, n_best=3, max_len=15)
    got, ref = decode(model, SRC, settings, **IDS), decode(model, SRC, settings, **IDS, eager=True)
    assert [h.tokens for h in got] == [h.tokens for h in ref]
