"""How an artifact answers, and the one place a request's settings are decided.

The answer policy is a file of its own beside the weights (`policy.json`), apart from the training
config: re-evaluating other answer settings (`python -m train --evaluate-only`) rewrites it alone. It
names two answers:
- `default`: what `e2p generate`, the app and `evaluate` give unless asked otherwise;
- `ranker`: the retrieval baseline (`--rerank ranker`): the learned ranker over the model's candidates
  and the nearest training programs, with `model_offset` added to the model's own (chosen on valid);
and `example_pool`: the example the model is shown is the learned ranker's first among that many nearest;
and `runs`: false where answers are snippets that use names defined elsewhere (CoNaLa), which running
says nothing about: nothing runs to choose them, and they are labelled "snippet: not run".

`Policy.resolve` turns (the policy, a user's overrides) into a `Request`; the CLI, the app, `evaluate`,
`bench` and the generator itself ask it, and nothing else decides a default.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ..constants import RERANKS, SNIPPET_LABEL, SNIPPET_REASON  # noqa: F401  (re-exported)
from ..errors import E2PError
from ..model.decoding import DecodeSettings, DecodeSettingsError

POLICY_FILE = "policy.json"

# The default recipe's policy (train/configs/default.json), where a training preset names none. In a
# preset, each answer's decoding gives the DecodeSettings fields that differ from DecodeSettings' own
# defaults (max_len is the recipe's max_tgt; a beam returns all its hypotheses).
DEFAULT_PRESET = {
    "default": {
        "decoding": {"strategy": "beam", "beam_size": 5, "syntax_guard": True, "follow_example": 20.0, "examples": 2},
        "rerank": "run",
        "pool": 0,
        "fallback": False,
    },
    "ranker": {
        "decoding": {"strategy": "greedy", "syntax_guard": True, "eos_penalty": 1.0},
        "pool": 10,
        "model_offset": -10.0,
    },
    "example_pool": 10,
    "runs": True,
}


class PolicyError(E2PError):
    """A policy file or preset that cannot be used."""


@dataclass(frozen=True)
class Request:
    """What one generation is asked with: `Generator.generate(prompt, **request.kwargs())`."""

    settings: DecodeSettings
    rerank: str
    pool: int  # nearest train programs ranked beside the model's candidates (0: the model's own code)
    fallback: bool  # where no candidate parses, answer with the nearest training example's code
    edit: bool = True  # also rank those programs with this prompt's values put in

    def kwargs(self) -> dict:
        return dict(settings=self.settings, rerank=self.rerank, pool=self.pool, fallback=self.fallback, edit=self.edit)


@dataclass(frozen=True)
class Answer:
    """One kind of answer: its decoding, how candidates are ordered, the retrieved programs among
    them and whether a train program stands in where nothing parses."""

    decoding: DecodeSettings
    rerank: str = "run"
    pool: int = 0
    fallback: bool = True

    def __post_init__(self) -> None:
        if self.rerank not in RERANKS:
            raise PolicyError(f"rerank must be one of {', '.join(RERANKS)}, got {self.rerank!r}")
        if not _whole(self.pool):
            raise PolicyError(f"pool must be a whole number >= 0, got {self.pool!r}")
        if not isinstance(self.fallback, bool):
            raise PolicyError(f"fallback must be true or false, got {self.fallback!r}")

    def to_dict(self) -> dict:
        return {"decoding": asdict(self.decoding), "rerank": self.rerank, "pool": self.pool, "fallback": self.fallback}


@dataclass(frozen=True)
class Policy:
    default: Answer
    ranker: Answer  # rerank "ranker"; pool 0: the artifact has no learned ranker
    example_pool: int = 0  # 0: the example shown is the nearest by prompt similarity
    model_offset: float = 0.0
    runs: bool = True  # False: answers are snippets, chosen without running anything (SNIPPET_LABEL)

    @property
    def own_is_default(self) -> bool:
        """Whether the default answer is the model's own code: no train program among its candidates."""
        return not self.default.pool

    def resolve(
        self,
        rerank: str | None = None,
        *,
        own: bool = False,
        pool: int | None = None,
        fallback: bool | None = None,
        edit: bool = True,
        decoding: dict | None = None,
    ) -> Request:
        """The request that (this policy, the user's overrides) mean. `rerank` "ranker" asks for the
        retrieval baseline's answer, any other rerank for the default answer ordered that way; `own`:
        the model's own code (no train program among the candidates and no fallback, unless `pool` or
        `fallback` say otherwise); `decoding`: DecodeSettings fields on top of the answer's."""
        if own:  # the default answer's decoding; a default that ranks by the ranker orders by score
            rerank = rerank or (self.default.rerank if self.default.rerank != "ranker" else "score")
            pool = 0 if pool is None else pool
            fallback = False if fallback is None else fallback
        rerank = rerank or self.default.rerank
        if rerank not in RERANKS:
            raise E2PError(f"rerank must be one of {', '.join(RERANKS)}, got {rerank!r}")
        answer = self.ranker if rerank == "ranker" and not own else self.default
        pool = answer.pool if pool is None else pool
        if not _whole(pool):
            raise E2PError(f"pool must be a whole number >= 0, got {pool!r}")
        settings = replace(answer.decoding, **decoding) if decoding else answer.decoding
        return Request(settings, rerank, pool, answer.fallback if fallback is None else fallback, edit)

    # ------------------------------------------------------------------ files

    def to_dict(self) -> dict:
        return {
            "default": self.default.to_dict(),
            "ranker": {**self.ranker.to_dict(), "model_offset": self.model_offset},
            "example_pool": self.example_pool,
            **({} if self.runs else {"runs": False}),  # files of policies that run keep their keys
        }

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / POLICY_FILE
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def from_dict(cls, data: dict) -> "Policy":
        """A policy as policy.json stores it (every decoding field written out)."""
        try:
            return cls._of(data["default"], data["ranker"], data.get("example_pool", 0), {}, data.get("runs", True))
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise PolicyError(f"not an answer policy ({type(err).__name__}: {err})") from None

    @classmethod
    def _of(cls, default: dict, ranker: dict, example_pool, decoding_defaults: dict, runs=True) -> "Policy":
        """The policy of two answer sections (the ranker's holding `model_offset`), `example_pool` and `runs`."""
        ranker = dict(ranker)
        offset = float(ranker.pop("model_offset", 0.0))
        if not isinstance(runs, bool):
            raise PolicyError(f"runs must be true or false, got {runs!r}")
        return cls(
            default=_answer(default, decoding_defaults),
            ranker=_answer(ranker, decoding_defaults),
            example_pool=_pool(example_pool, "example_pool"),
            model_offset=offset,
            runs=runs,
        )

    @classmethod
    def load(cls, folder: str | Path, rebuild: str) -> "Policy":
        path = Path(folder) / POLICY_FILE
        if not path.is_file():
            raise PolicyError(
                f"{folder} has no {POLICY_FILE}: it was written before the answer policy had a file of "
                f"its own. Rebuild it with: {rebuild}"
            )
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as err:
            raise PolicyError(f"{path} cannot be used: {err}. Rebuild it with: {rebuild}") from None

    @classmethod
    def from_preset(cls, preset: dict | None, max_len: int, retrieval: bool = True) -> "Policy":
        """The policy a training preset's "policy" section means: each section it gives replaces the
        default recipe's (DEFAULT_PRESET) whole. Without retrieval no example is shown."""
        preset = preset or {}
        unknown = sorted(set(preset) - set(DEFAULT_PRESET))
        if unknown:
            raise PolicyError(f"unknown policy section(s) {unknown}; known: {sorted(DEFAULT_PRESET)}")
        sections = {**DEFAULT_PRESET, **preset}
        defaults = {"max_len": max_len}
        try:
            ranker = {**sections["ranker"], "rerank": "ranker"}
            pool = sections["example_pool"] if retrieval else 0
            return cls._of(sections["default"], ranker, pool, defaults, sections["runs"])
        except (TypeError, ValueError, AttributeError, DecodeSettingsError) as err:
            raise PolicyError(f"the preset's policy: {err}") from None


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _pool(value, name: str) -> int:
    if not _whole(value):
        raise PolicyError(f"{name} must be a whole number >= 0, got {value!r}")
    return value


def _answer(data: dict, decoding_defaults: dict) -> Answer:
    known = {"decoding", "rerank", "pool", "fallback"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise PolicyError(f"unknown answer option(s) {unknown}; known: {sorted(known)}")
    decoding = {**decoding_defaults, **data.get("decoding", {})}
    if decoding.get("strategy") == "beam" and "n_best" not in decoding:
        decoding["n_best"] = decoding.get("beam_size", DecodeSettings.beam_size)  # a beam returns them all
    return Answer(
        DecodeSettings.from_config(decoding),
        rerank=data.get("rerank", "run"),
        pool=data.get("pool", 0),
        fallback=data.get("fallback", True),
    )
