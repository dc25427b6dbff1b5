"""One interface over the live engines (ScienceWorld, TextWorld Express): put the engine into an
episode, act, read its score. `--verify` and `--play` go through it (collection replays each engine's
own gold paths), so a new engine is one subclass beside `scienceworld.py`, its prefix in
`sources.base.LIVE` and its branch in `sources.registry.engine_for`.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass

from actforge.schemas import Quarantined

PLAY_STEPS = 30  # actions a played episode may take unless told otherwise (`--play-steps`)


@dataclass(frozen=True)
class Episode:
    """One (task, variation) of a spec: its trajectory id, and its dataset split (None when the
    engine's split lists do not hold the variation)."""

    trajectory_id: str
    task: str
    variation: int
    split: str | None


@dataclass(frozen=True)
class Progress:
    """The engine's score on the 0-1 scale, and whether the episode is won or lost."""

    score: float
    won: bool
    lost: bool


class LiveEngine(ABC):
    """One running engine (one JVM) for the episodes of one spec."""

    environment: str

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.unloadable: list[Quarantined] = []  # tasks or games the engine refused, with its words

    @abstractmethod
    def episodes(self) -> list[Episode]:
        """Every episode the spec names, in the spec's order (a task the engine could not load is
        left out and named in `unloadable`)."""

    @abstractmethod
    def reset(self, trajectory_id: str) -> tuple[str, str]:
        """Start the episode afresh: (instruction, first observation)."""

    @abstractmethod
    def step(self, action: str) -> str:
        """Take one action; the engine's answer."""

    @abstractmethod
    def progress(self) -> Progress: ...

    @abstractmethod
    def scene(self) -> tuple[str, ...]:
        """The room and inventory as an order-free list of phrases (what "no effect" compares)."""

    @abstractmethod
    def accepted(self, action: str, answer: str) -> bool:
        """Whether the engine took the last action (`answer` is what it said) as a valid one."""

    def unchanged(self, action: str, answer: str) -> bool:
        """Whether the last action (`answer` is what the engine said) left the episode exactly as it
        was, so the next action starts from the same state. Only an engine that refuses some inputs
        before touching its world can say so; by default no, and `--verify` resets and replays."""
        return False

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> LiveEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def scene_of(*texts: str) -> tuple[str, ...]:
    """A room and inventory as an order-free list of phrases (ScienceWorld varies the order)."""
    parts = (part.strip() for text in texts for part in re.split(r"[\n,.;]", text))
    return tuple(sorted(part for part in parts if part))
