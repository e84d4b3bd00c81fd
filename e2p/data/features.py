"""From an example to model sequences: the source tokens the encoder reads, the code tokens it writes.

Two switches shape the source (both saved in the artifact's config so inference does the same):
- `copy`: the prompt's numbers, strings and names become placeholders on both sides;
- `retrieval`: one retrieved train example's prompt and code follow the prompt, after `<sep>` and
  `<code>` markers (retrieve-and-edit): in training the nearest, at inference the nearest or the
  learned ranker's first (`example_pool`). In training the example itself and any example with the
  same prompt key are never retrieved, so the model cannot learn to copy the answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

from ..constants import EXPERIMENTS_PAGE, REBUILD_COMMAND
from ..errors import E2PError
from ..retired import drop_retired
from .corpus import Example
from .placeholders import Slots, abstract_code, abstract_prompt
from .retrieval import Retriever
from .tokenizers import code_tokens, english_tokens

SEP, CODE = "<sep>", "<code>"
# Feature options measured and not kept (docs/experiments.md), with the value at which an old
# artifact's config still builds today's sources (None: it shaped training only, any value loads).
RETIRED_FEATURES = {"neighbours": 1, "train_pool": None}


@dataclass(frozen=True)
class FeatureConfig:
    copy: bool = True  # prompt values -> placeholders (ablation switch)
    retrieval: bool = True  # append one retrieved train example to the source
    max_src: int = 256  # tokens the encoder takes; longer prompts are cut
    max_tgt: int = 256  # longest code (tokens) used in training and the default decoding cap
    max_prompt: int = 64  # prompt tokens kept before the retrieved part
    example_pool: int = 0  # inference: the example shown is the learned ranker's first among this
    # many nearest (0: the nearest by prompt similarity; also where the artifact has no ranker)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "FeatureConfig":
        """Features as an artifact's config stores them. Artifacts written before an option was
        retired still carry it: at today's value (or where it shaped training only) it is dropped; at
        any other the model was trained on other sources, so the artifact is refused."""

        def refuse(name: str, value) -> E2PError:
            return E2PError(
                f"this artifact's sources hold {name} {value!r}, which was measured and not kept "
                f"({EXPERIMENTS_PAGE}): rebuild it with {REBUILD_COMMAND}"
            )

        data = drop_retired(data, RETIRED_FEATURES, refuse)
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Source:
    tokens: list[str]
    slots: Slots
    prompt_len: int  # how many leading tokens are the user's prompt
    truncated: bool
    neighbour: Example | None
    similarity: float = 0.0  # the shown example's TF-IDF similarity to the prompt (0: none shown)
    example_tokens: tuple[str, ...] = ()  # the shown example's whole code as target tokens (the
    # source holds only what fits in max_src; decoding follows the whole program)


@dataclass(frozen=True)
class Retrieved:
    """A prompt prepared once for every source of a request: its placeholders and tokens, and the
    retrieved examples, nearest first and in the order they are shown."""

    slots: Slots
    tokens: list[str]  # the prompt's tokens, cut to max_prompt
    truncated: bool
    found: list[tuple[Example, float]]  # (example, TF-IDF similarity), nearest first
    shown: list[Example]  # the order examples are shown in: the ranker's where it orders them


# (prompt, retrieved (example, similarity) pairs best first) -> those examples, best first
Order = Callable[[str, list[tuple[Example, float]]], list[Example]]


class Featurizer:
    def __init__(self, config: FeatureConfig, retriever: Retriever | None = None, order: Order | None = None):
        """`order` (inference, with `config.example_pool`): how the retrieved examples are ranked
        before the first is shown; without it they keep the retriever's order (training)."""
        if config.retrieval and retriever is None:
            raise ValueError("retrieval features need a retriever over the train split")
        self.config = config
        self.retriever = retriever
        self.order = order

    def retrieve(self, prompt: str, exclude_key: str | None = None, examples: int = 1, pool: int = 0) -> Retrieved:
        """The prompt's placeholders and tokens and one retrieval for a whole request: enough nearest
        examples to show the first `examples` in turn (the ranker's first among `example_pool`, where
        it orders them) and `pool` nearest for the caller's own use."""
        cfg = self.config
        text, slots = abstract_prompt(prompt) if cfg.copy else (prompt, Slots())
        tokens = english_tokens(text)
        truncated = len(tokens) > cfg.max_prompt
        found, shown = [], []
        if cfg.retrieval:
            ranked = self.order is not None and cfg.example_pool > 1
            n = max(cfg.example_pool if ranked else 0, examples)
            found = self.retriever.nearest(prompt, max(n, pool), exclude_key=exclude_key)
            shown = [ex for ex, _ in found[:n]]
            if ranked and len(shown) > 1:
                shown = self.order(prompt, found[:n])
        return Retrieved(slots, tokens[: cfg.max_prompt], truncated, found, shown)

    def source(self, prompt: str, exclude_key: str | None = None, start: int = 0) -> Source:
        """`start` (inference): show the example at this place in their order (a second try)."""
        return self.source_of(self.retrieve(prompt, exclude_key, examples=1 + start), start)

    def source_of(self, retrieved: Retrieved, start: int = 0) -> Source:
        """The encoder's input showing the `start`-th example of `retrieved` (none where it has none)."""
        cfg = self.config
        tokens, prompt_len = list(retrieved.tokens), len(retrieved.tokens)
        neighbour = retrieved.shown[start] if start < len(retrieved.shown) else None
        similarity = next((sim for ex, sim in retrieved.found if ex.line == neighbour.line), 0.0)
        example: list[str] = []
        if neighbour is not None:
            n_prompt = english_tokens(abstract_prompt(neighbour.prompt)[0] if cfg.copy else neighbour.prompt)
            example = self.target(neighbour.code, retrieved.slots)
            tokens = tokens + [SEP] + n_prompt[: cfg.max_prompt] + [CODE] + example
        return Source(
            tokens[: cfg.max_src],
            retrieved.slots,
            prompt_len,
            retrieved.truncated,
            neighbour,
            similarity,
            tuple(example),
        )

    def target(self, code: str, slots: Slots) -> list[str]:
        tokens = code_tokens(code)
        return abstract_code(tokens, slots) if self.config.copy else tokens

    def pair(self, example: Example) -> tuple[list[str], list[str]]:
        """Training pair; the example never retrieves itself or its duplicates."""
        src = self.source(example.prompt, exclude_key=example.key)
        return src.tokens, self.target(example.code, src.slots)
