"""The DuckDB store: staged set-merge and dedup (first staged copy wins, a batch is staged whole or
not at all), staged rows of an interrupted run, and the published tables' history budget."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pyarrow as pa
import pytest

from actforge.pipelines import steps
from actforge.pipelines.curate.filters import FilterConfig
from actforge.pipelines.curate.pairs import pairs_table
from actforge.pipelines.policy.models import Policy
from actforge.pipelines.policy.sampling import sample_states
from actforge.pipelines.sources.base import Collected, quarantine
from actforge.pipelines.store.database import Store
from actforge.pipelines.store.states import load_states
from actforge.schemas import QUARANTINE_SCHEMA, SAMPLE_SCHEMA, Step, records_table, trajectory_tables
from actforge.schemas.ids import state_id
from tests.support import factories
from tests.support.factories import make_trajectory
from tests.support.kitchen import BUDGET, IDS, TRAJECTORIES
from tests.support.kitchen import collected as _collected
from tests.support.kitchen import recorded_states as _states
from tests.support.kitchen import sampling_params as _params


def _rows(store: Store, table: str, order: str) -> list[dict]:
    return store.con.sql(f"SELECT * FROM {table} ORDER BY {order}").to_arrow_table().to_pylist()


# --- record, merge and dedup ----------------------------------------------------------------------


def test_records_dedup_across_runs(tmp_path: Path) -> None:
    db_path = tmp_path / "store.duckdb"
    with Store(db_path) as store:
        ids, added = steps.record(store, _collected())
    assert added == {"trajectories_added": 2, "quarantined_added": 1, "states_added": 6}
    assert ids == IDS
    with Store(db_path) as store:
        ids_again, added_again = steps.record(store, _collected())
        assert added_again == {"trajectories_added": 0, "quarantined_added": 0, "states_added": 0}
        assert ids_again == ids
        counts = store.counts(ids, ["test-source"])
    assert counts["trajectories"] == 2 and counts["states"] == 6
    assert counts["quarantined_by_reason"] == {"invalid_json": 1}


def test_steps_are_stored_once_with_their_text_offsets(tmp_path: Path) -> None:
    with Store(tmp_path / "s.duckdb") as store:
        steps.record(store, _collected())
        rows = _rows(store, "steps", "trajectory_id, step_index")
        trajectories = _rows(store, "trajectories", "trajectory_id")
    assert [t["num_steps"] for t in trajectories] == [3, 3]
    by_id = {t.trajectory_id: t for t in TRAJECTORIES}
    for row in rows:
        trajectory = by_id[row["trajectory_id"]]
        step = trajectory.steps[row["step_index"]]
        assert (row["observation"], row["action"]) == (step.observation, step.action)
        assert row["state_id"] == state_id(trajectory.trajectory_id, row["step_index"])
        before = trajectory.steps[: row["step_index"]]
        assert row["chars_before"] == sum(len(s.observation) + len(s.action) for s in before)


def test_staging_the_same_rows_twice_adds_each_key_once(tmp_path: Path) -> None:
    bad = [quarantine("src", f"line {i}", "invalid_json", "x", f"raw {i}") for i in range(3)]
    table = records_table(bad, QUARANTINE_SCHEMA)
    with Store(tmp_path / "s.duckdb") as store:
        store.stage({"quarantine": table})
        store.stage({"quarantine": table})  # the same rows again
        store.stage({"quarantine": pa.concat_tables([table.slice(1, 1)] * 3)})  # duplicates in one stage
        assert store.merge()["quarantine"] == 3
        store.stage({"quarantine": table})  # already stored
        assert store.merge() == {
            "trajectories": 0,
            "steps": 0,
            "quarantine": 0,
            "samples": 0,
            "pairs": 0,
            "verifications": 0,
        }
        assert store.merge()["quarantine"] == 0  # nothing left staged after a merge
        rows = _rows(store, "quarantine", "position")
    assert [r["quarantine_id"] for r in rows] == [q.quarantine_id for q in bad]
    assert rows == table.to_pylist()


def test_first_staged_copy_wins_for_one_key(tmp_path: Path) -> None:
    first = quarantine("src", "line 1", "invalid_json", "first", "raw")
    second = dataclasses.replace(first, detail="second")  # same key, other content
    third = dataclasses.replace(first, detail="third")
    with Store(tmp_path / "s.duckdb") as store:
        store.stage({"quarantine": records_table([first, second], QUARANTINE_SCHEMA)})
        store.stage({"quarantine": records_table([third], QUARANTINE_SCHEMA)})
        assert store.merge()["quarantine"] == 1
        store.stage({"quarantine": records_table([second], QUARANTINE_SCHEMA)})  # a later run
        assert store.merge()["quarantine"] == 0
        [row] = _rows(store, "quarantine", "quarantine_id")
    assert row["detail"] == "first"


def test_recollected_trajectory_keeps_the_stored_version(tmp_path: Path) -> None:
    """A live engine's text can change between runs (same episode id): the first version stays."""
    original = make_trajectory("episode", "train", [Step(f"obs {i}", f"act {i}") for i in range(3)])
    changed = dataclasses.replace(
        original,
        instruction="another wording",
        steps=tuple(Step(f"new obs {i}", f"new act {i}") for i in range(4)),  # longer, other text
    )
    with Store(tmp_path / "s.duckdb") as store:
        steps.record(store, Collected.of([original], []))
        before = (_rows(store, "trajectories", "trajectory_id"), _rows(store, "steps", "state_id"))
        ids, run = steps.record(store, Collected.of([changed], []))
        assert ids == ["episode"]
        assert run == {"trajectories_added": 0, "states_added": 0, "quarantined_added": 0}
        assert (_rows(store, "trajectories", "trajectory_id"), _rows(store, "steps", "state_id")) == before
        [state] = load_states(store, ids, [state_id("episode", 2)], BUDGET)
    assert (state.instruction, state.observation) == ("do the episode task", "obs 2")
    assert state.expert_action == "act 2"
    assert state.history == (Step("obs 0", "act 0"), Step("obs 1", "act 1"))

    # Both versions staged in one merge: the first staged one is the one kept, with its own steps.
    with Store(tmp_path / "t.duckdb") as store:
        ids, run = steps.record(store, Collected.of([original, changed], []))
        assert run["trajectories_added"] == 1 and run["states_added"] == 3
        assert [r["observation"] for r in _rows(store, "steps", "step_index")] == ["obs 0", "obs 1", "obs 2"]


