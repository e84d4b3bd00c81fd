"""Small random Transformers shared by the model tests (fast, CPU)."""

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
