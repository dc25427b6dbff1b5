"""The DuckDB store: trajectories, quarantine, states, samples and pairs of every run.

Rows go in as Arrow tables (never formatted into SQL) with `ON CONFLICT DO NOTHING` on content-hash
keys, which makes every write idempotent and dedups pairs exactly across runs. The store is the
build's memory, not part of the published dataset.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from schemas import (
    PAIR_SCHEMA,
    QUARANTINE_SCHEMA,
    SAMPLE_SCHEMA,
    STATE_SCHEMA,
    TRAJECTORY_SCHEMA,
    Pair,
    Quarantined,
    Sample,
    State,
    Trajectory,
    to_arrow,
    trajectories_from_arrow,
)

TABLES: dict[str, tuple[pa.Schema, str]] = {
    "trajectories": (TRAJECTORY_SCHEMA, "trajectory_id"),
    "quarantine": (QUARANTINE_SCHEMA, "quarantine_id"),
    "states": (STATE_SCHEMA, "state_id"),
    "samples": (SAMPLE_SCHEMA, "sample_id"),
    "pairs": (PAIR_SCHEMA, "pair_id"),
}
_SCALARS = {
    pa.string(): "VARCHAR",
    pa.int64(): "BIGINT",
    pa.bool_(): "BOOLEAN",
    pa.float64(): "DOUBLE",
}


def duckdb_type(arrow_type: pa.DataType) -> str:
    """DuckDB column type for an Arrow type of our schemas."""
    if arrow_type in _SCALARS:
        return _SCALARS[arrow_type]
    if pa.types.is_list(arrow_type):
        return duckdb_type(arrow_type.value_type) + "[]"
    if pa.types.is_struct(arrow_type):
        fields = ", ".join(f'"{f.name}" {duckdb_type(f.type)}' for f in arrow_type)
        return f"STRUCT({fields})"
    raise TypeError(f"no DuckDB type for {arrow_type}")


class Store:
    """One DuckDB file; one process holds it read-write at a time (DuckDB's own rule)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(str(self.path))
        except duckdb.IOException as exc:
            raise RuntimeError(f"cannot open store {self.path}: is another build using it? ({exc})") from exc
        for table, (schema, key) in TABLES.items():
            columns = ", ".join(f'"{f.name}" {duckdb_type(f.type)}' for f in schema)
            self.con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns}, PRIMARY KEY ({key}))")

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _insert(self, table: str, records: Sequence[Any]) -> int:
        """Insert records in one transaction; returns how many were new."""
        if not records:
            return 0
        schema, key = TABLES[table]
        incoming = to_arrow(records, schema)
        # Duplicates inside one batch would violate the key before ON CONFLICT sees them.
        incoming = incoming.take(_first_occurrences(incoming.column(key).to_pylist()))
        self.con.register("incoming", incoming)
        try:
            (count,) = self.con.execute(
                f"INSERT INTO {table} SELECT * FROM incoming ON CONFLICT DO NOTHING"
            ).fetchone()
        finally:
            self.con.unregister("incoming")
        return int(count)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Writes inside commit together or not at all (an interrupted batch leaves no half rows)."""
        self.con.begin()
        try:
            yield
        except BaseException:
            self.con.rollback()
            raise
        self.con.commit()

    def add_trajectories(self, records: Sequence[Trajectory]) -> int:
        return self._insert("trajectories", records)

    def add_quarantine(self, records: Sequence[Quarantined]) -> int:
        return self._insert("quarantine", records)

    def add_states(self, records: Sequence[State]) -> int:
        return self._insert("states", records)

    def add_samples(self, records: Sequence[Sample]) -> int:
        return self._insert("samples", records)

    def add_pairs(self, records: Sequence[Pair]) -> int:
        return self._insert("pairs", records)

    @contextmanager
    def _cursor(self, tables: dict[str, pa.Table]) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor that sees `tables` (Arrow data, never SQL text) under their names."""
        cur = self.con.cursor()
        try:
            for name, table in tables.items():
                cur.register(name, table)
            yield cur
        finally:
            cur.close()

    @staticmethod
    def _wanted(key: str, ids: Iterable[str]) -> pa.Table:
        return pa.table({key: pa.array(sorted(set(ids)), pa.string())})

    def _rows(self, table: str, key: str, ids: Iterable[str], order: str) -> pa.Table:
        """Rows of `table` whose `key` is in `ids`, ordered, cast to the table's Arrow schema."""
        schema = TABLES[table][0]
        with self._cursor({"wanted": self._wanted(key, ids)}) as cur:
            sql = f"SELECT t.* FROM {table} t JOIN wanted USING ({key}) ORDER BY {order}"
            rows = cur.sql(sql).to_arrow_table()
        return rows.select(schema.names).cast(schema)

    def sampled_state_ids(self, state_ids: Iterable[str], policy: str, params_digest: str) -> set[str]:
        """States that already have samples for this policy and sampling parameters."""
        with self._cursor({"wanted": self._wanted("state_id", state_ids)}) as cur:
            rows = cur.execute(
                "SELECT DISTINCT s.state_id FROM samples s JOIN wanted w USING (state_id) "
                "WHERE s.policy = ? AND s.params_hash = ?",
                [policy, params_digest],
            ).fetchall()
        return {r[0] for r in rows}

    def trajectories(self, trajectory_ids: Iterable[str]) -> list[Trajectory]:
        """Stored trajectories by id, in id order: the first collected version of each wins."""
        return trajectories_from_arrow(
            self._rows("trajectories", "trajectory_id", trajectory_ids, "trajectory_id")
        )

    def samples_for(self, state_ids: Iterable[str]) -> list[Sample]:
        return [
            Sample(**row) for row in self._rows("samples", "state_id", state_ids, "sample_id").to_pylist()
        ]

    def pairs_for(self, trajectory_ids: Iterable[str]) -> pa.Table:
        """Published rows: the pairs of these trajectories, as PAIR_SCHEMA."""
        return self._rows("pairs", "trajectory_id", trajectory_ids, "trajectory_id, step_index, pair_id")

    def counts(self, trajectory_ids: Iterable[str], sources: Iterable[str]) -> dict[str, Any]:
        """What a dataset holds: trajectories, states, samples by verdict, pairs by split, quarantine."""
        tables = {
            "wanted": self._wanted("trajectory_id", trajectory_ids),
            "srcs": self._wanted("source", sources),
        }
        states = "SELECT state_id FROM states JOIN wanted USING (trajectory_id)"
        samples = f"samples WHERE state_id IN ({states})"
        with self._cursor(tables) as cur:

            def grouped(column: str, rows: str) -> dict[str, int]:
                sql = f"SELECT {column}, count(*) FROM {rows} GROUP BY {column} ORDER BY {column}"
                return {key: int(n) for key, n in cur.execute(sql).fetchall()}

            verdicts = grouped("verdict", samples)
            reasons = grouped("reason", samples)
            pairs = grouped("split", "pairs JOIN wanted USING (trajectory_id)")
            quarantined = grouped("reason", "quarantine JOIN srcs USING (source)")
            (n_states,) = cur.execute(f"SELECT count(*) FROM ({states})").fetchone()
        return {
            "trajectories": tables["wanted"].num_rows,
            "states": int(n_states),
            "samples": sum(verdicts.values()),
            "samples_by_verdict": verdicts,
            "samples_by_reason": reasons,
            "pairs": sum(pairs.values()),
            "pairs_by_split": pairs,
            "quarantined": sum(quarantined.values()),
            "quarantined_by_reason": quarantined,
        }


def _first_occurrences(keys: list[str]) -> list[int]:
    seen: set[str] = set()
    first = []
    for index, key in enumerate(keys):
        if key not in seen:
            seen.add(key)
            first.append(index)
    return first
