"""Verified alternatives: what a sampled action really does in the live engine, beside the expert's.

A pair says only that its alternative differs from the expert's action. For a live source the
engine can say more. For each action tried, it is put back into the pair's state: reset to the
episode, then the expert's earlier actions replayed (both engines' steps take milliseconds). Then
the action is taken. The outcome is one of:

  invalid     the engine rejects it or does not understand it
  fails_task  the task is lost, or the score falls
  progresses  the score rises
  no_effect   valid, but nothing changed (the room and the inventory read the same)
  neutral     valid, changed something, no score change

The expert's own action in that state is verified the same way, as the reference.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa

from actforge.pipelines.sources.base import SCIENCEWORLD, TWX
from actforge.schemas import VERIFICATION_SCHEMA
from actforge.schemas.ids import content_hash


@dataclass(frozen=True)
class Effect:
    """What one action did, as the engine reports it (scores on the 0-1 scale)."""

    valid: bool
    failed: bool
    changed: bool
    score_before: float
    score_after: float
    observation: str

    @property
    def outcome(self) -> str:
        if not self.valid:
            return "invalid"
        if self.failed or self.score_after < self.score_before:
            return "fails_task"
        if self.score_after > self.score_before:
            return "progresses"
        return "neutral" if self.changed else "no_effect"


class Engine(Protocol):
    def effect(self, trajectory_id: str, prefix: Sequence[str], action: str) -> Effect: ...


def verification_id(state_id: str, action: str) -> str:
    return content_hash("verification", [state_id, action])


@contextmanager
def engine_for(spec: str) -> Iterator[Engine]:
    """The live engine of a source spec (one JVM), closed afterwards."""
    engine: ScienceWorldEngine | TwxEngine
    if spec.startswith(SCIENCEWORLD):
        engine = ScienceWorldEngine(spec)
    elif spec.startswith(TWX):
        engine = TwxEngine(spec)
    else:
        raise ValueError(f"only live sources can be verified, not {spec!r}")
    try:
        yield engine
    finally:
        engine.close()


def verify(spec: str, items: pa.Table, prefixes: dict[str, list[str]]) -> pa.Table:
    """VERIFICATION_SCHEMA rows for `items` (state_id, trajectory_id, step_index, action) of one
    source; `prefixes` holds each trajectory's expert actions."""
    rows = []
    with engine_for(spec) as engine:
        for item in items.to_pylist():
            prefix = prefixes[item["trajectory_id"]][: item["step_index"]]
            effect = engine.effect(item["trajectory_id"], prefix, item["action"])
            rows.append(
                {
                    "verification_id": verification_id(item["state_id"], item["action"]),
                    "state_id": item["state_id"],
                    "action": item["action"],
                    "outcome": effect.outcome,
                    "score_delta": round(effect.score_after - effect.score_before, 6),
                    "outcome_observation": effect.observation,
                }
            )
    return pa.Table.from_pylist(rows, schema=VERIFICATION_SCHEMA)


def _scene(*texts: str) -> tuple[str, ...]:
    """A room and inventory as an order-free list of phrases (ScienceWorld varies the order)."""
    parts = (part.strip() for text in texts for part in re.split(r"[\n,.;]", text))
    return tuple(sorted(part for part in parts if part))


class ScienceWorldEngine:
    """ScienceWorld through its raw server step (as collection replays gold paths)."""

    REJECTIONS = ("No known action matches that input", "Ambiguous request")

    def __init__(self, spec: str) -> None:
        from actforge.pipelines.sources.scienceworld import episodes, start

        self.env = start()
        self.episodes = episodes(self.env, spec)
        self.loaded: tuple[str, int] | None = None

    def effect(self, trajectory_id: str, prefix: Sequence[str], action: str) -> Effect:
        from actforge.pipelines.sources.scienceworld import SIMPLIFICATION

        episode = self.episodes[trajectory_id]
        if self.loaded != episode:
            self.env.load(episode[0], episode[1], SIMPLIFICATION)
            self.loaded = episode
        server = self.env.server
        server.reset()
        server.step("look around")
        for step in prefix:
            server.step(step)
        before, scene = server.getScore(), _scene(self.env.look(), self.env.inventory())
        observation = server.step(action)
        after = server.getScore()
        return Effect(
            valid=not observation.startswith(self.REJECTIONS),
            failed=after < 0,
            changed=_scene(self.env.look(), self.env.inventory()) != scene,
            score_before=before,
            score_after=after,
            observation=observation,
        )

    def close(self) -> None:
        self.env.close()


class TwxEngine:
    """TextWorld Express; its list of valid actions decides what is invalid."""

    def __init__(self, spec: str) -> None:
        from actforge.pipelines.sources.twx import episodes, start

        self.env = start()
        self.episodes = episodes(self.env, spec)

    def effect(self, trajectory_id: str, prefix: Sequence[str], action: str) -> Effect:
        game, seed, fold = self.episodes[trajectory_id]
        self.env.load(game.name, game.engine_parameters)
        _observation, info = self.env.reset(seed=seed, gameFold=fold)
        for step in prefix:
            _observation, _reward, _done, info = self.env.step(step)
        before, scene, valid = info["score"], _scene(info["look"], info["inventory"]), info["validActions"]
        observation, _reward, _done, after = self.env.step(action)
        return Effect(
            valid=action in valid,
            failed=bool(after["taskfailure"]),
            changed=_scene(after["look"], after["inventory"]) != scene,
            score_before=float(before),
            score_after=float(after["score"]),
            observation=observation,
        )

    def close(self) -> None:
        self.env.close()
