"""The store's read queries as SQL text over Arrow-registered tables: the published rows with their
history windows, and what a dataset holds. Values reach SQL only as registered Arrow tables or
parameters; the SQL text holds names and integers only."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from actforge.pipelines.store.ddl import duckdb_type
from actforge.schemas import (
    PAIR_ORDER,
    PAIR_SCHEMA,
    SERVER_USAGE_SCHEMA,
    STATE_ORDER,
    STATE_SCHEMA,
    STORE_TABLES,
)
from actforge.schemas.vocab import ALTERNATIVE, EXPERT, NOT_WORSE

# States of the `wanted` trajectories, whole trajectories in a run each (their prompts share
# prefixes), trajectories in an order that spreads every split evenly: a trajectory's place is its
# rank by id within its split over the split's size. A `--max-states` build takes the first N.
SPREAD_STATES = """
WITH placed AS (
    SELECT trajectory_id,
           (row_number() OVER (PARTITION BY split ORDER BY trajectory_id) - 0.5)
               / count(*) OVER (PARTITION BY split) AS place
    FROM trajectories JOIN wanted USING (trajectory_id)
)
SELECT state_id FROM steps JOIN placed USING (trajectory_id) ORDER BY place, trajectory_id, step_index
"""


@contextmanager
def cursor(
    con: duckdb.DuckDBPyConnection, tables: dict[str, pa.Table]
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A cursor that sees `tables` (Arrow data, never SQL text) under their names."""
    cur = con.cursor()
    try:
        for name, table in tables.items():
            cur.register(name, table)
        yield cur
    finally:
        cur.close()


def wanted(key: str, ids: Iterable[str]) -> pa.Table:
    """A one-column table of distinct ids, sorted: what a query joins against."""
    return pa.table({key: pa.array(sorted(set(ids)), pa.string())})


def published_sql(kind: str, history_chars: int) -> str:
    """Published rows of the wanted trajectories (or states), with their history windows.

    A state's window is the latest earlier steps whose text fits `history_chars`: the steps it
    omits are those whose `chars_before` lies more than the budget below its own, counted by one
    window function over `chars_before`; the kept steps are then one range join.
    """
    budget = int(history_chars)
    if budget < 0:
        raise ValueError(f"history budget must be >= 0 characters, got {history_chars}")
    meta = "t.source, t.task, t.environment, t.split, t.instruction"
    rows = (
        "SELECT p.*, st.trajectory_id, st.step_index, st.observation, st.action AS expert_action, "
        "va.outcome, va.score_delta, va.outcome_observation, ve.outcome AS expert_outcome, "
        f"ve.score_delta AS expert_score_delta, {meta} "
        "FROM pairs p JOIN steps st USING (state_id) JOIN wanted_split USING (trajectory_id) "
        "JOIN trajectories t USING (trajectory_id) "
        "LEFT JOIN verifications va ON va.state_id = p.state_id AND va.action = p.alternative_action "
        "LEFT JOIN verifications ve ON ve.state_id = p.state_id AND ve.action = st.action "
        "WHERE va.outcome IS NULL OR va.outcome NOT IN (SELECT outcome FROM dropped)"
        if kind == "pairs"
        else "SELECT st.state_id, st.trajectory_id, st.step_index, st.observation, "
        f"st.action AS expert_action, {meta} FROM steps st JOIN wanted_split USING (trajectory_id) "
        "JOIN wanted_states USING (state_id) JOIN trajectories t USING (trajectory_id)"
    )
    schema, order = (PAIR_SCHEMA, PAIR_ORDER) if kind == "pairs" else (STATE_SCHEMA, STATE_ORDER)
    empty = f"[]::{duckdb_type(schema.field('history').type)}"
    special = {
        "history": f"coalesce(w.history, {empty}) AS history",
        "history_omitted": "n.history_omitted",
    }
    columns = ", ".join(special.get(name, f"r.{name}") for name in schema.names)
    return f"""
        WITH rows AS ({rows}),
        omitted AS (
            SELECT state_id, count(*) OVER (
                PARTITION BY trajectory_id ORDER BY chars_before
                RANGE BETWEEN UNBOUNDED PRECEDING AND {budget + 1} PRECEDING
            ) AS history_omitted
            FROM steps JOIN wanted_split USING (trajectory_id)
        ),
        needed AS (
            SELECT DISTINCT r.state_id, r.trajectory_id, r.step_index, o.history_omitted
            FROM rows r JOIN omitted o USING (state_id)
        ),
        windows AS (
            SELECT n.state_id, list(
                {{'observation': s.observation, 'action': s.action}} ORDER BY s.step_index
            ) AS history
            FROM needed n JOIN steps s ON s.trajectory_id = n.trajectory_id
                AND s.step_index >= n.history_omitted AND s.step_index < n.step_index
            GROUP BY n.state_id
        )
        SELECT {columns}
        FROM rows r JOIN needed n USING (state_id) LEFT JOIN windows w USING (state_id)
        ORDER BY {", ".join(f"r.{c}" for c in order)}
    """


def cast_batches(
    reader: pa.RecordBatchReader, schema: pa.Schema, cur: duckdb.DuckDBPyConnection
) -> Iterator[pa.RecordBatch]:
    """DuckDB's batches cast to the published schema; the cursor closes when the stream ends."""
    try:
        for batch in reader:
            yield pa.RecordBatch.from_arrays(
                [batch.column(i).cast(f.type) for i, f in enumerate(schema)], schema=schema
            )
    finally:
        cur.close()


