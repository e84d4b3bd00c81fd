"""Transformer encoder-decoder ("Attention is all you need") on integer token ids.

Layout follows the Annotated Transformer (small modules composed by one class) and
nanoGPT (one dataclass config saved beside the weights). Inference follows fairseq:
`encode()` once, `init_state()` computes every layer's cross-attention keys/values once,
and `step()` feeds one token per hypothesis with a per-layer self-attention cache.

Attention weights are never stored on a module: the explicit attention path *returns*
them, so one loaded model can serve many users at once.

Mask convention inside this file: boolean, True = "this key may be attended to"
(the same as `F.scaled_dot_product_attention`). Padding tensors (`src_pad`) are
True at pad positions, the PyTorch key-padding convention.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from typing import Iterator

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from e2p.errors import E2PError


class ConfigError(E2PError, ValueError):
    """A model config that cannot build a model (bad value, unknown or missing key)."""


@dataclass
class ModelConfig:
    """The architecture. Defaults build a working model; what is trained and shipped is set by
    `TrainConfig` and train/configs/*.json (the shipped model: 2 encoder layers, dropout 0.1)."""

    src_vocab: int  # size of the English (source) vocabulary
    tgt_vocab: int  # size of the Python (target) vocabulary
    d_model: int = 256  # small enough to train on CPU, big enough for short functions
    n_heads: int = 8  # head size 32
    enc_layers: int = 3
    dec_layers: int = 3
    d_ff: int = 512  # 2x d_model rather than the paper's 4x: CPU budget
    dropout: float = 0.1  # the paper's value
    max_len: int = 512  # longest sequence (source, or BOS + target) the positions cover
    pre_norm: bool = True  # LayerNorm before each sublayer: stable without long warm-up
    tie_output: bool = True  # share decoder input embedding and output projection
    share_embeddings: bool = False  # one table for both sides (needs one joint vocabulary):
    # a source token the decoder should copy is then already "spelled" in the output space
    copy_attention: bool = False  # pointer-generator: mix the vocabulary distribution with a
    # copy distribution over the source tokens (needs share_embeddings: source ids = output ids)
    pad_id: int = 0  # pad id in both vocabularies; masks are derived from it

    def __post_init__(self) -> None:
        for name in (
            "src_vocab",
            "tgt_vocab",
            "d_model",
            "n_heads",
            "enc_layers",
            "dec_layers",
            "d_ff",
            "max_len",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"ModelConfig.{name} must be a positive int, got {value!r}")
        if self.copy_attention and not self.share_embeddings:
            raise ConfigError("ModelConfig.copy_attention needs share_embeddings (one joint vocabulary)")
        if self.share_embeddings and self.src_vocab != self.tgt_vocab:
            raise ConfigError(
                "ModelConfig.share_embeddings needs one joint vocabulary: src_vocab "
                f"({self.src_vocab}) and tgt_vocab ({self.tgt_vocab}) differ"
            )
        if self.d_model % self.n_heads:
            raise ConfigError(f"ModelConfig.d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ConfigError(f"ModelConfig.dropout must be in [0, 1), got {self.dropout!r}")
        if not isinstance(self.pad_id, int) or not 0 <= self.pad_id < min(self.src_vocab, self.tgt_vocab):
            raise ConfigError(f"ModelConfig.pad_id must be an id in both vocabularies, got {self.pad_id!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"unknown ModelConfig key(s) {unknown}; known keys are {sorted(known)}. "
                "The checkpoint was probably written by another version of e2p."
            )
        missing = sorted(k for k in ("src_vocab", "tgt_vocab") if k not in data)
        if missing:
            raise ConfigError(f"ModelConfig is missing required key(s) {missing}")
        return cls(**data)


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """Run in eval mode (no dropout), then restore training mode if it was on."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        if was_training:
            model.train()


# --------------------------------------------------------------------------- dropout


def dropout_mask(
    shape: tuple[int, ...] | torch.Size,
    p: float,
    dtype: torch.dtype = torch.float32,
    scaled: bool = True,
) -> Tensor:
    """A CPU dropout mask: 1 / (1 - p') with probability 1 - p', else 0, where p' is p rounded
    to a multiple of 2^-16 (within 8e-6 of p), so that the expectation is exact. With
    `scaled=False` the kept entries are 1 and the caller scales by `keep_scale(p)`.

    `x * dropout_mask(x.shape, p)` has the distribution of `F.dropout(x, p, training=True)` up to
    that rounding. The mask comes from 16 random bits per element drawn by numpy's SFC64
    generator, seeded by one draw from torch's default generator (so `torch.manual_seed` still
    fixes every mask), instead of torch's per-element `bernoulli_`, which on a CPU costs more than
    all of a training step's elementwise arithmetic. It is another random stream than
    `F.dropout`'s, so a run that uses it is not bit-identical with one that does not.
    """
    n = math.prod(shape)
    k = round(p * 65536)  # drop when the 16 bits, read as an int16, are below -32768 + k
    seed = int(torch.randint(0, 2**63 - 1, (1,), dtype=torch.long))
    raw = np.random.SFC64(seed).random_raw((n + 3) // 4)  # uint64: four 16-bit draws each
    keep = np.empty(n, dtype=np.float32)
    np.greater_equal(raw.view(np.int16)[:n], k - 32768, out=keep, casting="unsafe")
    if scaled:
        keep *= np.float32(keep_scale(p))
    return torch.from_numpy(keep).view(tuple(shape)).to(dtype)


def keep_scale(p: float) -> float:
    """The scale of the survivors of `dropout_mask`: 1 / (1 - p')."""
    return 65536 / (65536 - round(p * 65536))


def _fast_ok(x: Tensor, p: float) -> bool:
    return x.device.type == "cpu" and 0 < round(p * 65536) < 65536


def fast_dropout(x: Tensor, p: float) -> Tensor:
    """`F.dropout(x, p, training=True)` with `dropout_mask` on the CPU; `F.dropout` elsewhere."""
    if not _fast_ok(x, p):
        return F.dropout(x, p, training=True)
    return x * dropout_mask(x.shape, p, x.dtype)


class Dropout(nn.Dropout):
    """nn.Dropout that uses `fast_dropout` while `fast` is set (see Seq2Seq.set_fast_dropout)."""

    fast = False

    def forward(self, x: Tensor) -> Tensor:
        if self.fast and self.training and self.p > 0:
            return fast_dropout(x, self.p)
        return super().forward(x)


# --------------------------------------------------------------------------- modules


class SinusoidalPositions(nn.Module):
    """Fixed sin/cos position table from the paper; nothing to learn, nothing to save."""

    def __init__(self, d_model: int, max_len: int):
        super().__init__()
        pos = torch.arange(max_len, dtype=torch.float32)[:, None]  # (L, 1)
        freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))  # (C/2,)
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(pos * freq)
        pe[:, 1::2] = torch.cos(pos * freq[: d_model // 2])
        self.register_buffer("pe", pe, persistent=False)  # (L, C)
        self.max_len = max_len

    def forward(self, start: int, length: int) -> Tensor:
        if start + length > self.max_len:
            raise ValueError(
                f"sequence of {start + length} positions is longer than the model's "
                f"max_len ({self.max_len}); shorten the input or the output length"
            )
        return self.pe[start : start + length]  # (T, C)


class MultiHeadAttention(nn.Module):
    """Multi-head attention with separate projection and attention steps.

    Keeping `project_q` / `project_kv` apart from `attend` is what lets the decoder cache
    keys and values: cross-attention K/V are projected once from the encoder memory, and
    self-attention K/V of earlier positions are concatenated with the new ones.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float):
        super().__init__()
        self.n_heads = n_heads
        self.d_head = d_model // n_heads
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.dropout = dropout
        self.fast = False  # training with dropout: explicit maths, fast_dropout (set_fast_dropout)

    def _split(self, x: Tensor) -> Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.n_heads, self.d_head).transpose(1, 2)  # (B, H, T, D)

    def project_q(self, x: Tensor) -> Tensor:
        return self._split(self.q_proj(x))  # (B, H, Tq, D)

    def project_kv(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self._split(self.k_proj(x)), self._split(self.v_proj(x))  # 2 x (B, H, Tk, D)

    def attend(
        self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, need_weights: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        """q (B,H,Tq,D), k/v (B,H,Tk,D), mask broadcastable to (B,H,Tq,Tk), True = attend.

        Returns the output (B, Tq, C) and, when need_weights, the weights (B, H, Tq, Tk):
        masked entries exactly 0, every row sums to 1.
        """
        p_drop = self.dropout if self.training else 0.0
        if need_weights:  # explicit path: softmax(QK^T / sqrt(D)) with the mask
            scores = q @ k.transpose(-2, -1) / math.sqrt(self.d_head)  # (B, H, Tq, Tk)
            if mask is not None:
                scores = scores.masked_fill(~mask, float("-inf"))
            weights = scores.softmax(dim=-1)  # exp(-inf) = 0: masked weights are exactly 0
            y = F.dropout(weights, p_drop, self.training) @ v  # (B, H, Tq, D)
        elif self.fast and _fast_ok(q, p_drop):
            # Training on the CPU: with dropout, SDPA falls back to its unfused maths path (plus
            # checks for fully masked rows) and torch's slow bernoulli_; same maths, cheaper.
            scores = (q * (1.0 / math.sqrt(self.d_head))) @ k.transpose(-2, -1)  # (B, H, Tq, Tk)
            if mask is not None:  # an additive 0 / -inf bias: free in the backward pass
                bias = torch.zeros(mask.shape, dtype=scores.dtype).masked_fill_(~mask, float("-inf"))
                scores = scores.add_(bias)
            kept = scores.softmax(dim=-1) * dropout_mask(scores.shape, p_drop, scores.dtype, scaled=False)
            y = (kept @ v).mul_(keep_scale(p_drop))  # (B, H, Tq, D): the scale on the smaller side
            weights = None
        else:  # fused kernel, same maths
            weights = None
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p_drop)
        B, H, Tq, D = y.shape
        y = y.transpose(1, 2).reshape(B, Tq, H * D)  # (B, Tq, C)
        return self.out_proj(y), weights


class FeedForward(nn.Module):
    def __init__(self, d_model: int, d_ff: int, dropout: float):
        super().__init__()
        self.fc1 = nn.Linear(d_model, d_ff)
        self.fc2 = nn.Linear(d_ff, d_model)
        self.drop = Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.drop(F.relu(self.fc1(x))))  # ReLU as in the paper


class Sublayer(nn.Module):
    """Residual connection around a sublayer, with LayerNorm before (pre-norm) or after."""

    def __init__(self, d_model: int, dropout: float, pre_norm: bool):
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.drop = Dropout(dropout)
        self.pre_norm = pre_norm

    def inp(self, x: Tensor) -> Tensor:
        """What the sublayer reads."""
        return self.norm(x) if self.pre_norm else x

    def out(self, x: Tensor, y: Tensor) -> Tensor:
        """Residual sum of the input x and the sublayer's output y."""
        drop = self.drop
        if drop.fast and drop.training and _fast_ok(y, drop.p):  # x + dropout(y) in one pass
            mask = dropout_mask(y.shape, drop.p, y.dtype, scaled=False)
            x = torch.addcmul(x, y, mask, value=keep_scale(drop.p))
        else:
            x = x + drop(y)
        return x if self.pre_norm else self.norm(x)


class EncoderLayer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.self_attn = MultiHeadAttention(cfg.d_model, cfg.n_heads, cfg.dropout)
        self.ff = FeedForward(cfg.d_model, cfg.d_ff, cfg.dropout)
        self.sub_attn = Sublayer(cfg.d_model, cfg.dropout, cfg.pre_norm)
        self.sub_ff = Sublayer(cfg.d_model, cfg.dropout, cfg.pre_norm)

    def forward(self, x: Tensor, mask: Tensor, need_weights: bool = False) -> tuple[Tensor, Tensor | None]:
        # x: (B, S, C); mask: (B, 1, 1, S)
        h = self.sub_attn.inp(x)
        k, v = self.self_attn.project_kv(h)
        a, w = self.self_attn.attend(self.self_attn.project_q(h), k, v, mask, need_weights)
        x = self.sub_attn.out(x, a)
        x = self.sub_ff.out(x, self.ff(self.sub_ff.inp(x)))
        return x, w  # (B, S, C), (B, H, S, S) | None


class DecoderLayer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.self_attn = MultiHeadAttention(cfg.d_model, cfg.n_heads, cfg.dropout)
        self.cross_attn = MultiHeadAttention(cfg.d_model, cfg.n_heads, cfg.dropout)
        self.ff = FeedForward(cfg.d_model, cfg.d_ff, cfg.dropout)
        self.sub_self = Sublayer(cfg.d_model, cfg.dropout, cfg.pre_norm)
        self.sub_cross = Sublayer(cfg.d_model, cfg.dropout, cfg.pre_norm)
        self.sub_ff = Sublayer(cfg.d_model, cfg.dropout, cfg.pre_norm)

    def forward(
        self,
        x: Tensor,
        cross_kv: tuple[Tensor, Tensor],
        cross_mask: Tensor,
        self_mask: Tensor | None,
        past_kv: tuple[Tensor, Tensor] | None = None,
        need_weights: bool = False,
    ) -> tuple[Tensor, tuple[Tensor, Tensor], Tensor | None, Tensor | None]:
        """x: the new positions (B, T, C); past_kv: self-attention K/V of earlier positions.

        Returns (x, (K, V) of all positions so far, self weights, cross weights).
        """
        h = self.sub_self.inp(x)
        k, v = self.self_attn.project_kv(h)  # (B, H, T, D)
        if past_kv is not None:
            k = torch.cat([past_kv[0], k], dim=2)  # (B, H, t + T, D)
            v = torch.cat([past_kv[1], v], dim=2)
        a, w_self = self.self_attn.attend(self.self_attn.project_q(h), k, v, self_mask, need_weights)
        x = self.sub_self.out(x, a)

        h = self.sub_cross.inp(x)
        a, w_cross = self.cross_attn.attend(self.cross_attn.project_q(h), *cross_kv, cross_mask, need_weights)
        x = self.sub_cross.out(x, a)
        x = self.sub_ff.out(x, self.ff(self.sub_ff.inp(x)))
        return x, (k, v), w_self, w_cross


# --------------------------------------------------------------------------- decoder state


@dataclass
class DecoderState:
    """Everything `Seq2Seq.step` needs between steps, for a batch of B hypotheses.

    Cached mode (`self_kv` is a list): `cross_kv` holds each decoder layer's
    cross-attention (K, V), projected once from the encoder memory, and `self_kv` each
    layer's self-attention (K, V) of every token fed so far.
    Uncached mode (`self_kv` is None): `memory` is kept and every step re-runs the whole
    decoder over `tokens` (the slow, obviously-correct baseline).
    """

    tokens: Tensor  # (B, t) decoder inputs fed so far; the first is BOS
    src_pad: Tensor  # (B, S) True at source padding
    cross_kv: list[tuple[Tensor, Tensor]] | None  # per layer 2 x (B, H, S, D)
    self_kv: list[tuple[Tensor, Tensor]] | None  # per layer 2 x (B, H, t, D)
    memory: Tensor | None  # (B, S, C), uncached mode only
    src_ids: Tensor | None = None  # (B, S) source ids, for copy attention
    copy_keys: Tensor | None = None  # (B, S, C) copy-attention keys, projected once (cached mode)

    @property
    def length(self) -> int:
        """How many tokens have been fed (= position of the next one)."""
        return self.tokens.size(1)

    @property
    def device(self) -> torch.device:
        return self.tokens.device

    def reorder(self, index: Tensor) -> "DecoderState":
        """New state whose row i is this state's row index[i] (beam back-pointers).

        `index` may repeat rows (one beam spawning several) or drop rows (finished ones).
        """

        def pick(t: Tensor) -> Tensor:
            return t.index_select(0, index)

        def pick_kv(kv: list[tuple[Tensor, Tensor]] | None) -> list[tuple[Tensor, Tensor]] | None:
            return None if kv is None else [(pick(k), pick(v)) for k, v in kv]

        return DecoderState(
            tokens=pick(self.tokens),
            src_pad=pick(self.src_pad),
            cross_kv=pick_kv(self.cross_kv),
            self_kv=pick_kv(self.self_kv),
            memory=None if self.memory is None else pick(self.memory),
            src_ids=None if self.src_ids is None else pick(self.src_ids),
            copy_keys=None if self.copy_keys is None else pick(self.copy_keys),
        )


# --------------------------------------------------------------------------- the model


class Seq2Seq(nn.Module):
    """Build with `Seq2Seq(ModelConfig(...))` or `Seq2Seq(ModelConfig.from_dict(d))`."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        C = config.d_model
        self.src_embed = nn.Embedding(config.src_vocab, C, padding_idx=config.pad_id)
        self.tgt_embed = nn.Embedding(config.tgt_vocab, C, padding_idx=config.pad_id)
        if config.share_embeddings:
            self.tgt_embed = self.src_embed
        self.positions = SinusoidalPositions(C, config.max_len)
        self.drop = Dropout(config.dropout)
        self.encoder = nn.ModuleList(EncoderLayer(config) for _ in range(config.enc_layers))
        self.decoder = nn.ModuleList(DecoderLayer(config) for _ in range(config.dec_layers))
        # Pre-norm stacks end un-normalised, so they get a final LayerNorm.
        self.enc_norm = nn.LayerNorm(C) if config.pre_norm else nn.Identity()
        self.dec_norm = nn.LayerNorm(C) if config.pre_norm else nn.Identity()
        self.lm_head = nn.Linear(C, config.tgt_vocab, bias=False)
        if config.copy_attention:
            self.copy_q = nn.Linear(C, C, bias=False)
            self.copy_k = nn.Linear(C, C, bias=False)
            self.copy_gate = nn.Linear(C, 1)  # share of the vocabulary distribution
        self._init_weights()
        if config.tie_output:
            self.lm_head.weight = self.tgt_embed.weight

    def _init_weights(self) -> None:
        for name, p in self.named_parameters():
            if "embed" in name:
                # std C^-0.5: times sqrt(C) in _embed gives unit-variance inputs, and tied
                # output logits start at unit scale.
                nn.init.normal_(p, mean=0.0, std=self.config.d_model**-0.5)
                with torch.no_grad():
                    p[self.config.pad_id].zero_()
            elif p.dim() > 1:
                nn.init.xavier_uniform_(p)  # as in the Annotated Transformer
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def num_parameters(self) -> int:
        """Number of parameters; a tied embedding/output matrix counts once."""
        return sum(p.numel() for p in self.parameters())

    def set_fast_dropout(self, on: bool = True) -> "Seq2Seq":
        """Training on the CPU: draw dropout masks with `fast_dropout` and run attention with
        dropout through explicit maths instead of SDPA's fallback. Same maths and the same
        dropout distribution; a different random stream. No effect in eval mode."""
        for module in self.modules():
            if isinstance(module, (Dropout, MultiHeadAttention)):
                module.fast = bool(on)
        return self

    # ---- building blocks

    def _embed(self, table: nn.Embedding, ids: Tensor, start: int = 0) -> Tensor:
        x = table(ids) * math.sqrt(self.config.d_model)  # (B, T, C)
        return self.drop(x + self.positions(start, ids.size(1)))

    @staticmethod
    def _key_mask(pad: Tensor) -> Tensor:
        return ~pad[:, None, None, :]  # (B, 1, 1, S), True = attend

    def _causal_mask(self, tgt_in: Tensor) -> Tensor:
        T = tgt_in.size(1)
        causal = torch.ones(T, T, dtype=torch.bool, device=tgt_in.device).tril()  # (T, T)
        return causal[None, None] & self._key_mask(tgt_in == self.config.pad_id)  # (B,1,T,T)

    def encode(self, src: Tensor, need_weights: bool = False) -> tuple[Tensor, Tensor, list[Tensor] | None]:
        """src (B, S) -> memory (B, S, C), src_pad (B, S) True at pads, per-layer weights.

        The weights (when need_weights) are one (B, H, S, S) tensor per encoder layer.
        """
        src_pad = src == self.config.pad_id  # (B, S)
        mask = self._key_mask(src_pad)
        x = self._embed(self.src_embed, src)
        weights = []
        for layer in self.encoder:
            x, w = layer(x, mask, need_weights)
            weights.append(w)
        return self.enc_norm(x), src_pad, (weights if need_weights else None)

    def _scores(self, h: Tensor, src: Tensor | None, src_pad: Tensor, copy_keys: Tensor | None) -> Tensor:
        """Output scores for decoder states h (B, T, C): logits, or with copy attention the
        log of p_gen * p_vocab + (1 - p_gen) * copy distribution (a log-softmax of these is a no-op)."""
        logits = self.lm_head(h)  # (B, T, V)
        if not self.config.copy_attention:
            return logits
        if src is None or copy_keys is None:
            raise ValueError("copy attention needs the source ids")
        q = self.copy_q(h)  # (B, T, C)
        att = q @ copy_keys.transpose(1, 2) / math.sqrt(q.size(-1))  # (B, T, S)
        att = att.masked_fill(src_pad[:, None, :], float("-inf")).softmax(dim=-1)
        gate = torch.sigmoid(self.copy_gate(h)).float()  # (B, T, 1); float under autocast too
        att = att.float()
        probs = gate * logits.float().softmax(dim=-1)  # (B, T, V)
        index = src[:, None, :].expand(-1, h.size(1), -1)  # (B, T, S) output id of each source token
        probs = probs.scatter_add(-1, index, (1 - gate) * att)
        return probs.clamp_min(1e-9).log()

    def decode_full(
        self,
        tgt_in: Tensor,
        memory: Tensor,
        src_pad: Tensor,
        need_weights: bool = False,
        src: Tensor | None = None,
    ) -> tuple[Tensor, list[Tensor] | None, list[Tensor] | None]:
        """Teacher-forced decoder over the whole prefix, no cache.

        tgt_in (B, T) -> scores (B, T, V) (logits, or log-probs with copy attention, which
        needs `src`), and when need_weights per-layer self weights (B, H, T, T) and cross
        weights (B, H, T, S).
        """
        h, w_self, w_cross = self._decoder_states(tgt_in, memory, src_pad, need_weights)
        copy_keys = self.copy_k(memory) if self.config.copy_attention else None
        logits = self._scores(h, src, src_pad, copy_keys)  # (B, T, V)
        if not need_weights:
            return logits, None, None
        return logits, w_self, w_cross

    def _decoder_states(
        self, tgt_in: Tensor, memory: Tensor, src_pad: Tensor, need_weights: bool = False
    ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """The final (normalised) decoder states (B, T, C) of a teacher-forced pass."""
        self_mask = self._causal_mask(tgt_in)
        cross_mask = self._key_mask(src_pad)
        x = self._embed(self.tgt_embed, tgt_in)
        w_self, w_cross = [], []
        for layer in self.decoder:
            cross_kv = layer.cross_attn.project_kv(memory)
            x, _, ws, wc = layer(x, cross_kv, cross_mask, self_mask, None, need_weights)
            w_self.append(ws)
            w_cross.append(wc)
        return self.dec_norm(x), w_self, w_cross

    def forward(self, src: Tensor, tgt_in: Tensor, select: Tensor | None = None):
        """Training pass (fused attention): src (B, S), tgt_in (B, T) -> logits (B, T, V).

        With `select` (B, T) bool (the positions whose target is not padding), only those N
        positions are scored, and the output is left unmixed for `loss.output_cross_entropy`:
        (logits (N, V), None), or with copy attention (logits (N, V), (gate (N, 1), copy
        attention (N, S), source ids (N, S))). The loss of that equals the loss of the full
        scores at the selected positions; the padding positions' vocabulary scores are never made.
        """
        memory, src_pad, _ = self.encode(src)
        if select is None:
            logits, _, _ = self.decode_full(tgt_in, memory, src_pad, src=src)
            return logits
        h, _, _ = self._decoder_states(tgt_in, memory, src_pad)
        h_sel = h[select]  # (N, C)
        logits = self.lm_head(h_sel)  # (N, V)
        if not self.config.copy_attention:
            return logits, None
        # the copy distribution exactly as in _scores, for the selected positions
        q = self.copy_q(h)  # (B, T, C)
        att = q @ self.copy_k(memory).transpose(1, 2) / math.sqrt(q.size(-1))  # (B, T, S)
        att = att.masked_fill(src_pad[:, None, :], float("-inf")).softmax(dim=-1)[select]  # (N, S)
        gate = torch.sigmoid(self.copy_gate(h_sel))  # (N, 1)
        rows = select.nonzero()[:, 0]  # (N,) batch row of each selected position
        return logits, (gate, att, src.index_select(0, rows))

    def load_weights(self, state: dict[str, Tensor]) -> "Seq2Seq":
        """Load a state dict (safetensors stores tied tensors apart: the tie is made again here)."""
        self.load_state_dict(state)
        if self.config.tie_output:
            self.lm_head.weight = self.tgt_embed.weight
        return self

    def copy_routes(self, src: Tensor, tgt_in: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The two routes of the pointer-generator output, teacher-forced: src (B, S), tgt_in (B, T)
        -> (gate (B, T), the vocabulary's share; vocabulary probabilities (B, T, V); copy attention
        (B, T, S)). Their mixture is what `_scores` returns; needs copy_attention."""
        if not self.config.copy_attention:
            raise ValueError("copy_routes needs a model with copy attention")
        memory, src_pad, _ = self.encode(src)
        h, _, _ = self._decoder_states(tgt_in, memory, src_pad)
        return self._routes(h, memory, src_pad)

    def _routes(self, h: Tensor, memory: Tensor, src_pad: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        att = self.copy_q(h) @ self.copy_k(memory).transpose(1, 2) / math.sqrt(h.size(-1))
        att = att.masked_fill(src_pad[:, None, :], float("-inf")).softmax(dim=-1)
        gate = torch.sigmoid(self.copy_gate(h))[..., 0]
        return gate.float(), self.lm_head(h).float().softmax(dim=-1), att.float()

    def forward_with_attention(self, src: Tensor, tgt_in: Tensor) -> tuple[Tensor, dict]:
        """Same as forward, through the explicit attention path, also returning the weights.

        Returns logits (B, T, V) and {"encoder": (L, B, H, S, S), "decoder": (L, B, H, T, T),
        "cross": (L, B, H, T, S)} tensors.
        """
        memory, src_pad, w_enc = self.encode(src, need_weights=True)
        logits, w_self, w_cross = self.decode_full(tgt_in, memory, src_pad, need_weights=True, src=src)
        return logits, {
            "encoder": torch.stack(w_enc),
            "decoder": torch.stack(w_self),
            "cross": torch.stack(w_cross),
        }

    # ---- incremental decoding (fairseq style)

    def init_state(
        self, memory: Tensor, src_pad: Tensor, use_cache: bool = True, src: Tensor | None = None
    ) -> DecoderState:
        """Start decoding B hypotheses from memory (B, S, C); nothing fed yet (feed BOS first).

        `src` (B, S), the source ids, is needed by copy attention."""
        B = memory.size(0)
        tokens = torch.empty(B, 0, dtype=torch.long, device=memory.device)
        if not use_cache:
            return DecoderState(tokens, src_pad, cross_kv=None, self_kv=None, memory=memory, src_ids=src)
        cross_kv = [layer.cross_attn.project_kv(memory) for layer in self.decoder]
        H, D = self.config.n_heads, self.config.d_model // self.config.n_heads
        empty = memory.new_zeros(B, H, 0, D)  # (B, H, 0, D)
        self_kv = [(empty, empty) for _ in self.decoder]
        copy_keys = self.copy_k(memory) if self.config.copy_attention else None
        return DecoderState(
            tokens, src_pad, cross_kv=cross_kv, self_kv=self_kv, memory=None, src_ids=src, copy_keys=copy_keys
        )

    def step(self, tokens_last: Tensor, state: DecoderState) -> tuple[Tensor, DecoderState]:
        """Feed one token per hypothesis: tokens_last (B,) -> next-token log-probs (B, V).

        Returns a new state; the given one is not modified.
        """
        tokens = torch.cat([state.tokens, tokens_last[:, None]], dim=1)  # (B, t + 1)
        if state.self_kv is None:  # baseline: re-run the whole prefix
            logits, _, _ = self.decode_full(tokens, state.memory, state.src_pad, src=state.src_ids)
            log_probs = F.log_softmax(logits[:, -1].float(), dim=-1)  # (B, V)
            return log_probs, replace(state, tokens=tokens)

        cross_mask = self._key_mask(state.src_pad)
        x = self._embed(self.tgt_embed, tokens_last[:, None], start=state.length)  # (B, 1, C)
        new_kv = []
        for layer, past, cross in zip(self.decoder, state.self_kv, state.cross_kv):
            # One query attends to all cached positions, so no self-attention mask is needed.
            x, kv, _, _ = layer(x, cross, cross_mask, None, past)
            new_kv.append(kv)
        logits = self._scores(self.dec_norm(x[:, -1:]), state.src_ids, state.src_pad, state.copy_keys)[:, 0]  # (B, V)
        log_probs = F.log_softmax(logits.float(), dim=-1)
        return log_probs, replace(state, tokens=tokens, self_kv=new_kv)

    # ---- attention for visualisation (fairseq's alignment pass)

    def attention_maps(self, src_ids: list[int], tgt_ids: list[int]) -> dict:
        """One teacher-forced pass with weights on, for one source/target pair.

        `src_ids`: the encoder input, exactly as fed (S tokens).
        `tgt_ids`: the decoder input, exactly as fed (T tokens): [BOS] + generated tokens
        (EOS left out). Row t of "decoder" and "cross" is the query at decoder input t,
        i.e. the step that *predicted* output token t (generated token t, or EOS for the
        last row when the full output is given).

        Returns numpy float32 arrays (rows = queries, cols = keys), plus the id lists:
          "encoder": [L_enc, H, S, S]  row i = source token i attending to source token j
          "decoder": [L_dec, H, T, T]  row t attends to decoder input j <= t (col 0 = BOS,
                                        col j = generated token j-1); j > t is exactly 0
          "cross":   [L_dec, H, T, S]  row t attends to source token j
          "src_ids", "tgt_ids": the lists given, to label the axes.
        """
        out = self.inspect(src_ids, tgt_ids)
        out.pop("routes", None)
        return out

    def inspect(self, src_ids: list[int], tgt_ids: list[int], maps: bool = True) -> dict:
        """One teacher-forced pass over an answer for everything the views show of it: with `maps`,
        every attention map and the id lists (as `attention_maps` returns them); with copy
        attention, "routes": the pointer-generator's (gate (T,), vocabulary probabilities (T, V),
        copy attention (T, S)) as `copy_routes` gives them, for `origins.origins_from_routes`."""
        if not src_ids or not tgt_ids:
            raise ValueError("attention_maps needs a non-empty source and target (start with BOS)")
        device = self.lm_head.weight.device
        src = torch.tensor([src_ids], dtype=torch.long, device=device)  # (1, S)
        tgt = torch.tensor([tgt_ids], dtype=torch.long, device=device)  # (1, T)
        out: dict = {}
        with evaluating(self), torch.inference_mode():
            memory, src_pad, w_enc = self.encode(src, need_weights=maps)
            h, w_self, w_cross = self._decoder_states(tgt, memory, src_pad, maps)
            if maps:
                weights = {"encoder": w_enc, "decoder": w_self, "cross": w_cross}
                for name, per_layer in weights.items():  # (L, H, ., .) for the one pair
                    out[name] = torch.stack(per_layer)[:, 0].float().cpu().numpy().astype(np.float32)
                out["src_ids"], out["tgt_ids"] = list(src_ids), list(tgt_ids)
            if self.config.copy_attention:
                gate, p_vocab, att = self._routes(h, memory, src_pad)
                out["routes"] = (gate[0], p_vocab[0], att[0])
        return out
