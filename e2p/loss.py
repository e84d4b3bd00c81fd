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
