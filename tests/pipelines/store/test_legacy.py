"""A store and dataset written by actforge before schema 2.0 (tests/data/legacy-1.1, see its README)
move to the current layout on the first `actforge refresh`: nothing is sampled again, the dataset
becomes version 2 with version 1 in its history, and a second refresh changes nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from actforge.flows.cli import main
from actforge.pipelines.policy.models import legacy_policy_name, policy_name
from actforge.pipelines.store.database import STORE_TABLES, Store
from actforge.schemas import BOOK_TABLES, SCHEMA_VERSION
from tests.support.factories import LEGACY, files_of, make_project

LEGACY_POLICY = "tiny-llama@1c9461ea069a"  # the policy name the fixture's samples are keyed by


@pytest.fixture
def legacy_model_dir(tmp_path: Path, tiny_model_dir: Path) -> Path:
    """The tiny test model with the fixture's own `config.json`: the legacy name hashes that file, which
    transformers writes with its version inside, so the fixture carries the bytes its name came from."""
    folder = tmp_path / "models" / "tiny-llama"
    shutil.copytree(tiny_model_dir, folder)
    shutil.copy(LEGACY / "tiny-llama" / "config.json", folder / "config.json")
    return folder


def _legacy_project(tmp_path: Path, model_dir: Path) -> Path:
    """The fixture's store and dataset where the fixture's project had them, and that project."""
    config = make_project(tmp_path, model_dir)
    (tmp_path / "out").mkdir()
    shutil.copy(LEGACY / "ds.duckdb", tmp_path / "out" / "ds.duckdb")
    shutil.copytree(LEGACY / "ds", tmp_path / "out" / "ds")
    return config


def _query(path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


def _pair_ids(out: Path, manifest: dict) -> list[str]:
    shards = [s for s in manifest["shards"] if s["config"] == "default"]
    return sorted(i for s in shards for i in pq.read_table(out / s["path"])["pair_id"].to_pylist())


def test_fixture_policy_is_the_tiny_test_model(legacy_model_dir: Path) -> None:
    # The fixture's samples are keyed by the folder's config alone; today's name adds its weights.
    assert legacy_policy_name(str(legacy_model_dir)) == LEGACY_POLICY
    assert policy_name(str(legacy_model_dir)).startswith("tiny-llama@")
    assert policy_name(str(legacy_model_dir)) != LEGACY_POLICY
    manifest = json.loads((LEGACY / "ds" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["provenance"]["policy"] == LEGACY_POLICY and manifest["schema_version"] == "1.1"


def test_opening_a_legacy_store_migrates_it_once(tmp_path: Path) -> None:
    shutil.copy(LEGACY / "ds.duckdb", tmp_path / "ds.duckdb")
    with Store(tmp_path / "ds.duckdb") as store:
        assert store.migrated
        counts = {t: store.con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in STORE_TABLES}
    assert counts == {
        "trajectories": 6,
        "steps": 20,
        "quarantine": 0,
        "samples": 60,
        "pairs": 60,
        "verifications": 0,
    }
    with Store(tmp_path / "ds.duckdb") as store:
        assert not store.migrated


@pytest.mark.slow  # the Prefect test server
@pytest.mark.integration
@pytest.mark.usefixtures("prefect_harness", "hf_offline")
def test_refresh_migrates_a_legacy_store_and_keeps_its_samples(
    tmp_path: Path, legacy_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _legacy_project(tmp_path, legacy_model_dir)
    out, store = tmp_path / "out" / "ds", tmp_path / "out" / "ds.duckdb"
    old = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert (old["version"], old["schema_version"]) == (1, "1.1")
    assert _query(store, "SELECT count(*) FROM samples") == [(60,)]
    trajectory_columns = "SELECT column_name FROM duckdb_columns() WHERE table_name = 'trajectories'"
    assert ("steps",) in _query(store, trajectory_columns)  # the 1.x layout: histories in every row

    # 1. The first refresh migrates the store and publishes its pairs in the 2.0 layout. The agent
    # prompt changed since (agent-v2: windows slide in blocks), a new sampling key, so each of the 20
    # states is sampled once more; the 60 legacy samples stay, adopted by the folder's current name.
    assert main(["refresh", "--project", str(config)]) == 0
    printed = capsys.readouterr().out
    assert "+0 trajectories, +0 states, +60 samples (20 policy calls)" in printed
    assert "version: 2" in printed
    tables = {name for (name,) in _query(store, "SELECT table_name FROM duckdb_tables()")}
    # Legacy `states` and renamed 1.x tables are gone.
    assert tables == {*STORE_TABLES, *BOOK_TABLES, "policy_aliases"}
    # The folder's current name adopted the samples stored under its old name.
    current = policy_name(str(legacy_model_dir))
    assert _query(store, "SELECT policy, alias FROM policy_aliases") == [(current, LEGACY_POLICY)]
    for table, (schema, _key) in STORE_TABLES.items():
        columns = _query(store, f"SELECT column_name FROM duckdb_columns() WHERE table_name = '{table}'")
        assert [c for (c,) in columns] == schema.names, table
    counts = {t: _query(store, f"SELECT count(*) FROM {t}")[0][0] for t in STORE_TABLES}
    new_pairs = counts.pop("pairs") - 60
    assert 0 < new_pairs <= 60
    assert counts == {"trajectories": 6, "steps": 20, "quarantine": 0, "samples": 120, "verifications": 0}
    legacy_keyed = _query(store, "SELECT count(*) FROM samples WHERE params::JSON->>'prompt' = 'agent-v1'")
    assert legacy_keyed == [(60,)]

    new = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert (new["version"], new["parent_version"], new["schema_version"]) == (2, 1, SCHEMA_VERSION)
    assert new["history"][0] == old["history"][0]  # version 1 stays in the history
    assert [h["version"] for h in new["history"]] == [1, 2]
    assert (new["added"]["trajectories"], new["added"]["states"]) == (0, 0)
    assert sum(new["added"]["pairs"].values()) == new_pairs
    assert new["stats"]["samples"] == 120 and new["stats"]["pairs"] == 60 + new_pairs
    assert (new["stats"]["trajectories"], new["stats"]["states"]) == (6, 20)
    assert old["splits"] == {"train": 54, "validation": 6}
    assert new["provenance"]["policy"] == current
    assert set(_pair_ids(out, new)) >= set(_pair_ids(LEGACY / "ds", old))  # the legacy pairs stay
    assert _query(store, "SELECT out, version FROM publishes") == [(str(out.resolve()), 2)]
    files = files_of(out)

    # 2. A second refresh: nothing to migrate, sample or publish; every file stays byte for byte.
    assert main(["refresh", "--project", str(config)]) == 0
    printed = capsys.readouterr().out
    assert "+0 samples (0 policy calls), +0 pairs" in printed and "version: 2" in printed
    assert files_of(out) == files
