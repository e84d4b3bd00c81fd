"""Token <-> id maps built from the train split, saved as JSON."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from ..errors import E2PError

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)


class Vocab:
    def __init__(self, tokens: list[str]):
        if list(tokens[: len(SPECIALS)]) != list(SPECIALS):
            raise E2PError(f"a vocabulary must start with the special tokens {SPECIALS}")
        if len(set(tokens)) != len(tokens):
            raise E2PError("a vocabulary must not repeat a token")
        self.tokens = list(tokens)
        self.index = {tok: i for i, tok in enumerate(self.tokens)}

    pad_id, unk_id, bos_id, eos_id = 0, 1, 2, 3

    @classmethod
    def build(cls, sequences: Iterable[list[str]], min_freq: int = 2, reserved: Iterable[str] = ()) -> "Vocab":
        """Specials, then `reserved` (placeholders), then tokens seen at least `min_freq` times."""
        counts = Counter(tok for seq in sequences for tok in seq)
        head = list(SPECIALS) + [t for t in dict.fromkeys(reserved) if t not in SPECIALS]
        taken = set(head)
        frequent = sorted(
            (t for t, n in counts.items() if n >= min_freq and t not in taken), key=lambda t: (-counts[t], t)
        )
        return cls(head + frequent)

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self.index

    def encode(self, tokens: list[str]) -> list[int]:
        return [self.index.get(t, self.unk_id) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.tokens[i] if 0 <= i < len(self.tokens) else UNK for i in ids]

    def digest(self) -> str:
        """sha256 of the token list: weights trained on one vocabulary load only into the same one."""
        return hashlib.sha256("\n".join(self.tokens).encode()).hexdigest()

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"tokens": self.tokens}, ensure_ascii=False, indent=0))

    @classmethod
    def load(cls, path: str | Path) -> "Vocab":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls(list(data["tokens"]))
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise E2PError(f"cannot read vocabulary {path}: {err}") from None
