"""The sampling contract every policy backend shares: the parameters, and the `Backend` protocol that
sampling calls. A leaf, so backends never import each other."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Protocol

from actforge.pipelines.text.prompts import AGENT_PROMPT_TOKENS, PROMPT_VERSION
from actforge.schemas import State
from actforge.schemas.ids import params_hash


@dataclass(frozen=True)
class SamplingParams:
    """Everything that changes what a policy outputs; its hash keys the "never sample twice" rule.

    The user-facing values and their defaults come from `pipelines.config.BuildConfig`.
    """

    k: int
    temperature: float
    top_p: float
    max_new_tokens: int
    seed: int
    max_prompt_tokens: int = AGENT_PROMPT_TOKENS
    prompt: str = PROMPT_VERSION

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError("k must be at least 1")
        if self.temperature <= 0:
            raise ValueError("temperature must be positive (sampling, not greedy)")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    @property
    def digest(self) -> str:
        return params_hash(self.as_dict())


@dataclass
class Usage:
    """What a backend asked of a policy server: requests answered, the retries they took, and the
    tokens the answers' `usage` counted. A local model asks none of it."""

    requests: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def add(self, counts: dict[str, int]) -> None:
        """Count what another backend (or a batch on a worker) asked: an `as_dict` or `since`."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + counts[f.name])

    def since(self, before: dict[str, int]) -> dict[str, int]:
        """What was added since `before` (an earlier `as_dict`)."""
        return {f.name: getattr(self, f.name) - before[f.name] for f in fields(self)}


class Backend(Protocol):
    """A policy that proposes alternatives: local weights (`models.Policy`), a server (`ServerPolicy`)."""

    name: str  # part of every sample's id and seed
    usage: Usage  # what it has asked of a server so far (zero for local weights)

    def complete(
        self, states: Sequence[State], params: SamplingParams, seeds: Sequence[int]
    ) -> list[list[str] | str]:
        """K completions per state (the text after `Action:`), or one line saying why a state got none."""
        ...
