"""Arrow schemas of every table actforge writes, as lists of column names, with their sort orders.

The store keeps each trajectory's text once (`trajectories` + `steps`); samples and pairs point
at states by (trajectory, step index). Published rows are self-contained again: a pair row carries
its state's fields and a bounded window of history.
"""

from __future__ import annotations

import pyarrow as pa

from actforge.schemas.columns import field


def table_schema(*names: str) -> pa.Schema:
    return pa.schema([field(name) for name in names])


# The store.
TRAJECTORY_SCHEMA = table_schema(
    "trajectory_id",
    "source",
    "task",
    "environment",
    "split",
    "instruction",
    "final_observation",
    "success",
    "reward",
    "num_steps",
)
STEP_SCHEMA = table_schema(
    "state_id", "trajectory_id", "step_index", "observation", "action", "admissible", "chars_before"
)
QUARANTINE_SCHEMA = table_schema("quarantine_id", "source", "position", "reason", "detail", "raw")
SAMPLE_SCHEMA = table_schema(
    "sample_id",
    "state_id",
    "policy",
    "params_hash",
    "params",
    "seed",
    "sample_index",
    "raw_output",
    "action",
    "verdict",
    "reason",
)
# One action tried in one state's live engine (`--verify`): never paid twice, joined to pairs on publish.
VERIFICATION_SCHEMA = table_schema(
    "verification_id", "state_id", "action", "outcome", "score_delta", "outcome_observation"
)
# A stored pair names its state; the state's text (and expert action) is in `steps`.
STORED_PAIR_SCHEMA = table_schema("pair_id", "state_id", "sample_id", "alternative_action", "policy")

# Published (and what a policy or critic is shown): one row renders a prompt.
_STATE_COLUMNS = (
    "state_id",
    "trajectory_id",
    "source",
    "task",
    "environment",
    "split",
    "step_index",
    "instruction",
    "history",
    "history_omitted",
    "observation",
    "expert_action",
)
STATE_SCHEMA = table_schema(*_STATE_COLUMNS)
PAIR_SCHEMA = table_schema(
    "pair_id",
    "sample_id",
    *_STATE_COLUMNS,
    "alternative_action",
    "policy",
    "outcome",
    "score_delta",
    "outcome_observation",
    "expert_outcome",
    "expert_score_delta",
)
# The TRL-ready "act" config: a critic prompt per pair and order (expert in slot 1, then slot 2).
ACT_SCHEMA = table_schema(
    "pair_id",
    "state_id",
    "trajectory_id",
    "task",
    "environment",
    "split",
    "prompt",
    "expert_slot",
    "expert_action",
    "alternative_action",
)
PREFERENCE_SCHEMA = pa.schema(
    [
        *table_schema("pair_id", "state_id", "trajectory_id", "task", "environment", "split"),
        field("prompt", "agent_prompt"),
        *table_schema("chosen", "rejected"),
    ]
)
WORLD_MODEL_SCHEMA = pa.schema(
    [
        *table_schema("state_id", "trajectory_id", "task", "environment", "split", "side", "tried_action"),
        field("prompt", "world_prompt"),
        field("completion"),
    ]
)

# Table name -> (schema, content-hash key) of the store, in merge order (trajectories before steps).
STORE_TABLES: dict[str, tuple[pa.Schema, str]] = {
    "trajectories": (TRAJECTORY_SCHEMA, "trajectory_id"),
    "steps": (STEP_SCHEMA, "state_id"),
    "quarantine": (QUARANTINE_SCHEMA, "quarantine_id"),
    "samples": (SAMPLE_SCHEMA, "sample_id"),
    "pairs": (STORED_PAIR_SCHEMA, "pair_id"),
    "verifications": (VERIFICATION_SCHEMA, "verification_id"),
}

# The last version published to each folder: a lost or damaged manifest is rebuilt from it, so the
# version history never goes backwards. Keyed by `out`, written once per publish (not staged).
PUBLISH_SCHEMA = table_schema("out", "version", "manifest")
# What each build asked of a policy server; the run statistics show the sums (appended, not staged).
SERVER_USAGE_SCHEMA = table_schema("requests", "retries", "prompt_tokens", "completion_tokens")
# The last complete build into each folder: a build whose stamp matches it has nothing to do, and
# says so without starting Prefect (`pipelines.steps.unchanged`). One row per `out`, replaced.
BUILD_STAMP_SCHEMA = table_schema("out", "stamp", "result")
# The store's bookkeeping tables (not staged, never published).
BOOK_TABLES = {
    "publishes": PUBLISH_SCHEMA,
    "server_usage": SERVER_USAGE_SCHEMA,
    "build_stamps": BUILD_STAMP_SCHEMA,
}

# Samples stored under an older name of a policy (a local folder was once keyed by its config alone),
# adopted once by the policy's current name: never sampled twice, never claimed by a second policy.
POLICY_ALIAS_SCHEMA = table_schema("policy", "alias")

# Row orders of published tables: by trajectory, then decision, then content id.
STATE_ORDER: tuple[str, ...] = ("trajectory_id", "step_index")
PAIR_ORDER: tuple[str, ...] = (*STATE_ORDER, "pair_id")


def conform(table: pa.Table, schema: pa.Schema, what: str) -> pa.Table:
    """`table` with exactly `schema`'s columns and types, or a ValueError naming the difference."""
    missing = [n for n in schema.names if n not in table.column_names]
    extra = [n for n in table.column_names if n not in schema.names]
    if missing or extra:
        raise ValueError(f"{what}: columns differ from its schema (missing {missing}, unexpected {extra})")
    table = table.select(schema.names)
    wrong = [
        f"{f.name} is {t}, not {f.type}"
        for f, t in zip(schema, table.schema.types, strict=True)
        if t != f.type and t != pa.null()  # an all-null column takes any type
    ]
    if wrong:
        raise ValueError(f"{what}: types differ from its schema: {'; '.join(wrong)}")
    return table.cast(schema)
