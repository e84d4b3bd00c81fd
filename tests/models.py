"""Small random Transformers shared by the model tests (fast, CPU), and a made-up answer of one."""

from __future__ import annotations

import torch

from e2p.model.transformer import ModelConfig, Seq2Seq


def small_config(**changes) -> ModelConfig:
    """A 16-wide model with one encoder and one decoder layer over a 30-token vocabulary."""
    base = dict(src_vocab=30, tgt_vocab=30, d_model=16, n_heads=2, enc_layers=1, dec_layers=1, d_ff=32)
    return ModelConfig(**{**base, **changes})


def copy_config(**changes) -> ModelConfig:
    """`small_config` with one shared vocabulary and copy attention (a pointer-generator), no dropout."""
    return small_config(**{"share_embeddings": True, "copy_attention": True, "dropout": 0.0, **changes})


def copy_model(seed: int = 0, **changes) -> Seq2Seq:
    """A `copy_config` model in eval mode, its weights drawn from `seed`."""
    torch.manual_seed(seed)
    return Seq2Seq(copy_config(**changes)).eval()


def tiny_config(src_vocab: int, tgt_vocab: int | None = None, **changes) -> ModelConfig:
    """A 32-wide model: two heads, two encoder and two decoder layers, d_ff 64, dropout 0.1, 64
    positions; `tgt_vocab` is `src_vocab` unless given."""
    base = dict(d_model=32, n_heads=2, enc_layers=2, dec_layers=2, d_ff=64, dropout=0.1, max_len=64)
    tgt_vocab = src_vocab if tgt_vocab is None else tgt_vocab
    return ModelConfig(src_vocab=src_vocab, tgt_vocab=tgt_vocab, **{**base, **changes})


def tiny_model(src_vocab: int, tgt_vocab: int | None = None, seed: int = 0, cls=Seq2Seq, **changes) -> Seq2Seq:
    """A `tiny_config` model (of class `cls`) in eval mode, its weights drawn from `seed`."""
    torch.manual_seed(seed)
    return cls(tiny_config(src_vocab, tgt_vocab, **changes)).eval()


# The decoder-step tests (test_fast_decoder, test_onnx_step): the special ids, a source, and the two
# model shapes every step path is checked on.
STEP_IDS = dict(bos_id=1, eos_id=2, pad_id=0)
STEP_SRC = [5, 9, 7, 11, 6, 2]
STEP_SHAPES = {
    "pre-norm, copy attention (the shipped model's shape)": dict(
        share_embeddings=True, copy_attention=True, tie_output=True
    ),
    "post-norm, separate vocabularies (the original design's shape)": dict(pre_norm=False),
}


def assert_steps_agree_with_the_reference(model: Seq2Seq, stepper, src: list[int], steps: int = 10) -> None:
    """`stepper`'s log-probs (`init_state` / `step`, as FastDecoder's) equal `Seq2Seq.step`'s to 1e-5
    at every step of a beam of 3 rows, reordered between steps as a beam does."""
    source = torch.tensor([src])
    with torch.inference_mode():
        memory, src_pad, _ = model.encode(source)
        ref_state = model.init_state(memory, src_pad, src=source)
        state = stepper.init_state(memory, src_pad, source, capacity=steps + 2)
        last = torch.tensor([1])
        for step in range(steps):
            ref, ref_state = model.step(last, ref_state)
            got, state = stepper.step(last, state)
            assert torch.allclose(got, ref, atol=1e-5), step
            index = torch.tensor([0, 0, 0]) if step == 0 else torch.tensor([2, 0, 0])  # fan out, then reorder
            ref_state, state = ref_state.reorder(index), state.reorder(index)
            last = ref[index].topk(3, dim=-1).indices[torch.arange(3), torch.arange(3)]


def made_up_result(
    src: list[str], out: list[str], layers: int = 2, heads: int = 2, seed: int = 0, attention: bool = True, **fields
):
    """A `GenerationResult` that parses, for source tokens `src` and output tokens `out` (then <eos>):
    encoder, decoder and cross attention maps of random weights drawn from `seed` (each row sums to 1),
    or none where not `attention`; `fields` set the prompt, the code and whatever else differs."""
    import numpy as np

    from e2p.answer.generator import GenerationResult

    rng = np.random.default_rng(seed)
    S, T = len(src), len(out) + 1

    def maps(rows, cols):
        m = rng.random((layers, heads, rows, cols))
        return m / m.sum(-1, keepdims=True)

    att = {"encoder": maps(S, S), "decoder": maps(T, T), "cross": maps(T, S)} if attention else {}
    base = dict(
        prompt="",
        code="x = 1\n",
        formatted="x = 1\n",
        parses=True,
        error=None,
        origin="model",
        src_tokens=src,
        tgt_tokens=out + ["<eos>"],
        tgt_input_tokens=["<bos>"] + out,
        token_probs=[0.9] * len(out),
        alternatives=[[]] * len(out),
        candidates=[],
        attention=att,
    )
    return GenerationResult(**{**base, **fields})
