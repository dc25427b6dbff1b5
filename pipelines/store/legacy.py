"""Stores written before schema 2.0 (histories copied into every state and pair row) move to the
current layout the first time they are opened, in the opening transaction."""

from __future__ import annotations

import duckdb

from actforge.pipelines.store.ddl import columns_ddl
from actforge.schemas import STORE_TABLES, Step, Trajectory, trajectory_tables

_BATCH = 256  # trajectories per converted batch: a long trajectory's steps are the unit of memory


def migrate_if_legacy(con: duckdb.DuckDBPyConnection) -> bool:
    """Migrate a 1.x store (its `trajectories` hold a `steps` list) in place; True when it did."""
    sql = "SELECT column_name FROM duckdb_columns() WHERE table_name = 'trajectories'"
    if "steps" not in {r[0] for r in con.execute(sql).fetchall()}:
        return False
    con.execute("ALTER TABLE trajectories RENAME TO legacy_trajectories")
    con.execute("ALTER TABLE pairs RENAME TO legacy_pairs")
    con.execute("DROP TABLE IF EXISTS states")  # derivable: a state is (trajectory, step index)
    for table in ("trajectories", "steps", "pairs"):
        con.execute(f"CREATE TABLE {table} ({columns_ddl(STORE_TABLES[table][0])})")
    # Whole trajectories are linear in size (only 1.x states and pairs copied histories).
    legacy = con.sql("SELECT * FROM legacy_trajectories ORDER BY trajectory_id").to_arrow_table()
    for batch in legacy.to_batches(_BATCH):
        records = []
        for row in batch.to_pylist():
            steps = tuple(
                Step(s["observation"], s["action"], _tuple(s["admissible"])) for s in row.pop("steps")
            )
            records.append(Trajectory(steps=steps, **row))
        meta, step_rows = trajectory_tables(records)
        for table, rows in (("trajectories", meta), ("steps", step_rows)):
            con.register("migrating", rows)
            con.execute(f"INSERT INTO {table} SELECT * FROM migrating")
            con.unregister("migrating")
    names = ", ".join(STORE_TABLES["pairs"][0].names)
    con.execute(f"INSERT INTO pairs SELECT {names} FROM legacy_pairs")
    con.execute("DROP TABLE legacy_pairs")
    con.execute("DROP TABLE legacy_trajectories")
    return True


def _tuple(values: list[str] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(values)