def test_staged_rows_of_an_interrupted_run_merge_on_next_open(tmp_path: Path) -> None:
    meta, step_rows = trajectory_tables(TRAJECTORIES)
    with Store(tmp_path / "s.duckdb") as store:
        store.stage({"trajectories": meta, "steps": step_rows})
    with Store(tmp_path / "s.duckdb") as store:  # opening merges what was staged
        assert store.trajectory_ids(IDS) == IDS
        assert store.counts(IDS, [])["states"] == 6


def test_failed_batch_writes_nothing(tmp_path: Path, tiny: Policy) -> None:
    """A batch is staged whole or not at all: a bad table in it stages none of its tables."""
    with Store(tmp_path / "s.duckdb") as store:
        states = _states(store)[:2]
        samples = sample_states(tiny, states, _params(k=2), FilterConfig())
        broken = pairs_table(states, samples).drop_columns(["policy"])
        with pytest.raises(ValueError, match="pairs"):
            store.stage({"samples": records_table(samples, SAMPLE_SCHEMA), "pairs": broken})
        assert steps.finish(store) == {"samples_added": 0, "pairs_added": 0}
        assert store.counts(IDS, [])["samples"] == 0
        assert steps.pending(store, [s.state_id for s in states], tiny.name, None, _params(k=2)) == [
            s.state_id for s in sorted(states, key=lambda s: (s.trajectory_id, s.step_index))
        ]


def test_negative_history_budget_is_refused(tmp_path: Path) -> None:
    with Store(tmp_path / "s.duckdb") as store, pytest.raises(ValueError, match="history budget"):
        store.published("pairs", IDS, None, -1)


def test_max_states_takes_whole_trajectories_from_every_split(tmp_path: Path) -> None:
    """Six trajectories (three train, one validation, two test): each trajectory's states come in
    one run, in step order, and the splits take turns in proportion to their sizes."""
    spec = factories.TRAJECTORIES
    where = {state_id(name, i): (name, i) for name, (_, length) in spec.items() for i in range(length)}
    with Store(tmp_path / "s.duckdb") as store:
        ids, _ = steps.record(store, Collected.of(factories.trajectories_of(spec), []))
        every = [where[state] for state in store.state_ids(ids)]
        assert sorted(every) == sorted(where.values())
        runs = [name for index, (name, _) in enumerate(every) if index == 0 or every[index - 1][0] != name]
        assert len(runs) == len(spec)  # one run per trajectory
        assert all(
            every[i][1] < every[i + 1][1] for i in range(len(every) - 1) if every[i][0] == every[i + 1][0]
        )
        # places (rank - 0.5) / size: t0 1/6, t4 1/4, t1 and t3 1/2 (by id), t5 3/4, t2 5/6
        assert runs == ["t0", "t4", "t1", "t3", "t5", "t2"]
        first = store.state_ids(ids, 12)
        assert [where[state] for state in first] == every[:12]
