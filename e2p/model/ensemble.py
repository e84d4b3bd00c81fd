"""Several trained models decoding as one: each next-token distribution is the mean of the
members' (an ensemble in output space, unlike a weight average). The members share the
vocabularies and read the same source; `Ensemble` has the incremental-decoding interface of
`Seq2Seq` (`encode`, `init_state`, `step`), so every decoding rule works on it unchanged."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .transformer import DecoderState, Seq2Seq


@dataclass
class EnsembleState:
    """One `DecoderState` per member, rows in the same order."""

    states: list[DecoderState]

    @property
    def tokens(self) -> Tensor:
        return self.states[0].tokens

    @property
    def length(self) -> int:
        return self.states[0].length

    def reorder(self, index: Tensor) -> "EnsembleState":
        return EnsembleState([s.reorder(index) for s in self.states])


class Ensemble(nn.Module):
    def __init__(self, members: list[Seq2Seq]):
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        first = members[0].config
        for m in members[1:]:
            if (m.config.src_vocab, m.config.tgt_vocab, m.config.max_len) != (
                first.src_vocab,
                first.tgt_vocab,
                first.max_len,
            ):
                raise ValueError("ensemble members must share their vocabularies and max_len")
        self.members = nn.ModuleList(members)
        self.config = first
        self.lm_head = members[0].lm_head  # where decoding looks for the device

    def encode(self, src: Tensor, need_weights: bool = False):
        outs = [m.encode(src) for m in self.members]
        return [o[0] for o in outs], [o[1] for o in outs], None

    def init_state(self, memory: list[Tensor], src_pad: list[Tensor], use_cache: bool = True, src=None):
        return EnsembleState(
            [m.init_state(mem, pad, use_cache=use_cache, src=src) for m, mem, pad in zip(self.members, memory, src_pad)]
        )

    def step(self, tokens_last: Tensor, state: EnsembleState) -> tuple[Tensor, EnsembleState]:
        """The log of the members' mean next-token probability (B, V)."""
        outs = [m.step(tokens_last, s) for m, s in zip(self.members, state.states)]
        stacked = torch.stack([lp for lp, _ in outs])  # (M, B, V)
        return torch.logsumexp(stacked, dim=0) - math.log(len(outs)), EnsembleState([s for _, s in outs])
