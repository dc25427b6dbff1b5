"""Records to Arrow tables and back, for the few places that hold one row at a time."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from actforge.schemas.ids import state_id
from actforge.schemas.records import State, Step, Trajectory
from actforge.schemas.tables import STEP_SCHEMA, TRAJECTORY_SCHEMA, conform


def records_table(records: Sequence[Any], schema: pa.Schema) -> pa.Table:
    """Flat records (samples, quarantined) as one table of `schema`."""
    columns = {name: [getattr(r, name) for r in records] for name in schema.names}
    return pa.table(columns, schema=schema)


def trajectory_tables(trajectories: Sequence[Trajectory]) -> tuple[pa.Table, pa.Table]:
    """A batch of trajectories as (TRAJECTORY_SCHEMA, STEP_SCHEMA) tables: each step stored once.

    `chars_before` (the text of all earlier steps) lets a history window be cut by a character
    budget with one range query, whatever the trajectory's length.
    """
    meta = {n: [getattr(t, n) for t in trajectories] for n in TRAJECTORY_SCHEMA.names if n != "num_steps"}
    meta["num_steps"] = [len(t.steps) for t in trajectories]
    steps = [s for t in trajectories for s in t.steps]
    trajectory_ids = [t.trajectory_id for t in trajectories for _ in t.steps]
    indexes = [i for t in trajectories for i in range(len(t.steps))]
    observation = pa.array([s.observation for s in steps], pa.string())
    action = pa.array([s.action for s in steps], pa.string())
    lengths = np.asarray(pc.add(pc.utf8_length(observation), pc.utf8_length(action)))
    total = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
    offsets = np.cumsum([0, *meta["num_steps"]], dtype=np.int64)[:-1]  # first step of each trajectory
    starts = np.repeat(total[offsets], meta["num_steps"])
    step_table = pa.table(
        {
            "state_id": [state_id(t, i) for t, i in zip(trajectory_ids, indexes, strict=True)],
            "trajectory_id": trajectory_ids,
            "step_index": indexes,
            "observation": observation,
            "action": action,
            "admissible": [None if s.admissible is None else list(s.admissible) for s in steps],
            "chars_before": total[:-1] - starts if steps else np.zeros(0, np.int64),
        }
    )
    return (
        conform(pa.table(meta), TRAJECTORY_SCHEMA, "trajectories"),
        conform(step_table, STEP_SCHEMA, "steps"),
    )


def states_from_table(table: pa.Table) -> list[State]:
    """State records from rows of STATE_SCHEMA (or any table holding its columns, e.g. pairs)."""
    names = [f.name for f in dataclasses.fields(State)]
    rows = table.select([n for n in names if n in table.column_names]).to_pylist()
    for row in rows:
        row["history"] = tuple(Step(h["observation"], h["action"]) for h in row["history"])
        if row.get("admissible") is not None:
            row["admissible"] = tuple(row["admissible"])
    return [State(**row) for row in rows]
