"""Verdicts on sampled outputs: which become alternatives and why the others do not.

Every output gets a verdict and a reason; nothing is dropped without one.
"""

from __future__ import annotations

import difflib
import unicodedata
from dataclasses import asdict, dataclass

from actforge.pipelines.text.actions import normalise, parse_action
from actforge.schemas import State
from actforge.schemas.vocab import ACCEPTED, OK, REJECTED, SAMPLE_REASONS

ADMISSIBLE_MODES = ("off", "map", "require")


@dataclass(frozen=True)
class FilterConfig:
    """Filter settings; recorded in the dataset card and part of nothing's identity but verdicts."""

    max_action_chars: int = 120
    admissible: str = "off"
    map_cutoff: float = 0.85

    def __post_init__(self) -> None:
        if self.admissible not in ADMISSIBLE_MODES:
            raise ValueError(f"admissible must be one of {ADMISSIBLE_MODES}, not {self.admissible!r}")

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Verdict:
    """What became of one output: the action read from it, accepted or rejected, and why
    (a key of `schemas.vocab.SAMPLE_REASONS`, which the card documents)."""

    action: str
    verdict: str
    reason: str

    def __post_init__(self) -> None:
        if self.reason not in SAMPLE_REASONS:
            raise ValueError(f"unknown sample reason {self.reason!r}; add it to schemas.vocab.SAMPLE_REASONS")


def _to_admissible(action: str, state: State, config: FilterConfig) -> str | None:
    """The admissible action an output means, or None when it means none of them."""
    assert state.admissible is not None
    by_norm = {normalise(a, state.environment): a for a in state.admissible}
    norm = normalise(action, state.environment)
    if norm in by_norm:
        return by_norm[norm]
    if config.admissible == "map":
        close = difflib.get_close_matches(norm, list(by_norm), n=1, cutoff=config.map_cutoff)
        if close:
            return by_norm[close[0]]
    return None


def judge(outputs: list[str], state: State, config: FilterConfig) -> list[Verdict]:
    """One verdict per raw output, in order; duplicates are judged against earlier accepted ones."""
    expert = normalise(state.expert_action, state.environment)
    seen: set[str] = set()
    verdicts = []
    for raw in outputs:
        verdicts.append(_judge_one(raw, state, config, expert, seen))
    return verdicts


def _garbled(action: str) -> bool:
    """Control characters or undecodable bytes: not something an agent could type."""
    return any(ch == "\ufffd" or unicodedata.category(ch) == "Cc" for ch in action)


def _judge_one(raw: str, state: State, config: FilterConfig, expert: str, seen: set[str]) -> Verdict:
    if not raw.strip():
        return Verdict("", REJECTED, "empty")
    action = parse_action(raw)
    if action is None:
        return Verdict("", REJECTED, "unparseable")
    if _garbled(action):
        return Verdict(action, REJECTED, "garbled")
    if len(action) > config.max_action_chars:
        return Verdict(action, REJECTED, "overlong")
    if config.admissible != "off" and state.admissible:
        mapped = _to_admissible(action, state, config)
        if mapped is None and config.admissible == "require":
            return Verdict(action, REJECTED, "not_admissible")
        action = mapped or action
    norm = normalise(action, state.environment)
    if not norm:
        return Verdict(action, REJECTED, "unparseable")
    if norm == expert:
        return Verdict(action, REJECTED, "same_as_expert")
    if norm in seen:
        return Verdict(action, REJECTED, "duplicate")
    seen.add(norm)
    return Verdict(action, ACCEPTED, OK)
