"""The valid-split decoding metric that picks the best checkpoint: BLEU of batched greedy output."""

from __future__ import annotations

from .decoding import greedy_batch
from .metrics import bleu
from .placeholders import restore_code
from .tokenizers import decode_code
from .training import Prepared, TrainConfig
from .vocab import Vocab


def bleu_metric(prep: Prepared, cfg: TrainConfig, batch: int = 32, max_len: int = 160):
    """Greedy output is capped at `max_len` tokens (95% of the code is shorter): an early model that
    never stops would otherwise spend most of the epoch here."""
    sources = [prep.featurizer.source(ex.prompt, exclude_key=ex.key) for ex in prep.valid]
    src_ids = [prep.src_vocab.encode(s.tokens) for s in sources]
    refs = [ex.code for ex in prep.valid]

    def metric(model) -> float:
        hyps = []
        for start in range(0, len(src_ids), batch):
            outs = greedy_batch(
                model,
                src_ids[start : start + batch],
                min(max_len, cfg.max_tgt),
                Vocab.bos_id,
                Vocab.eos_id,
                Vocab.pad_id,
                unk_id=Vocab.unk_id,
            )
            for out, src in zip(outs, sources[start : start + batch]):
                hyps.append(decode_code(restore_code(prep.tgt_vocab.decode(out), src.slots)))
        model.train()
        return bleu(hyps, refs)

    return metric
