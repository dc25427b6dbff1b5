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

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa

from actforge.pipelines.sources.live import LiveEngine
from actforge.pipelines.sources.registry import engine_for
from actforge.schemas import VERIFICATION_SCHEMA
from actforge.schemas.ids import content_hash
from actforge.schemas.vocab import FAILS_TASK, INVALID, NEUTRAL, NO_EFFECT, PROGRESSES


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
            return INVALID
        if self.failed or self.score_after < self.score_before:
            return FAILS_TASK
        if self.score_after > self.score_before:
            return PROGRESSES
        return NEUTRAL if self.changed else NO_EFFECT


def verification_id(state_id: str, action: str) -> str:
    return content_hash("verification", [state_id, action])


def effect(engine: LiveEngine, trajectory_id: str, prefix: Sequence[str], action: str) -> Effect:
    """Put the engine into the state after `prefix` of the episode, then take `action`."""
    engine.reset(trajectory_id)
    for step in prefix:
        engine.step(step)
    before, scene = engine.progress(), engine.scene()
    answer = engine.step(action)
    after = engine.progress()
    return Effect(
        valid=engine.accepted(action, answer),
        failed=after.lost,
        changed=engine.scene() != scene,
        score_before=before.score,
        score_after=after.score,
        observation=answer,
    )


def verify(spec: str, items: pa.Table, prefixes: dict[str, list[str]]) -> pa.Table:
    """VERIFICATION_SCHEMA rows for `items` (state_id, trajectory_id, step_index, action) of one
    source; `prefixes` holds each trajectory's expert actions."""
    rows = []
    with engine_for(spec) as engine:
        for item in items.to_pylist():
            prefix = prefixes[item["trajectory_id"]][: item["step_index"]]
            result = effect(engine, item["trajectory_id"], prefix, item["action"])
            rows.append(
                {
                    "verification_id": verification_id(item["state_id"], item["action"]),
                    "state_id": item["state_id"],
                    "action": item["action"],
                    "outcome": result.outcome,
                    "score_delta": round(result.score_after - result.score_before, 6),
                    "outcome_observation": result.observation,
                }
            )
    return pa.Table.from_pylist(rows, schema=VERIFICATION_SCHEMA)
