"""Where each generated token came from: written from the vocabulary, copied from the prompt, or
copied from the retrieved example. The pointer-generator's probability of a token is
gate * p_vocab(token) + (1 - gate) * (copy attention on the source positions holding it); the
origin is the route, of those three, that gave the token most of its probability."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import torch

from .transformer import Seq2Seq, evaluating

WRITTEN, FROM_PROMPT, FROM_EXAMPLE = "written", "copied from the prompt", "copied from the example"
ORIGINS = (WRITTEN, FROM_PROMPT, FROM_EXAMPLE)


@dataclass(frozen=True)
class TokenOrigin:
    origin: str  # one of ORIGINS
    gate: float  # the copy gate: the vocabulary's share of the output distribution at this step
    shares: tuple[float, float, float]  # probability from each route, in ORIGINS order


def token_origins(
    model: Seq2Seq, src_ids: list[int], tgt_in: list[int], out_ids: list[int], prompt_len: int
) -> list[TokenOrigin] | None:
    """One TokenOrigin per token of `out_ids` (the tokens fed after BOS in `tgt_in`, or the EOS);
    `prompt_len`: how many leading source positions are the user's prompt. None for a model
    without copy attention (every token is then written)."""
    if not model.config.copy_attention or not out_ids:
        return None
    device = model.lm_head.weight.device
    src = torch.tensor([src_ids], dtype=torch.long, device=device)
    with evaluating(model), torch.inference_mode():
        gate, p_vocab, att = model.copy_routes(src, torch.tensor([tgt_in], dtype=torch.long, device=device))
    return origins_from_routes((gate[0], p_vocab[0], att[0]), src_ids, out_ids, prompt_len)


def origins_from_routes(routes, src_ids: list[int], out_ids: list[int], prompt_len: int) -> list[TokenOrigin] | None:
    """`token_origins` from the routes a teacher-forced pass already computed (`Seq2Seq.inspect`):
    `routes` = (gate (T,), vocabulary probabilities (T, V), copy attention (T, S)); None without them."""
    if routes is None or not out_ids:
        return None
    gate, p_vocab, att = routes
    src = torch.tensor([src_ids], dtype=torch.long, device=gate.device)
    out = torch.tensor(out_ids, dtype=torch.long, device=gate.device)
    n = len(out_ids)
    written = gate[:n] * p_vocab[:n].gather(1, out[:, None])[:, 0]
    match = (src[0][None, :] == out[:, None]).float()  # (n, S)
    copied = (1 - gate[:n])[:, None] * att[:n] * match
    from_prompt = copied[:, :prompt_len].sum(1)
    from_example = copied[:, prompt_len:].sum(1)
    shares = torch.stack([written, from_prompt, from_example], 1).tolist()
    return [
        TokenOrigin(ORIGINS[max(range(3), key=row.__getitem__)], float(g), tuple(row))
        for row, g in zip(shares, gate[:n].tolist())
    ]


def origin_split(per_answer: list[list[TokenOrigin] | None]) -> dict[str, float] | None:
    """The share of all generated tokens in each origin, over many answers (None: no origins)."""
    counts = Counter(o.origin for origins in per_answer if origins for o in origins)
    total = sum(counts.values())
    return {name: counts[name] / total for name in ORIGINS} if total else None
