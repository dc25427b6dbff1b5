"""The DuckDB store: staged set-merge and dedup, history windows, the "never sample twice" rule,
and sampling on a real tiny Llama."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from actforge.pipelines import steps
from actforge.pipelines.config import BuildConfig
from actforge.pipelines.curate.filters import FilterConfig
from actforge.pipelines.curate.pairs import pairs_table
from actforge.pipelines.policy.models import Policy, load_policy, policy_name
from actforge.pipelines.policy.sampling import sample_states
from actforge.pipelines.sources.base import Collected, quarantine
from actforge.pipelines.store.database import Store
from actforge.pipelines.store.states import load_states
from actforge.pipelines.text.prompts import agent_prompt, agent_prompt_text
from actforge.schemas import (
    PAIR_SCHEMA,
    QUARANTINE_SCHEMA,
    SAMPLE_SCHEMA,
    STATE_SCHEMA,
    State,
    Step,
    Trajectory,
    records_table,
    trajectory_tables,
)
from actforge.schemas.ids import state_id, trajectory_id
from tests.support.factories import make_trajectory, publish_pairs, trajectory_records

BUDGET = BuildConfig.history_chars


def _trajectory(name: str, split: str = "train") -> Trajectory:
    steps_ = (
        Step(f"{name}: you are in the hallway.", "go to kitchen"),
        Step(f"{name}: you are in the kitchen.", "open fridge"),
        Step(f"{name}: the fridge is open.", "pick up apple"),
    )
    tid = trajectory_id(name, "scienceworld", f"find the {name}", steps_)
    return Trajectory(
        trajectory_id=tid,
        source="test-source",
        task=name,
        environment="scienceworld",
        split=split,
        instruction=f"find the {name}",
        steps=steps_,
    )


TRAJECTORIES = (_trajectory("apple"), _trajectory("pear", "test"))
IDS = sorted(t.trajectory_id for t in TRAJECTORIES)


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path) -> Policy:
    return load_policy(str(tiny_model_dir))


def _collected() -> Collected:
    bad = quarantine("test-source", "line 3", "invalid_json", "Expecting value", "{oops")
    return Collected.of(TRAJECTORIES, [bad])


def _states(store: Store, history_chars: int = BUDGET) -> list[State]:
    """Every state of the recorded trajectories, in the order `select` gives."""
    ids, _ = steps.record(store, _collected())
    return load_states(store, ids, steps.select(store, ids, None), history_chars)


def _params(**changes: int):
    return BuildConfig(**({"k": 4, "seed": 3} | changes)).sampling


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


def test_collected_round_trips_to_records() -> None:
    collected = _collected()
    assert trajectory_records(collected) == list(TRAJECTORIES)
    assert collected.quarantined.num_rows == 1


# --- history windows ------------------------------------------------------------------------------


# Step texts of 10 to 40 characters (observation + action), one far longer than the others.
WINDOW_STEPS = tuple(
    Step("o" * n, "a" * m) for n, m in ((5, 5), (20, 10), (3, 7), (60, 0), (8, 4), (1, 9), (15, 15), (2, 2))
)


def _expected_window(index: int, budget: int) -> tuple[tuple[Step, ...], int]:
    """The latest steps before `index` whose text (observations and actions) fits `budget`."""
    start, used = index, 0
    while start > 0:
        size = len(WINDOW_STEPS[start - 1].observation) + len(WINDOW_STEPS[start - 1].action)
        if used + size > budget:
            break
        used += size
        start -= 1
    return WINDOW_STEPS[start:index], start


@pytest.mark.parametrize("budget", [0, 9, 10, 30, 40, 75, 100, 10_000])
def test_history_window_is_the_latest_steps_that_fit(tmp_path: Path, budget: int) -> None:
    long = make_trajectory("long", "train", WINDOW_STEPS)
    short = make_trajectory("short", "train", WINDOW_STEPS[:2])
    with Store(tmp_path / "s.duckdb") as store:
        ids, _ = steps.record(store, Collected.of([long, short], []))
        states = load_states(store, ids, steps.select(store, ids, None), budget)
        published = store.published("states", ids, "train", budget, state_ids=[s.state_id for s in states])
        rows = published.read_all()
    assert rows.schema == STATE_SCHEMA
    assert len(states) == rows.num_rows == len(WINDOW_STEPS) + 2
    by_id = {row["state_id"]: row for row in rows.to_pylist()}
    for state in states:
        history, omitted = _expected_window(state.step_index, budget)
        assert (state.history, state.history_omitted) == (history, omitted), (state.step_index, budget)
        assert len(state.history) + state.history_omitted == state.step_index
        row = by_id[state.state_id]
        assert row["history"] == [{"observation": s.observation, "action": s.action} for s in history]
        assert row["history_omitted"] == omitted
        if budget == 0:
            assert state.history == () and state.history_omitted == state.step_index


def test_published_rows_carry_the_window(tmp_path: Path) -> None:
    trajectory = make_trajectory("long", "train", WINDOW_STEPS)
    manifest = publish_pairs(tmp_path / "ds", [trajectory], history_chars=30)
    default = next(s for s in manifest["shards"] if s["config"] == "default")
    rows = pq.read_table(tmp_path / "ds" / default["path"]).to_pylist()
    assert [r["step_index"] for r in rows] == list(range(len(WINDOW_STEPS)))
    for row in rows:
        history, omitted = _expected_window(row["step_index"], 30)
        assert row["history"] == [{"observation": s.observation, "action": s.action} for s in history]
        assert row["history_omitted"] == omitted
        assert len(row["history"]) + row["history_omitted"] == row["step_index"]
    assert any(r["history_omitted"] > 0 for r in rows)

    publish_pairs(tmp_path / "none", [trajectory], history_chars=0)
    rows = pq.read_table(tmp_path / "none" / default["path"]).to_pylist()
    assert all(r["history"] == [] and r["history_omitted"] == r["step_index"] for r in rows)


def test_negative_history_budget_is_refused(tmp_path: Path) -> None:
    with Store(tmp_path / "s.duckdb") as store, pytest.raises(ValueError, match="history budget"):
        store.published("pairs", IDS, None, -1)


# --- sampling and "never sample twice" ------------------------------------------------------------


def _accepted(samples: Sequence) -> int:
    return sum(1 for s in samples if s.verdict == "accepted")


def test_never_sample_twice_and_pairs_dedup(tmp_path: Path, tiny: Policy) -> None:
    params, filters = _params(), FilterConfig()
    with Store(tmp_path / "s.duckdb") as store:
        states = _states(store)
        state_ids = [s.state_id for s in states]
        todo = steps.pending(store, state_ids, tiny.name, None, params)
        # A trajectory's states come together, in step order: the decoder shares their prefixes.
        by_trajectory = sorted(states, key=lambda s: (s.trajectory_id, s.step_index))
        assert todo == [s.state_id for s in by_trajectory] and len(todo) == 6
        samples = sample_states(tiny, states, params, filters)
        steps.store_batch(store, states, samples)
        # Staged samples are not "done" until merged; the merge reports what is new.
        run = steps.finish(store)
        assert run == {"samples_added": 24, "pairs_added": _accepted(samples)}
        assert steps.pending(store, state_ids, tiny.name, None, params) == []
        # Other sampling parameters are other samples: those states are pending again.
        assert len(steps.pending(store, state_ids, tiny.name, None, _params(seed=4))) == 6
        # Sampling the same states again (a crashed run retried) adds nothing.
        steps.store_batch(store, states, sample_states(tiny, states, params, filters))
        assert steps.finish(store) == {"samples_added": 0, "pairs_added": 0}
        pairs = store.published("pairs", IDS, None, BUDGET).read_all()
        counts = store.counts(IDS, ["test-source"])
    assert pairs.schema == PAIR_SCHEMA
    assert pairs.num_rows == run["pairs_added"] == counts["pairs"]
    assert counts["samples"] == 24
    assert len(set(pairs.column("pair_id").to_pylist())) == pairs.num_rows


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


def test_select_is_deterministic_subset(tmp_path: Path) -> None:
    with Store(tmp_path / "s.duckdb") as store:
        ids, _ = steps.record(store, _collected())
        chosen = steps.select(store, ids, None)
        expected = sorted(state_id(t.trajectory_id, i) for t in TRAJECTORIES for i in range(3))
        assert chosen == expected
        assert steps.select(store, ids, 2) == chosen[:2]
        assert steps.select(store, ids[:1], None) == sorted(state_id(ids[0], i) for i in range(3))


def test_sampling_is_seeded(tmp_path: Path, tiny: Policy) -> None:
    with Store(tmp_path / "s.duckdb") as store:
        states = _states(store)[:2]
    a = sample_states(tiny, states, _params(k=3, seed=1), FilterConfig())
    b = sample_states(tiny, list(reversed(states)), _params(k=3, seed=1), FilterConfig())
    assert sorted(a, key=lambda s: s.sample_id) == sorted(b, key=lambda s: s.sample_id)
    c = sample_states(tiny, states, _params(k=3, seed=2), FilterConfig())
    assert [s.raw_output for s in a] != [s.raw_output for s in c]
    assert all(s.raw_output.startswith("Action:") for s in a)
    assert {s.verdict for s in a} <= {"accepted", "rejected"}
    assert records_table(a, SAMPLE_SCHEMA).num_rows == 6


def _apple_state(tmp_path: Path, index: int) -> State:
    with Store(tmp_path / "s.duckdb") as store:
        ids, _ = steps.record(store, Collected.of([TRAJECTORIES[0]], []))
        [state] = load_states(store, ids, [state_id(ids[0], index)], BUDGET)
    return state


def test_history_window_fits_the_prompt_budget(tmp_path: Path, tiny: Policy) -> None:
    state = _apple_state(tmp_path, 2)
    full = agent_prompt(state, tiny.tokenizer, 10_000)
    short = agent_prompt(state, tiny.tokenizer, len(full) - 5)
    assert len(short) <= len(full) - 5
    text = tiny.tokenizer.decode(short)
    assert "apple: the fridge is open." in text  # the current observation is kept
    assert "earlier steps omitted" in text
    # Steps the published window already left out are counted in the prompt too.
    trimmed = dataclasses.replace(state, history=state.history[1:], history_omitted=1)
    assert "(1 earlier steps omitted)" in agent_prompt_text(trimmed, tiny.tokenizer, 10_000)


def test_policy_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="never downloads"):
        policy_name(str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="never downloads"):
        load_policy("HuggingFaceTB/SmolLM2-135M-Instruct")
