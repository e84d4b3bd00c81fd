"""Token-weighted, label-smoothed cross-entropy for the decoder."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def make_token_weights(vocab_size: int, weighted_ids: dict[int, float]) -> Tensor:
    """A (vocab_size,) float32 vector of per-target-id weights: 1.0 unless given."""
    weights = torch.ones(vocab_size, dtype=torch.float32)
    for tok, w in weighted_ids.items():
        if not 0 <= int(tok) < vocab_size:
            raise ValueError(f"token id {tok} is outside the vocabulary (size {vocab_size})")
        if not (math.isfinite(w) and w >= 0):
            raise ValueError(f"token weight for id {tok} must be finite and >= 0, got {w!r}")
        weights[int(tok)] = float(w)
    return weights


def weighted_cross_entropy(
    logits: Tensor,
    targets: Tensor,
    token_weights: Tensor | None,
    label_smoothing: float,
    pad_id: int,
) -> Tensor:
    """Mean cross-entropy over non-pad targets, each weighted by its target id's weight.

    logits (..., V), targets (...) -> scalar sum(w * ce) / sum(w), with w = 0 at padding
    and w = token_weights[target] elsewhere (1 when token_weights is None).
    Label smoothing is torch's: (1 - eps) on the target plus eps / V on every id.
    """
    V = logits.size(-1)
    ce = F.cross_entropy(
        logits.reshape(-1, V).float(),
        targets.reshape(-1),
        reduction="none",
        ignore_index=pad_id,
        label_smoothing=label_smoothing,
    )  # (N,), 0 at padding
    flat = targets.reshape(-1)
    w = (flat != pad_id).float()  # (N,)
    if token_weights is not None:
        w = w * token_weights.to(logits.device, torch.float32)[flat]
    return (w * ce).sum() / w.sum().clamp_min(1e-8)  # all padding -> 0, not NaN


def output_cross_entropy(
    logits: Tensor,
    copy: tuple[Tensor, Tensor, Tensor] | None,
    targets: Tensor,
    token_weights: Tensor | None,
    label_smoothing: float,
) -> Tensor:
    """`weighted_cross_entropy` of the training outputs of `Seq2Seq.forward(..., select=...)`.

    logits (N, V) at the N non-pad target positions, targets (N,). Without copy attention the
    scores are the logits; with it, `copy` = (gate (N, 1), copy attention (N, S), source ids
    (N, S)) and the scores are log(max(gate * softmax(logits) + the copy mass scattered onto the
    source ids, 1e-9)), as in `Seq2Seq._scores`. The value and gradients are those of
    `weighted_cross_entropy(model(src, tgt_in), tgt_out, ...)`; with copy attention the mixture,
    the clamp, the log-softmax and the label smoothing run as one autograd function with a
    hand-written backward (fewer passes over the (N, V) scores than autograd's chain).
    """
    logits = logits.float()
    w = torch.ones(targets.shape, dtype=torch.float32, device=logits.device)
    if token_weights is not None:
        w = token_weights.to(logits.device, torch.float32)[targets]
    if copy is None:
        ce = F.cross_entropy(logits, targets, reduction="none", label_smoothing=label_smoothing)
        return (w * ce).sum() / w.sum().clamp_min(1e-8)
    gate, att, index = copy
    gate, att = gate.float(), att.float()
    mix = (1 - gate) * att  # (N, S) copy mass of each source position
    return _CopyMixtureCrossEntropy.apply(logits, gate, mix, index, targets, w, float(label_smoothing))


def copy_supervision_loss(copy: tuple[Tensor, Tensor, Tensor], targets: Tensor) -> Tensor:
    """The pointer-generator's copy path taught directly, beside the mixture's likelihood.

    `copy` = (gate (N, 1), copy attention (N, S), source ids (N, S)) as `Seq2Seq.forward(...,
    select=...)` returns it, targets (N,). The gate (the vocabulary's share) is taught by binary
    cross-entropy to be 0 where the target token occurs in the source and 1 where it does not;
    where it occurs, the copy attention is taught to put its mass on those positions (negative log
    of the mass there). Without it the mixture can reach a token either way, and the gate learns
    little (the shipped model's copy path moved valid loss by 0.01).
    """
    gate, att, index = copy
    gate = gate.float()[:, 0].clamp(1e-6, 1 - 1e-6)
    match = index == targets[:, None]  # (N, S)
    in_source = match.any(1)
    gate_loss = F.binary_cross_entropy(gate, (~in_source).float())
    if not in_source.any():
        return gate_loss
    mass = (att.float() * match).sum(1)[in_source].clamp_min(_FLOOR)
    return gate_loss - mass.log().mean()


_FLOOR = 1e-9  # the probability floor of Seq2Seq._scores


class _CopyMixtureCrossEntropy(torch.autograd.Function):
    """sum_i w_i * CE_eps(log_softmax(log(max(q_i, 1e-9))), t_i) / sum_i w_i, where
    q_i = gate_i * softmax(logits_i) + scatter_add(index_i, mix_i) and CE_eps is torch's
    label-smoothed cross-entropy. log_softmax(log q) = log q - log sum(q), so with Z = sum(q):
    CE = -(1 - eps) (log q_t - log Z) - eps / V * (sum_v log q_v - V log Z).
    """

    @staticmethod
    def forward(ctx, logits, gate, mix, index, targets, w, eps):
        V = logits.size(1)
        p = torch.softmax(logits, dim=1)  # (N, V)
        q = p * gate
        q.scatter_add_(1, index, mix)
        q.clamp_min_(_FLOOR)
        log_z = q.sum(1).log()  # (N,)
        log_t = q.gather(1, targets[:, None])[:, 0].log()
        sum_log = q.log().sum(1)
        ce = -(1 - eps) * (log_t - log_z) - (eps / V) * (sum_log - V * log_z)
        total_w = w.sum().clamp_min(1e-8)
        ctx.save_for_backward(p, q, gate, index, targets, w, log_z, total_w)
        ctx.eps = eps
        return (w * ce).sum() / total_w

    @staticmethod
    def backward(ctx, grad):
        p, q, gate, index, targets, w, log_z, total_w = ctx.saved_tensors
        eps, V = ctx.eps, q.size(1)
        a = (grad * w / total_w)[:, None]  # (N, 1) d loss / d CE_i
        # d CE / d log q_v = q_v / Z - (1 - eps) [v = t] - eps / V, through the clamp (zero
        # where q_v was floored) and the log: d / d q_v = (a / Z - a eps / V / q_v) - ...
        g = torch.addcdiv(a * torch.exp(-log_z)[:, None], a * (-eps / V), q)  # (N, V)
        q_t = q.gather(1, targets[:, None])
        g.scatter_add_(1, targets[:, None], a * (-(1 - eps)) / q_t)
        g.masked_fill_(q <= _FLOOR, 0.0)
        d_mix = g.gather(1, index)  # (N, S)
        # softmax backward of gate * p: gate * p * (g - sum_v p_v g_v)
        gp = g.mul_(p)
        d_gate = gp.sum(1, keepdim=True)  # (N, 1) = sum_v g_v p_v
        d_logits = gp.mul_(gate).addcmul_(p, gate * d_gate, value=-1.0)
        return d_logits, d_gate, d_mix, None, None, None, None