def dataset_counts(
    con: duckdb.DuckDBPyConnection,
    trajectory_ids: Iterable[str],
    sources: Iterable[str],
    drop: Iterable[str] = (),
) -> dict[str, Any]:
    """What a dataset holds: trajectories, states, samples by verdict, pairs by split (less the
    ones `drop` leaves out, counted as `not_worse`), verified outcomes per environment, quarantine."""
    tables = {
        "wanted": wanted("trajectory_id", trajectory_ids),
        "srcs": wanted("source", sources),
        "dropped": wanted("outcome", drop),
    }
    states = "SELECT state_id FROM steps JOIN wanted USING (trajectory_id)"
    samples = f"samples WHERE state_id IN ({states})"
    with cursor(con, tables) as cur:

        def grouped(column: str, rows: str) -> dict[str, int]:
            sql = f"SELECT {column}, count(*) FROM {rows} GROUP BY {column} ORDER BY {column}"
            return {key: int(n) for key, n in cur.execute(sql).fetchall()}

        verdicts = grouped("verdict", samples)
        reasons = grouped("reason", samples)
        verified = (
            "pairs p JOIN steps st USING (state_id) JOIN trajectories t USING (trajectory_id) "
            "JOIN wanted USING (trajectory_id) "
            "LEFT JOIN verifications va ON va.state_id = p.state_id AND va.action = p.alternative_action "
            "LEFT JOIN verifications ve ON ve.state_id = p.state_id AND ve.action = st.action"
        )
        kept = "va.outcome IS NULL OR va.outcome NOT IN (SELECT outcome FROM dropped)"
        pairs = grouped("split", f"{verified} WHERE {kept}")
        dropped = sum(grouped("split", f"{verified} WHERE NOT ({kept})").values())
        outcomes: dict[str, dict[str, dict[str, int]]] = {}
        for side, column in ((ALTERNATIVE, "va.outcome"), (EXPERT, "ve.outcome")):
            sql = (
                f"SELECT t.environment, {column}, count(*) FROM {verified} WHERE {column} IS NOT NULL "
                "GROUP BY ALL ORDER BY ALL"
            )
            for environment, outcome, n in cur.execute(sql).fetchall():
                outcomes.setdefault(environment, {}).setdefault(side, {})[outcome] = int(n)
        quarantined = grouped("reason", "quarantine JOIN srcs USING (source)")
        (n_states,) = cur.execute(f"SELECT count(*) FROM ({states})").fetchone()
        (n_trajectories,) = cur.execute(
            "SELECT count(*) FROM trajectories JOIN wanted USING (trajectory_id)"
        ).fetchone()
        server = _server_usage(cur)
    verification = {"pairs_rejected": {NOT_WORSE: dropped}} if dropped else {}
    verification |= {"outcomes": outcomes} if outcomes else {}
    return server | {
        "trajectories": int(n_trajectories),
        "states": int(n_states),
        "samples": sum(verdicts.values()),
        "samples_by_verdict": verdicts,
        "samples_by_reason": reasons,
        "pairs": sum(pairs.values()),
        "pairs_by_split": pairs,
        **verification,
        "quarantined": sum(quarantined.values()),
        "quarantined_by_reason": quarantined,
    }


def _server_usage(cur: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """What every build of this store asked of a policy server, summed; nothing when none asked."""
    names = SERVER_USAGE_SCHEMA.names
    (builds, *sums) = cur.execute(
        f"SELECT count(*), {', '.join(f'sum({name})' for name in names)} FROM server_usage"
    ).fetchone()
    return {"server_usage": {name: int(n) for name, n in zip(names, sums, strict=True)}} if builds else {}


def contents(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows per content table, and the sum of published versions: the store only ever adds rows
    (a folder's publish row is replaced by a higher version), so equal numbers mean equal contents."""
    counted = [f"SELECT '{name}', count(*) FROM {name}" for name in [*STORE_TABLES, "policy_aliases"]]
    sql = " UNION ALL ".join([*counted, "SELECT 'publishes', coalesce(sum(version), 0) FROM publishes"])
    return {name: int(count) for name, count in con.execute(sql).fetchall()}


def folder(out: Path | str) -> str:
    """A dataset folder as the store's bookkeeping keys it: its absolute path."""
    return str(Path(out).resolve())


def stamped(con: duckdb.DuckDBPyConnection, out: Path | str) -> tuple[str, dict[str, Any]] | None:
    """The stamp and result of the last complete build into `out`, if any."""
    found = con.execute("SELECT stamp, result FROM build_stamps WHERE out = $out", {"out": folder(out)})
    row = found.fetchone()
    return (row[0], json.loads(row[1])) if row else None


def stamp(con: duckdb.DuckDBPyConnection, out: Path | str, digest: str, result: dict[str, Any]) -> None:
    """Replace `out`'s stamp (call inside a transaction)."""
    row = {"out": folder(out), "stamp": digest, "result": json.dumps(result, sort_keys=True)}
    con.execute("DELETE FROM build_stamps WHERE out = $out", {"out": row["out"]})
    con.execute("INSERT INTO build_stamps VALUES ($out, $stamp, $result)", row)
