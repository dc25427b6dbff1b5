"""One column registry: the store's tables, the published shards, the records and the card all
follow the schemas of `schemas.tables`, whose fields carry their docs."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from actforge.pipelines.publish.card import SCHEMAS
from actforge.pipelines.store.database import STORE_TABLES, Store
from actforge.pipelines.store.ddl import duckdb_type
from actforge.schemas import (
    BOOK_TABLES,
    PAIR_SCHEMA,
    POLICY_ALIAS_SCHEMA,
    PREFERENCE_SCHEMA,
    PUBLISH_SCHEMA,
    QUARANTINE_SCHEMA,
    SAMPLE_SCHEMA,
    STATE_SCHEMA,
    STEP_SCHEMA,
    TRAJECTORY_SCHEMA,
    WORLD_MODEL_SCHEMA,
    Quarantined,
    Sample,
    State,
    Step,
    Trajectory,
    conform,
    doc,
)
from actforge.schemas.columns import COLUMNS
from tests.support.factories import BAD_RECORD, LEGACY, TRAJECTORIES, publish_pairs, trajectories_of

LEGACY_STORE = LEGACY / "ds.duckdb"


def _described(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    return [(name, dtype) for name, dtype, *_ in con.execute(f"DESCRIBE {table}").fetchall()]


def _expected(con: duckdb.DuckDBPyConnection, schema: pa.Schema) -> list[tuple[str, str]]:
    """Each field's DuckDB type as DuckDB itself spells it."""
    return [
        (f.name, con.execute(f"SELECT typeof(NULL::{duckdb_type(f.type)})").fetchall()[0][0]) for f in schema
    ]


@pytest.mark.parametrize("legacy", [False, True], ids=["new", "migrated"])
def test_store_tables_have_exactly_their_schemas(tmp_path: Path, legacy: bool) -> None:
    path = tmp_path / "s.duckdb"
    if legacy:
        shutil.copy(LEGACY_STORE, path)
    with Store(path) as store:
        assert store.migrated == legacy
        tables = {name for (name,) in store.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        assert tables == {*STORE_TABLES, *BOOK_TABLES, "policy_aliases"}
        for table, (schema, key) in STORE_TABLES.items():
            assert _described(store.con, table) == _expected(store.con, schema), table
            assert key in schema.names and key.endswith("_id")
        for table, schema in BOOK_TABLES.items():
            assert _described(store.con, table) == _expected(store.con, schema), table
        assert _described(store.con, "policy_aliases") == _expected(store.con, POLICY_ALIAS_SCHEMA)


def test_published_shards_have_exactly_their_config_schema(tmp_path: Path) -> None:
    manifest = publish_pairs(tmp_path / "ds", quarantined=[BAD_RECORD])
    assert {s["config"] for s in manifest["shards"]} == set(SCHEMAS) - {"world_model"}  # no --verify here
    for shard in manifest["shards"]:
        schema = pq.read_schema(tmp_path / "ds" / shard["path"])
        expected = SCHEMAS[shard["config"]]
        assert schema.names == expected.names, shard["path"]
        assert schema.equals(expected, check_metadata=False), shard["path"]
        for field in schema:
            assert doc(field), (shard["path"], field.name)  # every column says what it means
            assert doc(field) == doc(expected.field(field.name))


def test_every_schema_field_carries_its_registry_doc() -> None:
    assert all(text.strip() for _type, text in COLUMNS.values())
    stored = [schema for schema, _key in STORE_TABLES.values()]
    schemas = [*SCHEMAS.values(), *stored, PUBLISH_SCHEMA, POLICY_ALIAS_SCHEMA]
    # TRL's column names for other prompts
    renamed = {(PREFERENCE_SCHEMA, "prompt"): "agent_prompt", (WORLD_MODEL_SCHEMA, "prompt"): "world_prompt"}
    for schema in schemas:
        for field in schema:
            column = next(
                (c for (sch, name), c in renamed.items() if sch is schema and name == field.name), None
            )
            assert (field.type, doc(field)) == COLUMNS[column or field.name], field.name


def test_records_are_derived_from_the_schemas() -> None:
    def names(record: type) -> list[str]:
        return [f.name for f in dataclasses.fields(record)]

    assert names(Step) == ["observation", "action", "admissible"]
    assert set(names(Trajectory)) == (set(TRAJECTORY_SCHEMA.names) - {"num_steps"}) | {"steps"}
    assert set(names(State)) == set(STATE_SCHEMA.names) | {"admissible"}
    assert names(Sample) == SAMPLE_SCHEMA.names and names(Quarantined) == QUARANTINE_SCHEMA.names
    # Defaulted fields come last, so keyword and positional construction agree.
    for record in (Step, Trajectory, State, Sample, Quarantined):
        defaulted = [f.default is not dataclasses.MISSING for f in dataclasses.fields(record)]
        assert defaulted == sorted(defaulted), record.__name__
    with pytest.raises(dataclasses.FrozenInstanceError):
        Step("o", "a").action = "b"  # type: ignore[misc]


def _steps_table() -> pa.Table:
    from actforge.schemas import trajectory_tables

    return trajectory_tables(trajectories_of(TRAJECTORIES))[1]


def test_conform_accepts_the_schema_and_refuses_anything_else() -> None:
    table = _steps_table()
    assert conform(table, STEP_SCHEMA, "steps").schema == STEP_SCHEMA
    reordered = table.select(list(reversed(table.column_names)))
    assert conform(reordered, STEP_SCHEMA, "steps").schema.names == STEP_SCHEMA.names
    with pytest.raises(ValueError, match=r"steps: columns differ.*missing \['chars_before'\]"):
        conform(table.drop_columns(["chars_before"]), STEP_SCHEMA, "steps")
    with pytest.raises(ValueError, match=r"steps: columns differ.*unexpected \['extra'\]"):
        conform(table.append_column("extra", pa.array([1] * table.num_rows)), STEP_SCHEMA, "steps")
    index = table.schema.get_field_index("step_index")
    as_text = table.set_column(index, "step_index", pa.array(["many"] * table.num_rows))
    with pytest.raises(ValueError, match="steps: types differ"):
        conform(as_text, STEP_SCHEMA, "steps")
    index = table.schema.get_field_index("observation")
    as_list = table.set_column(index, "observation", pa.array([["a"]] * table.num_rows))
    with pytest.raises(ValueError, match="steps: types differ"):
        conform(as_list, STEP_SCHEMA, "steps")


def test_store_refuses_a_table_that_does_not_conform(tmp_path: Path) -> None:
    with Store(tmp_path / "s.duckdb") as store:
        with pytest.raises(ValueError, match="steps: columns differ"):
            store.stage({"steps": _steps_table().drop_columns(["admissible"])})
        assert store.merge()["steps"] == 0


def test_column_docs_appear_in_the_card(tmp_path: Path) -> None:
    publish_pairs(tmp_path / "ds")
    card = (tmp_path / "ds" / "README.md").read_text(encoding="utf-8")
    for field in PAIR_SCHEMA:
        assert f"- `{field.name}` ({field.type}): {doc(field)}" in card, field.name
