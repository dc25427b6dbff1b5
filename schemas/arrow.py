"""Arrow schemas for every table actforge writes (DuckDB store and Parquet shards alike)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import pyarrow as pa

STEP_TYPE = pa.struct(
    [
        ("observation", pa.string()),
        ("action", pa.string()),
        ("admissible", pa.list_(pa.string())),
    ]
)
# Published history omits admissible lists: they can hold thousands of strings per step.
HISTORY_STEP_TYPE = pa.struct([("observation", pa.string()), ("action", pa.string())])

TRAJECTORY_SCHEMA = pa.schema(
    [
        ("trajectory_id", pa.string()),
        ("source", pa.string()),
        ("task", pa.string()),
        ("environment", pa.string()),
        ("split", pa.string()),
        ("instruction", pa.string()),
        ("steps", pa.list_(STEP_TYPE)),
        ("final_observation", pa.string()),
        ("success", pa.bool_()),
        ("reward", pa.float64()),
    ]
)

QUARANTINE_SCHEMA = pa.schema(
    [
        ("quarantine_id", pa.string()),
        ("source", pa.string()),
        ("position", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("raw", pa.string()),
    ]
)

STATE_SCHEMA = pa.schema(
    [
        ("state_id", pa.string()),
        ("trajectory_id", pa.string()),
        ("source", pa.string()),
        ("task", pa.string()),
        ("environment", pa.string()),
        ("split", pa.string()),
        ("step_index", pa.int64()),
        ("instruction", pa.string()),
        ("history", pa.list_(HISTORY_STEP_TYPE)),
        ("observation", pa.string()),
        ("expert_action", pa.string()),
        ("admissible", pa.list_(pa.string())),
    ]
)

SAMPLE_SCHEMA = pa.schema(
    [
        ("sample_id", pa.string()),
        ("state_id", pa.string()),
        ("policy", pa.string()),
        ("params_hash", pa.string()),
        ("params", pa.string()),
        ("seed", pa.int64()),
        ("sample_index", pa.int64()),
        ("raw_output", pa.string()),
        ("action", pa.string()),
        ("verdict", pa.string()),
        ("reason", pa.string()),
    ]
)

PAIR_SCHEMA = pa.schema(
    [
        ("pair_id", pa.string()),
        ("state_id", pa.string()),
        ("sample_id", pa.string()),
        ("trajectory_id", pa.string()),
        ("source", pa.string()),
        ("task", pa.string()),
        ("environment", pa.string()),
        ("split", pa.string()),
        ("step_index", pa.int64()),
        ("instruction", pa.string()),
        ("history", pa.list_(HISTORY_STEP_TYPE)),
        ("observation", pa.string()),
        ("expert_action", pa.string()),
        ("alternative_action", pa.string()),
        ("policy", pa.string()),
    ]
)

# The published "states" config: one row per expert state, everything the agent prompt needs.
PUBLISHED_STATE_SCHEMA = pa.schema([f for f in STATE_SCHEMA if f.name != "admissible"])

MESSAGE_TYPE = pa.struct([("role", pa.string()), ("content", pa.string())])

# The TRL-ready "act" config: a conversational critic prompt per pair and order, and where the
# expert sits (each pair appears twice, expert in slot 1 and in slot 2).
ACT_SCHEMA = pa.schema(
    [
        ("pair_id", pa.string()),
        ("state_id", pa.string()),
        ("trajectory_id", pa.string()),
        ("task", pa.string()),
        ("environment", pa.string()),
        ("split", pa.string()),
        ("prompt", pa.list_(MESSAGE_TYPE)),
        ("expert_slot", pa.int64()),
        ("expert_action", pa.string()),
        ("alternative_action", pa.string()),
    ]
)


def _row(record: Any, schema: pa.Schema) -> dict[str, Any]:
    row = dataclasses.asdict(record)
    for name in ("steps", "history"):
        if name in row and name in schema.names:
            keep = {f.name for f in schema.field(name).type.value_type}
            row[name] = [{k: v for k, v in step.items() if k in keep} for step in row[name]]
    return {name: row[name] for name in schema.names}


def to_arrow(records: Iterable[Any], schema: pa.Schema) -> pa.Table:
    """Turn records (dataclasses of `schemas.records`) into an Arrow table of `schema`."""
    return pa.Table.from_pylist([_row(r, schema) for r in records], schema=schema)


def trajectories_from_arrow(table: pa.Table) -> list[Any]:
    """Trajectory records from a TRAJECTORY_SCHEMA table (the store's rows)."""
    from schemas.records import Step, Trajectory

    records = []
    for row in table.to_pylist():
        steps = tuple(
            Step(s["observation"], s["action"], None if s["admissible"] is None else tuple(s["admissible"]))
            for s in row.pop("steps")
        )
        records.append(Trajectory(steps=steps, **row))
    return records


def state_from_row(row: dict[str, Any]) -> Any:
    """A State record from one published pair row (or a STATE_SCHEMA row)."""
    from schemas.records import State, Step

    history = tuple(Step(h["observation"], h["action"]) for h in row["history"])
    return State(
        state_id=row["state_id"],
        trajectory_id=row["trajectory_id"],
        source=row["source"],
        task=row["task"],
        environment=row["environment"],
        split=row["split"],
        step_index=row["step_index"],
        instruction=row["instruction"],
        history=history,
        observation=row["observation"],
        expert_action=row["expert_action"],
    )
