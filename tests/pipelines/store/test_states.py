"""History windows: a state's history is the latest steps whose text fits the budget, and the
published rows carry the same window."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from actforge.pipelines import steps
from actforge.pipelines.sources.base import Collected
from actforge.pipelines.store.database import Store
from actforge.pipelines.store.states import load_states
from actforge.schemas import STATE_SCHEMA, Step
from tests.support.factories import make_trajectory, publish_pairs

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
