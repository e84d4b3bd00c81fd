"""From an example to model sequences: the source tokens the encoder reads, the code tokens it writes.

Two switches shape the source (both saved in the artifact's config so inference does the same):
- `copy`: the prompt's numbers, strings and names become placeholders on both sides;
- `retrieval`: the nearest train example's prompt and code follow the prompt, after `<sep>` and
  `<code>` markers (retrieve-and-edit). In training the example itself and any example with the
  same prompt key are never retrieved, so the model cannot learn to copy the answer.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import asdict, dataclass

from .corpus import Example
from .placeholders import Slots, abstract_code, abstract_prompt
from .retrieval import Retriever
from .tokenizers import code_tokens, english_tokens

SEP, CODE = "<sep>", "<code>"


@dataclass(frozen=True)
class FeatureConfig:
    copy: bool = True  # prompt values -> placeholders (ablation switch)
    retrieval: bool = True  # append the nearest train example to the source
    max_src: int = 256  # tokens the encoder takes; longer prompts are cut
    max_tgt: int = 256  # longest code (tokens) used in training and the default decoding cap
    max_prompt: int = 64  # prompt tokens kept before the retrieved part
    neighbours: int = 1  # retrieved examples in the source, nearest first
    train_pool: int = 0  # training only: draw the neighbours at random from this many nearest (0: the
    # nearest), so that the model learns to edit what it is shown rather than trust it blindly
    example_pool: int = 0  # inference: the examples shown are the learned ranker's first among this
    # many nearest (0: the nearest by prompt similarity; also where the artifact has no ranker)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "FeatureConfig":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Source:
    tokens: list[str]
    slots: Slots
    prompt_len: int  # how many leading tokens are the user's prompt
    truncated: bool
    neighbour: Example | None
    similarity: float = 0.0  # the shown example's TF-IDF similarity to the prompt (0: none shown)


# (prompt, retrieved (example, similarity) pairs best first) -> those examples, best first
Order = Callable[[str, list[tuple[Example, float]]], list[Example]]


class Featurizer:
    def __init__(self, config: FeatureConfig, retriever: Retriever | None = None, order: Order | None = None):
        """`order` (inference, with `config.example_pool`): how the retrieved examples are ranked
        before the first `neighbours` are shown; without it they keep the retriever's order."""
        if config.retrieval and retriever is None:
            raise ValueError("retrieval features need a retriever over the train split")
        self.config = config
        self.retriever = retriever
        self.order = order

    def source(
        self, prompt: str, exclude_key: str | None = None, rng: random.Random | None = None, start: int = 0
    ) -> Source:
        """`rng` (training): draw the neighbours from the `train_pool` nearest, kept in rank order.
        `start` (inference): show the examples from this place in their order on (a second try)."""
        cfg = self.config
        text, slots = abstract_prompt(prompt) if cfg.copy else (prompt, Slots())
        tokens = english_tokens(text)
        truncated = len(tokens) > cfg.max_prompt
        tokens = tokens[: cfg.max_prompt]
        prompt_len = len(tokens)
        neighbour, similarity = None, 0.0
        if cfg.retrieval:
            ranked = self.order is not None and cfg.example_pool > cfg.neighbours and rng is None
            pool = cfg.train_pool if rng is not None else cfg.example_pool if ranked else 0
            pool = max(pool, cfg.neighbours + start)
            found = self.retriever.nearest(prompt, pool, exclude_key=exclude_key)
            hits = [ex for ex, _ in found]
            if rng is not None and len(hits) > cfg.neighbours:
                hits = [hits[i] for i in sorted(rng.sample(range(len(hits)), cfg.neighbours))]
            else:
                if ranked and len(found) > 1:
                    hits = self.order(prompt, found)
                hits = hits[start : start + cfg.neighbours]
            neighbour = hits[0] if hits else None
            similarity = next((sim for ex, sim in found if ex is neighbour), 0.0)
            for hit in hits:
                n_prompt = english_tokens(abstract_prompt(hit.prompt)[0] if cfg.copy else hit.prompt)
                tokens = tokens + [SEP] + n_prompt[: cfg.max_prompt] + [CODE] + self.target(hit.code, slots)
        tokens = tokens[: cfg.max_src]
        return Source(tokens, slots, prompt_len, truncated, neighbour, similarity)

    def target(self, code: str, slots: Slots) -> list[str]:
        tokens = code_tokens(code)
        return abstract_code(tokens, slots) if self.config.copy else tokens

    def pair(self, example: Example, rng: random.Random | None = None) -> tuple[list[str], list[str]]:
        """Training pair; the example never retrieves itself, its duplicates or its augmented kin."""
        src = self.source(example.prompt, exclude_key=example.family or example.key, rng=rng)
        return src.tokens, self.target(example.code, src.slots)
