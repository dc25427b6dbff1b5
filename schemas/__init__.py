"""Data contracts of actforge: the one place that names columns.

Every output (store rows, Parquet shards, manifest, card) carries SCHEMA_VERSION so that a reader
can tell which contract a file follows.
"""

from schemas.arrow import (
    ACT_SCHEMA,
    PAIR_SCHEMA,
    PUBLISHED_STATE_SCHEMA,
    QUARANTINE_SCHEMA,
    SAMPLE_SCHEMA,
    STATE_SCHEMA,
    TRAJECTORY_SCHEMA,
    state_from_row,
    to_arrow,
    trajectories_from_arrow,
)
from schemas.records import (
    SPLITS,
    Pair,
    Quarantined,
    Sample,
    State,
    Step,
    Trajectory,
)

SCHEMA_VERSION = "1.1"  # 1.1: "act" holds both orders of each pair; a "states" config

__all__ = [
    "ACT_SCHEMA",
    "PAIR_SCHEMA",
    "PUBLISHED_STATE_SCHEMA",
    "QUARANTINE_SCHEMA",
    "SAMPLE_SCHEMA",
    "SCHEMA_VERSION",
    "SPLITS",
    "STATE_SCHEMA",
    "TRAJECTORY_SCHEMA",
    "Pair",
    "Quarantined",
    "Sample",
    "State",
    "Step",
    "Trajectory",
    "state_from_row",
    "to_arrow",
    "trajectories_from_arrow",
]
