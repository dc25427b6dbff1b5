"""Content-hash ids are stable across runs and versions; states are self-contained."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from actforge.pipelines import steps
from actforge.pipelines.sources.base import Collected
from actforge.pipelines.store.database import Store
from actforge.pipelines.store.states import load_states
from actforge.schemas import Step, Trajectory
from actforge.schemas.ids import content_hash, derive_seed, pair_id, split_for, state_id, trajectory_id

STEPS = (
    Step("You are in the hallway.", "go to kitchen"),
    Step("You are in the kitchen. You see a stove.", "activate stove"),
    Step("The stove is on.", "wait1"),
)


def _trajectory() -> Trajectory:
    tid = trajectory_id("boil", "scienceworld", "boil water", STEPS)
    return Trajectory(tid, "scienceworld:boil@0", "boil", "scienceworld", "train", "boil water", STEPS)


def test_content_hash_is_sha256_of_canonical_json() -> None:
    # Pinned: these values must never change, or every stored id and dedup breaks.
    assert content_hash("x", {"b": 1, "a": [1, "é"]}) == (
        "7f55f8b4e0a906004716133def9b3178e57516688fd01208ad2a5ecc04749031"
    )
    canonical = json.dumps(["x", {"a": [1, "é"], "b": 1}], ensure_ascii=False, separators=(",", ":"))
    assert content_hash("x", {"b": 1, "a": [1, "é"]}) == hashlib.sha256(canonical.encode()).hexdigest()
    assert trajectory_id("boil", "scienceworld", "boil water", [Step("in kitchen", "go to kitchen")]) == (
        "23cfdd61738703777cf49d26038085ed5186b3cb23a8462f085c45330d5ae66d"
    )
    assert state_id("abc", 3) == "8c079604b9c0e19c6ea8bba44103b48e78c40b674af337a202e05fa847d0f74e"
    assert pair_id("s", "e", "a") == "9fb4026cef35283b32217aa6a1e1f25e2c34507a1626e9fd86dab521bd68b0cf"


def test_ids_stable_across_processes() -> None:
    # A fresh interpreter has a different hash() salt; content ids must not notice.
    code = "from actforge.schemas.ids import state_id; print(state_id('abc', 3))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == state_id("abc", 3)


def test_ids_depend_on_content() -> None:
    base = trajectory_id("boil", "scienceworld", "boil water", STEPS)
    assert trajectory_id("boil", "scienceworld", "boil milk", STEPS) != base
    assert trajectory_id("boil", "scienceworld", "boil water", STEPS[:2]) != base
    swapped = (Step(STEPS[0].observation, "go to hallway"), *STEPS[1:])
    assert trajectory_id("boil", "scienceworld", "boil water", swapped) != base
    # Admissible lists are not identity: the same expert behaviour is the same trajectory.
    listed = (Step(STEPS[0].observation, STEPS[0].action, ("look around",)), *STEPS[1:])
    assert trajectory_id("boil", "scienceworld", "boil water", listed) == base


def test_split_and_seed_are_deterministic_and_spread() -> None:
    ids = [content_hash("t", i) for i in range(2000)]
    counts = Counter(split_for(i) for i in ids)
    assert 0.75 < counts["train"] / 2000 < 0.85
    assert 0.07 < counts["validation"] / 2000 < 0.13
    assert 0.07 < counts["test"] / 2000 < 0.13
    assert [split_for(i) for i in ids] == [split_for(i) for i in ids]
    assert derive_seed(0, "a") == derive_seed(0, "a") != derive_seed(1, "a")
    assert 0 <= derive_seed(0, "a") < 2**63


def test_loaded_states_are_self_contained(tmp_path: Path) -> None:
    trajectory = _trajectory()
    with Store(tmp_path / "s.duckdb") as store:
        ids, _ = steps.record(store, Collected.of([trajectory], []))
        wanted = [state_id(trajectory.trajectory_id, i) for i in (2, 0, 1)]  # any order is kept
        states = load_states(store, ids, wanted, 16_000)
    assert [s.state_id for s in states] == wanted
    states = sorted(states, key=lambda s: s.step_index)
    assert [s.step_index for s in states] == [0, 1, 2]
    assert [s.expert_action for s in states] == ["go to kitchen", "activate stove", "wait1"]
    assert [s.observation for s in states] == [s.observation for s in STEPS]
    assert states[0].history == ()
    assert states[2].history == tuple(Step(s.observation, s.action) for s in STEPS[:2])
    assert all(s.history_omitted == 0 for s in states)
    assert all(s.instruction == "boil water" and s.split == "train" for s in states)
    meta = {(s.source, s.task, s.environment) for s in states}
    assert meta == {("scienceworld:boil@0", "boil", "scienceworld")}
    assert len({s.state_id for s in states}) == 3
    assert states[1].state_id == state_id(trajectory.trajectory_id, 1)
