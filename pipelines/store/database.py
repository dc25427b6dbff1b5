"""The DuckDB store: every run's trajectories (each step stored once), quarantine, samples and pairs.

Writes are Arrow tables (never SQL text). A batch is staged as Parquet files in one folder beside
the store, renamed into place at once, so a staged batch is durable and whole; `merge` then moves
every staged batch into the DuckDB tables as one set operation per table (the first staged copy of
each content-hash key, minus keys already stored) in one transaction. Staging is a file write and
dedup is one hash anti-join, so ingest stays linear in rows; batches staged by an interrupted run
are merged when the store next opens. The store is the build's memory, not the published dataset.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from actforge.pipelines.store import queries
from actforge.pipelines.store.ddl import columns_ddl
from actforge.pipelines.store.legacy import migrate_if_legacy
from actforge.pipelines.store.queries import cast_batches, cursor, dataset_counts, published_sql, wanted
from actforge.schemas import (
    BOOK_TABLES,
    PAIR_SCHEMA,
    POLICY_ALIAS_SCHEMA,
    SERVER_USAGE_SCHEMA,
    STATE_SCHEMA,
    STORE_TABLES,
    conform,
)

MEMORY_LIMIT = "1GB"  # DuckDB spills past this, so a large refresh stays within a small machine


class Store:
    """One DuckDB file; one process holds it read-write at a time (DuckDB's own rule)."""

    def __init__(self, path: Path | str, memory_limit: str = MEMORY_LIMIT) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise RuntimeError(f"store {self.path} is a folder, not a DuckDB file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.staging = self.path.with_name(self.path.name + ".staged")
        self._next_batch: int | None = None
        try:
            self.con = duckdb.connect(str(self.path), config={"memory_limit": memory_limit})
            with self.transaction():
                self.migrated = migrate_if_legacy(self.con)
                for table, (schema, _key) in STORE_TABLES.items():
                    self.con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns_ddl(schema)})")
                for table, schema in BOOK_TABLES.items():
                    self.con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns_ddl(schema)})")
                aliases = columns_ddl(POLICY_ALIAS_SCHEMA)
                self.con.execute(f"CREATE TABLE IF NOT EXISTS policy_aliases ({aliases})")
        except duckdb.Error as exc:  # locked, corrupt, truncated, or not a DuckDB file at all
            raise RuntimeError(_open_error(self.path, exc)) from exc
        self.merge()

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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

    def stage(self, tables: Mapping[str, pa.Table]) -> None:
        """Stage one batch: rows per store table (checked against its schema), whole or not at all.

        The batch's files are written into a hidden folder that is renamed into place once; batch
        folders are numbered in staging order, which decides the first copy of a key.
        """
        checked = {}
        for name, rows in tables.items():
            schema, key = STORE_TABLES[name]
            checked[name] = _first_per_key(conform(rows, schema, name), key)
        self.staging.mkdir(exist_ok=True)
        pending = self.staging / f".{uuid.uuid4().hex}"
        pending.mkdir()
        for name, rows in checked.items():
            if rows.num_rows:
                pq.write_table(
                    rows,
                    pending / f"{name}.parquet",
                    compression="none",
                    use_dictionary=False,
                    write_statistics=False,
                )
        if self._next_batch is None:
            self._next_batch = 1 + max(
                (int(p.name) for p in self.staging.iterdir() if p.name.isdigit()), default=0
            )
        pending.rename(self.staging / f"{self._next_batch:09d}")
        self._next_batch += 1

    def merge(self) -> dict[str, int]:
        """Move staged batches into the tables, each key once; returns how many rows were new per table."""
        batches = (
            sorted(p for p in self.staging.glob("[0-9]*") if p.is_dir()) if self.staging.is_dir() else []
        )
        added = {}
        with self.transaction():
            for table in STORE_TABLES:  # in order: a trajectory's steps go in with the trajectory
                files = [str(b / f"{table}.parquet") for b in batches if (b / f"{table}.parquet").is_file()]
                added[table] = self._merge_table(table, files) if files else 0
            self.con.execute("DROP TABLE IF EXISTS new_trajectories")
        for batch in batches:  # merged (a crash before this only means merging them again: a no-op)
            shutil.rmtree(batch)
        self._next_batch = None
        if self.staging.is_dir():
            for leftover in self.staging.glob(".*"):  # a batch whose staging was interrupted
                shutil.rmtree(leftover)
        return added

    def _merge_table(self, table: str, files: list[str]) -> int:
        key = STORE_TABLES[table][1]
        names = ", ".join(f"s.{n}" for n in STORE_TABLES[table][0].names)
        first = (
            f"SELECT {names} FROM read_parquet($files, filename=true, file_row_number=true) s "
            f"ANTI JOIN {table} m ON m.{key} = s.{key}"
        )
        # Keys are unique within a batch (see `stage`); only keys staged by two batches need ordering.
        (repeated,) = self.con.execute(
            f"SELECT count(*) > count(DISTINCT {key}) FROM read_parquet($files)", {"files": files}
        ).fetchall()[0]
        if repeated:
            order = "s.filename, s.file_row_number"
            first += f" QUALIFY row_number() OVER (PARTITION BY s.{key} ORDER BY {order}) = 1"
        if table == "steps":  # the steps of trajectories this merge adds, as they were staged
            first = (
                f"SELECT f.* FROM ({first}) f JOIN new_trajectories n USING (trajectory_id) "
                "WHERE f.step_index < n.num_steps"
            )
        params = {"files": files}
        if table == "trajectories":  # kept for the steps' merge, which follows
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE new_trajectories AS {first}", params)
            first, params = "FROM new_trajectories", {}
        (count,) = self.con.execute(f"INSERT INTO {table} {first}", params).fetchall()[0]
        return int(count)

    def _cursor(self, tables: dict[str, pa.Table]) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        return cursor(self.con, tables)

    _wanted = staticmethod(wanted)

    def state_ids(self, trajectory_ids: Iterable[str], max_states: int | None = None) -> list[str]:
        """These trajectories' states, a run each, splits spread evenly (`queries.SPREAD_STATES`)."""
        limit = "" if max_states is None else f" LIMIT {int(max_states)}"
        with self._cursor({"wanted": self._wanted("trajectory_id", trajectory_ids)}) as cur:
            return [r[0] for r in cur.execute(queries.SPREAD_STATES + limit).fetchall()]

    def unsampled(self, state_ids: Iterable[str], policies: Sequence[str], params_digest: str) -> list[str]:
        """States with no (merged) samples under any of these policy names and these sampling
        parameters, a trajectory's states together in step order (their prompts share prefixes)."""
        with self._cursor({"wanted": self._wanted("state_id", state_ids)}) as cur:
            rows = cur.execute(
                "SELECT state_id FROM steps JOIN wanted USING (state_id) WHERE NOT EXISTS ("
                "SELECT 1 FROM samples s WHERE s.state_id = steps.state_id "
                "AND list_contains($policies, s.policy) AND s.params_hash = $digest) "
                "ORDER BY trajectory_id, step_index",
                {"policies": list(policies), "digest": params_digest},
            ).fetchall()
        return [r[0] for r in rows]

    def unverified(self, trajectory_ids: Iterable[str], live: Iterable[str]) -> pa.Table:
        """What `--verify` still has to try, by source: in every state with pairs of a trajectory
        from a live source (its spec starts with one of `live`), the expert's action and each pair's
        alternative, unless that (state, action) was verified before."""
        tables = {
            "wanted": self._wanted("trajectory_id", trajectory_ids),
            "live": self._wanted("prefix", live),
        }
        with self._cursor(tables) as cur:
            return cur.sql(
                """
                WITH states AS (
                    SELECT st.state_id, st.trajectory_id, st.step_index, st.action, t.source
                    FROM steps st JOIN wanted USING (trajectory_id) JOIN trajectories t USING (trajectory_id)
                    WHERE EXISTS (SELECT 1 FROM live WHERE starts_with(t.source, live.prefix))
                        AND st.state_id IN (SELECT state_id FROM pairs)
                ),
                tried AS (
                    SELECT state_id, action FROM states
                    UNION SELECT p.state_id, p.alternative_action FROM pairs p JOIN states USING (state_id)
                )
                SELECT s.source, s.state_id, s.trajectory_id, s.step_index, a.action
                FROM tried a JOIN states s USING (state_id)
                WHERE NOT EXISTS (
                    SELECT 1 FROM verifications v WHERE v.state_id = a.state_id AND v.action = a.action
                )
                ORDER BY s.source, s.trajectory_id, s.step_index, a.action
                """
            ).to_arrow_table()

    def expert_actions(self, trajectory_ids: Iterable[str]) -> dict[str, list[str]]:
        """Each trajectory's expert actions in step order: the prefix that puts an engine in a state."""
        with self._cursor({"wanted": self._wanted("trajectory_id", trajectory_ids)}) as cur:
            rows = cur.execute(
                "SELECT trajectory_id, list(action ORDER BY step_index) FROM steps "
                "JOIN wanted USING (trajectory_id) GROUP BY trajectory_id"
            ).fetchall()
        return {trajectory: list(actions) for trajectory, actions in rows}

    def policy_names(self, policy: str, legacy: str | None) -> list[str]:
        """Every name `policy`'s samples are stored under. Samples under `legacy` (the name an older
        actforge gave the same folder) are adopted the first time, unless another policy already
        adopted them."""
        with self.transaction():
            if legacy and legacy != policy:
                claimed = self.con.execute(
                    "SELECT 1 FROM policy_aliases WHERE alias = ?", [legacy]
                ).fetchone()
                stored = self.con.execute(
                    "SELECT 1 FROM samples WHERE policy = ? LIMIT 1", [legacy]
                ).fetchone()
                if stored and not claimed:
                    self.con.execute("INSERT INTO policy_aliases VALUES (?, ?)", [policy, legacy])
            rows = self.con.execute("SELECT alias FROM policy_aliases WHERE policy = ? ORDER BY 1", [policy])
            return [policy, *(r[0] for r in rows.fetchall())]

    def trajectory_ids(self, trajectory_ids: Iterable[str]) -> list[str]:
        """Which of these trajectories are stored, in id order."""
        with self._cursor({"wanted": self._wanted("trajectory_id", trajectory_ids)}) as cur:
            sql = "SELECT trajectory_id FROM trajectories JOIN wanted USING (trajectory_id) ORDER BY 1"
            return [r[0] for r in cur.execute(sql).fetchall()]

    def published(
        self,
        kind: str,
        trajectory_ids: Iterable[str],
        split: str | None,
        history_chars: int,
        batch_rows: int = 1024,
        state_ids: Iterable[str] | None = None,
        drop: Iterable[str] = (),
    ) -> pa.RecordBatchReader:
        """Published rows of one split (None: all), streamed in order: `pairs` (PAIR_SCHEMA) or
        `states` (STATE_SCHEMA). `states` are those with pairs, unless `state_ids` names them.
        Pairs whose verified alternative had an outcome in `drop` are left out.
        """
        tables = {
            "ids": self._wanted("trajectory_id", trajectory_ids),
            "dropped": self._wanted("outcome", drop),
        }
        scope = "SELECT trajectory_id FROM trajectories JOIN ids USING (trajectory_id) WHERE split = ?"
        if state_ids is not None:  # only these states' trajectories: a sampling batch's query stays small
            tables["wanted_states"] = self._wanted("state_id", state_ids)
            scope += (
                " AND trajectory_id IN (SELECT trajectory_id FROM steps JOIN wanted_states USING (state_id))"
            )
        with self._cursor(tables) as cur:
            rows = cur.sql(scope, params=[split]) if split else cur.sql(scope.replace("split = ?", "true"))
            tables["wanted_split"] = rows.to_arrow_table()
        if kind == "states" and state_ids is None:  # the states that have pairs
            with self._cursor({"ids": tables["wanted_split"]}) as cur:
                sql = "SELECT state_id FROM steps JOIN ids USING (trajectory_id) "
                sql += "SEMI JOIN pairs USING (state_id)"
                tables["wanted_states"] = cur.sql(sql).to_arrow_table()
        schema = PAIR_SCHEMA if kind == "pairs" else STATE_SCHEMA
        cur = self.con.cursor()
        for name, table in tables.items():
            cur.register(name, table)
        reader = cur.sql(published_sql(kind, history_chars)).to_arrow_reader(batch_rows)
        return pa.RecordBatchReader.from_batches(schema, cast_batches(reader, schema, cur))

    def admissible(self, state_ids: Iterable[str]) -> dict[str, tuple[str, ...] | None]:
        """The admissible actions of these states, where their source recorded them."""
        with self._cursor({"wanted": self._wanted("state_id", state_ids)}) as cur:
            rows = cur.execute(
                "SELECT state_id, admissible FROM steps JOIN wanted USING (state_id)"
            ).fetchall()
        return {key: None if values is None else tuple(values) for key, values in rows}

    def tried(self, state_ids: Iterable[str]) -> pa.Table:
        """The actions `--verify` tried in these states and what the engine answered, by state."""
        with self._cursor({"wanted": self._wanted("state_id", state_ids)}) as cur:
            sql = (
                "SELECT state_id, action, outcome_observation FROM verifications JOIN wanted "
                "USING (state_id) ORDER BY state_id, action"
            )
            return cur.sql(sql).to_arrow_table()

    def record_usage(self, usage: dict[str, int]) -> None:
        """Add what one build asked of a policy server (parameters, never SQL text)."""
        names = SERVER_USAGE_SCHEMA.names
        values = ", ".join(f"${name}" for name in names)
        self.con.execute(f"INSERT INTO server_usage ({', '.join(names)}) VALUES ({values})", usage)

    def last_publish(self, out: Path) -> dict[str, Any] | None:
        """The manifest of the last version this store published to `out`, if any."""
        row = self.con.execute(
            "SELECT manifest FROM publishes WHERE out = $out", {"out": queries.folder(out)}
        )
        found = row.fetchone()
        return json.loads(found[0]) if found else None

    def counts(
        self, trajectory_ids: Iterable[str], sources: Iterable[str], drop: Iterable[str] = ()
    ) -> dict[str, Any]:
        """What a dataset holds (`store.queries.dataset_counts`)."""
        return dataset_counts(self.con, trajectory_ids, sources, drop)

    def record_publish(self, out: Path, manifest: dict[str, Any]) -> None:
        """Remember the version now in `out` (one row per folder, replaced in one transaction)."""
        row = {"out": queries.folder(out), "version": manifest["version"], "manifest": json.dumps(manifest)}
        with self.transaction():
            self.con.execute("DELETE FROM publishes WHERE out = $out", {"out": row["out"]})
            self.con.execute("INSERT INTO publishes VALUES ($out, $version, $manifest)", row)


def _open_error(path: Path, exc: Exception) -> str:
    """One line on why a store cannot be opened: held by a process (which), or not a store."""
    text = str(exc)
    held = re.search(r"Conflicting lock is held in (.*?) \(PID (\d+)\)", text)
    if held:
        return f"store {path} is in use by process {held.group(2)} ({held.group(1)}); wait for it or stop it"
    first = text.splitlines()[0] if text else type(exc).__name__
    return f"store {path} is corrupt or not a DuckDB store ({first}); move it away to start afresh"


def _first_per_key(rows: pa.Table, key: str) -> pa.Table:
    """The first row of each key, in order: a batch stages each key once."""
    if rows.num_rows < 2 or pc.count_distinct(rows[key]).as_py() == rows.num_rows:
        return rows
    indexed = rows.append_column("_row", pa.array(range(rows.num_rows), pa.int64()))
    first = indexed.group_by(key, use_threads=False).aggregate([("_row", "min")])["_row_min"]
    return rows.take(pc.take(first, pc.sort_indices(first)))  # ascending: the batch order
