"""Data contracts of actforge: the one place that names columns (see `schemas.columns`).

Every output (store, Parquet shards, manifest, card) carries SCHEMA_VERSION so that a reader can
tell which contract a file follows.
"""

from actforge.schemas.columns import doc
from actforge.schemas.convert import records_table, states_from_table, trajectory_tables
from actforge.schemas.records import Quarantined, Sample, State, Step, Trajectory
from actforge.schemas.tables import (
    ACT_SCHEMA,
    BOOK_TABLES,
    BUILD_STAMP_SCHEMA,
    PAIR_ORDER,
    PAIR_SCHEMA,
    POLICY_ALIAS_SCHEMA,
    PREFERENCE_SCHEMA,
    PUBLISH_SCHEMA,
    QUARANTINE_SCHEMA,
    SAMPLE_SCHEMA,
    SERVER_USAGE_SCHEMA,
    STATE_ORDER,
    STATE_SCHEMA,
    STEP_SCHEMA,
    STORE_TABLES,
    STORED_PAIR_SCHEMA,
    TRAJECTORY_SCHEMA,
    VERIFICATION_SCHEMA,
    WORLD_MODEL_SCHEMA,
    conform,
)
from actforge.schemas.vocab import SPLITS

# 2.0: histories stored once; published rows carry a bounded window and `history_omitted`.
# 2.1: pairs carry what the live engine says their alternative and expert action do (`--verify`).
SCHEMA_VERSION = "2.1"

__all__ = [
    "ACT_SCHEMA",
    "PREFERENCE_SCHEMA",
    "WORLD_MODEL_SCHEMA",
    "PAIR_ORDER",
    "PAIR_SCHEMA",
    "POLICY_ALIAS_SCHEMA",
    "BOOK_TABLES",
    "BUILD_STAMP_SCHEMA",
    "PUBLISH_SCHEMA",
    "QUARANTINE_SCHEMA",
    "SAMPLE_SCHEMA",
    "SERVER_USAGE_SCHEMA",
    "SCHEMA_VERSION",
    "SPLITS",
    "STATE_ORDER",
    "STATE_SCHEMA",
    "STEP_SCHEMA",
    "STORED_PAIR_SCHEMA",
    "STORE_TABLES",
    "TRAJECTORY_SCHEMA",
    "VERIFICATION_SCHEMA",
    "Quarantined",
    "Sample",
    "State",
    "Step",
    "Trajectory",
    "conform",
    "doc",
    "records_table",
    "states_from_table",
    "trajectory_tables",
]
