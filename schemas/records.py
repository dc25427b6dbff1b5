"""Single-row records, derived from the Arrow schemas: a source's trajectory, a state, a sample.

Python objects stay where one row is handled at a time (parsing a record, rendering a prompt,
judging a sample); tables carry everything else. Records are frozen so no step mutates what an
earlier one produced; ids are content hashes (`schemas.ids`), never random.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pyarrow as pa

from actforge.schemas.columns import HISTORY_STEP, STEP
from actforge.schemas.tables import QUARANTINE_SCHEMA, SAMPLE_SCHEMA, STATE_SCHEMA, TRAJECTORY_SCHEMA

_SCALARS = {pa.string(): str, pa.int64(): int, pa.bool_(): bool, pa.float64(): float}


def _python_type(dtype: pa.DataType) -> Any:
    if dtype in _SCALARS:
        return _SCALARS[dtype]
    if pa.types.is_list(dtype):
        inner = (
            "Step" if dtype.value_type in (STEP, HISTORY_STEP) else _python_type(dtype.value_type).__name__
        )
        return f"tuple[{inner}, ...]"
    raise TypeError(f"no Python type for {dtype}")


def _record(name: str, doc: str, fields: list[pa.Field], defaults: dict[str, Any]) -> type:
    """A frozen dataclass with one attribute per field; defaulted ones (from `defaults`) come last."""
    required = [(f.name, _python_type(f.type)) for f in fields if f.name not in defaults]
    optional = [
        (f.name, _python_type(f.type), dataclasses.field(default=defaults[f.name]))
        for f in fields
        if f.name in defaults
    ]
    cls = dataclasses.make_dataclass(name, [*required, *optional], frozen=True)
    cls.__module__ = __name__  # so records pickle (Prefect persists task results)
    cls.__doc__ = doc
    return cls


def _fields(schema: pa.Schema, drop: tuple[str, ...] = ()) -> list[pa.Field]:
    return [f for f in schema if f.name not in drop]


Step = _record(
    "Step",
    """One expert step: the observation *before* `action`, and the actions the engine accepted.""",
    list(STEP),
    {"admissible": None},
)
Trajectory = _record(
    "Trajectory",
    """One expert episode, normalised from any source format (its steps become the store's rows).""",
    [*_fields(TRAJECTORY_SCHEMA, drop=("num_steps",)), pa.field("steps", pa.list_(STEP))],
    {"final_observation": None, "success": None, "reward": None},
)
State = _record(
    "State",
    """A decision point as a policy or critic sees it: a published state row, plus admissible actions.""",
    [*STATE_SCHEMA, pa.field("admissible", pa.list_(pa.string()))],
    {"history_omitted": 0, "admissible": None},
)
Sample = _record(
    "Sample",
    """One policy output for a state, kept whatever its verdict so nothing is sampled twice.""",
    list(SAMPLE_SCHEMA),
    {},
)
Quarantined = _record(
    "Quarantined",
    """A record that could not become a trajectory, kept whole with where it came from and why.""",
    list(QUARANTINE_SCHEMA),
    {},
)
