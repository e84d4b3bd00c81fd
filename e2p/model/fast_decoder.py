"""One decoder step with as few Python-level operations as the arithmetic allows.

`Seq2Seq.step` is the reference: readable modules, one call each, a growing key/value cache.
For batch-1 (and beam-5) decoding on a CPU most of its time is spent outside the arithmetic:
module calls, dropout calls that do nothing in eval mode, head splitting, concatenation. This
module computes the same step from the same weights, fused once when it is built:

- the self-attention Q, K and V projections are one matrix (one matrix-vector product, not three);
- the key/value cache is one preallocated buffer (every layer's keys and values) written in place
  (no concatenation per step; where beam rows are reordered, the rows that change move in place);
- every matrix is stored transposed, (in, out) and contiguous, which a row vector is measurably
  faster to multiply by (the output layer most: it is the largest);
- the output layer, the copy query and the copy gate are one matrix (one product, then slices);
- the cross-attention and copy-attention keys are projected and scaled once, and the source
  padding becomes one additive bias;
- attention (self and cross) is one `scaled_dot_product_attention` call per layer, and the
  functional wrappers (F.layer_norm, F.embedding) are skipped for the aten calls beneath them.

Beam rows decoding one source attend to its keys as one sequence of B queries (not B broadcast
batches, which took the slow path that copies the keys per row): the beam-5 step about 1.3x faster.
Several rows multiply by the output layer through oneDNN's packed weights (`_packed_head`).

Measured on the shipped model (2 cores shared, one thread): the step alone 1.2-1.6x faster than
the version before these last four points, greedy decoding 1.4-1.7x. `torch.compile` (inductor,
static shapes, with and without cpp_wrapper / freezing) and `torch.jit.trace` + freeze of the same
step were measured and not kept: no faster than this within the noise, 20-30 s to compile (10-20 s
again in a new process even with a warm on-disk cache) and ~0.15 ms of guard/wrapper cost per call;
an AOTInductor package of it, no faster either (docs/experiments.md).

The maths is the model's; only the order of floating-point additions differs, so scores agree
with `Seq2Seq.step` to about 1e-5 (4e-5 through oneDNN), and a choice can differ only where two scores are that close
(`decoding.decode(..., eager=True)` takes the reference path; `bench` counts such differences).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass
class _Layer:
    qkv_w: Tensor  # (3C, C): self-attention q, k, v projections stacked
    qkv_b: Tensor  # (3C,)
    self_out_w: Tensor
    self_out_b: Tensor
    cross_q_w: Tensor
    cross_q_b: Tensor
    cross_out_w: Tensor
    cross_out_b: Tensor
    fc1_w: Tensor
    fc1_b: Tensor
    fc2_w: Tensor
    fc2_b: Tensor
    norms: tuple  # three (weight, bias, eps): self, cross, feed-forward sublayers


def _norm(m) -> tuple:
    return (m.weight, m.bias, m.eps)


def _move_rows(cache: Tensor, index: list[int], n: int) -> bool:
    """Row i of `cache` (its first n positions) becomes what row index[i] holds, in place; False
    where every row continues itself. A beam step mostly shifts rows (`[0, 0, 1, 2, 3]`): they are
    copied so that a row is overwritten only once no other row still has to read it, one copy per
    row that changes, where a gather and a copy back made two passes over the whole cache and a new
    buffer each step. A cycle (`[1, 0]`) keeps one row aside first."""
    pending = {i: j for i, j in enumerate(index) if i != j}  # row -> the row it is copied from
    if not pending:
        return False
    aside: dict[int, Tensor] = {}  # rows kept aside, by -1 - row
    while pending:
        read = {j for j in pending.values() if j >= 0}
        free = [i for i in pending if i not in read]  # rows nobody still reads: safe to overwrite
        if not free:  # only cycles left: keep one source aside, and its row is free
            src = min(read)
            aside[-1 - src] = cache[src, :, :, :n].clone()
            pending = {i: (-1 - src if j == src else j) for i, j in pending.items()}
            continue
        for i in free:
            j = pending.pop(i)
            cache[i, :, :, :n].copy_(aside[j] if j < 0 else cache[j, :, :, :n])
    return True


@dataclass
class FastState:
    """Per-row decoding state of `FastDecoder` (rows = hypotheses)."""

    length: int  # tokens fed so far (= position of the next one)
    cache: Tensor  # (B, 2 * layers, H, capacity, D): each layer's keys then values, filled up to `length`
    cross_keys: list[Tensor]  # per layer (B, H, S, D), pre-scaled by 1/sqrt(D)
    cross_values: list[Tensor]  # per layer (B, H, S, D)
    src_bias: Tensor  # (B, 1, 1, S): 0 where the source is a token, -inf at its padding
    src_ids: Tensor | None  # (B, S), copy attention
    copy_keys_t: Tensor | None  # (B, C, S), pre-scaled
    copy_bias: Tensor | None  # (B, 1, S)
    feeds: dict | None = None  # the ONNX step's inputs fixed for the whole decode (onnx_step.OnnxDecoder)
    capacity: int = 0  # positions the decode may fill; the cache may have less room (onnx_step grows it)

    @property
    def device(self) -> torch.device:
        return self.src_bias.device

    def reorder(self, index: Tensor) -> "FastState":
        """Row i of the new state is row index[i] of this one (beam back-pointers). The cache is
        one buffer (every layer's keys and values). Where the number of rows stays, only the rows
        that change are copied, in place (`_move_rows`); otherwise one gather into a new buffer.
        Only what is filled is copied."""
        n = self.length
        rows = self.cache.size(0)
        if index.numel() == rows:
            if not _move_rows(self.cache, index.tolist(), n):
                return self  # every row continues itself
            cache = self.cache
        else:
            cache = self.cache.new_zeros((index.numel(),) + tuple(self.cache.shape[1:]))
            cache[:, :, :, :n] = self.cache[:, :, :, :n].index_select(0, index)

        def pick(t: Tensor | None) -> Tensor | None:
            # one source for every row (batch 1): shared, broadcast by the products in `step`
            return t if t is None or t.size(0) == 1 else t.index_select(0, index)

        return FastState(
            length=n,
            cache=cache,
            cross_keys=[pick(k) for k in self.cross_keys],
            cross_values=[pick(v) for v in self.cross_values],
            src_bias=pick(self.src_bias),
            src_ids=pick(self.src_ids),
            copy_keys_t=pick(self.copy_keys_t),
            copy_bias=pick(self.copy_bias),
            feeds=self.feeds,
            capacity=self.capacity,
        )


class FastDecoder:
    """`init_state(memory, src_pad, src, capacity)` then `step(tokens_last, state)`, as
    `Seq2Seq.init_state` / `Seq2Seq.step` (cached mode), for a model in eval mode."""

    def __init__(self, model):
        cfg = model.config
        self.model = model
        self.cfg = cfg
        self.H, self.D = cfg.n_heads, cfg.d_model // cfg.n_heads
        self.scale = 1.0 / math.sqrt(self.D)

        def t(w: Tensor) -> Tensor:  # (out, in) -> (in, out), contiguous: a row vector times it is
            return w.detach().t().contiguous()  # measurably cheaper than times a transposed view

        with torch.no_grad():
            self.layers = []
            for layer in model.decoder:
                sa, ca = layer.self_attn, layer.cross_attn
                self.layers.append(
                    _Layer(
                        qkv_w=t(torch.cat([sa.q_proj.weight, sa.k_proj.weight, sa.v_proj.weight])),
                        qkv_b=torch.cat([sa.q_proj.bias, sa.k_proj.bias, sa.v_proj.bias]).contiguous(),
                        self_out_w=t(sa.out_proj.weight),
                        self_out_b=sa.out_proj.bias.detach(),
                        cross_q_w=t(ca.q_proj.weight),
                        cross_q_b=ca.q_proj.bias.detach(),
                        cross_out_w=t(ca.out_proj.weight),
                        cross_out_b=ca.out_proj.bias.detach(),
                        fc1_w=t(layer.ff.fc1.weight),
                        fc1_b=layer.ff.fc1.bias.detach(),
                        fc2_w=t(layer.ff.fc2.weight),
                        fc2_b=layer.ff.fc2.bias.detach(),
                        norms=(_norm(layer.sub_self.norm), _norm(layer.sub_cross.norm), _norm(layer.sub_ff.norm)),
                    )
                )
            self.embed = model.tgt_embed.weight.detach()
            self.embed_scale = math.sqrt(cfg.d_model)
            self.positions = model.positions
            self.final_norm = _norm(model.dec_norm) if cfg.pre_norm else None
            # the output layer and, with copy attention, the copy query and the gate: one product
            head = [model.lm_head.weight]
            if cfg.copy_attention:
                head += [model.copy_q.weight, model.copy_gate.weight]
                self.gate_b = model.copy_gate.bias.detach()
            self.head_w = t(torch.cat(head))  # (C, V [+ C + 1])
            self.V = model.lm_head.weight.size(0)
            self.head_rows = _packed_head(torch.cat(head).detach())

    def weights(self) -> list[Tensor]:
        """Every matrix one step multiplies a row vector by (the arithmetic floor of a step), each
        stored (in, out)."""
        out = []
        for ly in self.layers:
            out += [ly.qkv_w, ly.self_out_w, ly.cross_q_w, ly.cross_out_w, ly.fc1_w, ly.fc2_w]
        out.append(self.head_w)
        return out

    @torch.inference_mode()
    def init_state(self, memory: Tensor, src_pad: Tensor, src: Tensor | None, capacity: int) -> FastState:
        """memory (B, S, C) from `Seq2Seq.encode`; room for `capacity` tokens (BOS included)."""
        B, S, C = memory.shape
        H, D = self.H, self.D
        cross_k, cross_v = [], []
        for layer in self.model.decoder:
            k, v = layer.cross_attn.project_kv(memory)  # (B, H, S, D)
            cross_k.append((k * self.scale).contiguous())
            cross_v.append(v.contiguous())
        bias = torch.zeros(B, 1, 1, S, dtype=memory.dtype).masked_fill_(src_pad[:, None, None, :], float("-inf"))
        copy_keys_t = copy_bias = None
        if self.cfg.copy_attention:
            copy_keys_t = (self.model.copy_k(memory) * (1.0 / math.sqrt(C))).transpose(1, 2).contiguous()
            copy_bias = bias[:, 0]  # (B, 1, S)
        return FastState(
            length=0,
            # zeros, not empty: the ONNX step reads the whole buffer (masked past the position, and
            # 0 * NaN would still be NaN)
            cache=memory.new_zeros(B, 2 * len(self.layers), H, capacity, D),
            cross_keys=cross_k,
            cross_values=cross_v,
            src_bias=bias,
            src_ids=src,
            copy_keys_t=copy_keys_t,
            copy_bias=copy_bias,
            capacity=capacity,
        )

    def step(self, tokens_last: Tensor, state: FastState) -> tuple[Tensor, FastState]:
        """tokens_last (B,) -> next-token log-probs (B, V); the state's cache is written in place
        (the state is returned for symmetry with `Seq2Seq.step`)."""
        # Entering inference mode costs about 0.09 ms, 7% of a greedy step: only where the caller
        # (decoding does, once per decode) has not.
        if torch.is_inference_mode_enabled():
            return self._step(tokens_last, state)
        with torch.inference_mode():
            return self._step(tokens_last, state)

    def _step(self, tokens_last: Tensor, state: FastState) -> tuple[Tensor, FastState]:
        t = state.length
        B = tokens_last.size(0)
        H, D = self.H, self.D
        pre = self.cfg.pre_norm
        addmm, norm, sdpa = torch.addmm, torch.layer_norm, F.scaled_dot_product_attention
        x = torch.embedding(self.embed, tokens_last).mul_(self.embed_scale).add_(self.positions.pe[t])  # (B, C)
        C = x.size(-1)
        shape = (C,)
        # Beam rows decoding one source share its cross-attention keys (batch 1). Given as B queries of
        # one sequence they are one attention over that source; given as B batches, the keys would be
        # broadcast, which sends scaled_dot_product_attention down its slow path copying them per row.
        shared = B > 1 and state.cross_keys[0].size(0) == 1
        for i, ly in enumerate(self.layers):
            (n1w, n1b, e1), (n2w, n2b, e2), (n3w, n3b, e3) = ly.norms
            h = norm(x, shape, n1w, n1b, e1) if pre else x
            q, k, v = addmm(ly.qkv_b, h, ly.qkv_w).view(B, 3, H, D).unbind(1)  # 3 x (B, H, D)
            keys, values = state.cache[:, 2 * i], state.cache[:, 2 * i + 1]
            keys[:, :, t] = k
            values[:, :, t] = v
            y = sdpa(q.unsqueeze(2), keys[:, :, : t + 1], values[:, :, : t + 1], scale=self.scale)  # (B,H,1,D)
            x = x + addmm(ly.self_out_b, y.view(B, C), ly.self_out_w)
            if not pre:
                x = norm(x, shape, n1w, n1b, e1)
            h = norm(x, shape, n2w, n2b, e2) if pre else x
            q = addmm(ly.cross_q_b, h, ly.cross_q_w)
            # keys pre-scaled: scale 1; the source padding is an additive -inf bias
            if shared:  # the rows' queries as one sequence over the one source (see `shared` above)
                q = q.view(B, H, D).transpose(0, 1).unsqueeze(0)  # (1, H, B, D)
                y = sdpa(q, state.cross_keys[i], state.cross_values[i], attn_mask=state.src_bias, scale=1.0)
                y = y[0].transpose(0, 1).reshape(B, C)
            else:
                q = q.view(B, H, 1, D)
                y = sdpa(q, state.cross_keys[i], state.cross_values[i], attn_mask=state.src_bias, scale=1.0)
                y = y.view(B, C)
            x = x + addmm(ly.cross_out_b, y, ly.cross_out_w)
            if not pre:
                x = norm(x, shape, n2w, n2b, e2)
            h = norm(x, shape, n3w, n3b, e3) if pre else x
            x = x + addmm(ly.fc2_b, addmm(ly.fc1_b, h, ly.fc1_w).relu_(), ly.fc2_w)
            if not pre:
                x = norm(x, shape, n3w, n3b, e3)
        if self.final_norm is not None:
            w, b, eps = self.final_norm
            x = norm(x, shape, w, b, eps)
        if B > 1 and self.head_rows is not None:
            out = torch.ops.mkldnn._linear_pointwise(x, self.head_rows, None, "none", [], "")
        else:
            out = torch.mm(x, self.head_w)  # (B, V [+ C + 1])
        state.length = t + 1
        V = self.V
        if not self.cfg.copy_attention:
            return out.log_softmax(-1), state
        logits, q = out[:, :V], out[:, V : V + C].unsqueeze(1)  # (B, V), (B, 1, C)
        if state.copy_keys_t.size(0) == 1:  # one source for every row: one product, no broadcast copy
            att = torch.mm(q[:, 0], state.copy_keys_t[0]).add_(state.copy_bias[:, 0]).softmax(-1)  # (B, S)
        else:
            att = torch.matmul(q, state.copy_keys_t).add_(state.copy_bias).softmax(-1)[:, 0]  # (B, S)
        gate = out[:, V + C :].add(self.gate_b).sigmoid_()  # (B, 1)
        probs = logits.softmax(-1).mul_(gate)
        probs.scatter_add_(-1, state.src_ids.expand(B, -1), att.mul_(1 - gate))
        return probs.clamp_min_(1e-9).log_().log_softmax(-1), state


BEAM_ROWS = 5  # the row count oneDNN's packed output layer is laid out for (the shipped beam)


def _packed_head(weight: Tensor) -> Tensor | None:
    """The output layer (out, in) packed for oneDNN's matrix product, or None where this torch has
    no oneDNN. Several rows at once (the beam's) take about half MKL's time with it (MKL multiplies
    5 rows by this 256 x 4,875 matrix in about 3.7x the time of one, oneDNN in about 2.5x); one row
    is faster with MKL, and so are the smaller matrices. Its sums differ from MKL's by about 4e-5."""
    if not torch.backends.mkldnn.is_available():
        return None
    try:
        return torch.ops.mkldnn._reorder_linear_weight(weight.contiguous(), BEAM_ROWS)
    except (RuntimeError, AttributeError):  # a build without the op
        return None


def fast_decoder_for(model) -> FastDecoder:
    """The model's FastDecoder, built once and again only after its weights change (training
    updates them in place, which bumps every updated tensor's version counter)."""
    versions = tuple(p._version for p in model.parameters())
    cached = getattr(model, "_fast_decoder", None)
    if cached is None or cached[0] != versions:
        cached = (versions, FastDecoder(model))
        object.__setattr__(model, "_fast_decoder", cached)  # not a module attribute: not saved
    return cached[1]
