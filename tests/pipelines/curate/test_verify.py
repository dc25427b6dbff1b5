"""Verified alternatives on the real engines: what an action does in a stored state, and `--verify`
in a build (stored once per (state, action), published as columns, `--drop-outcome` as `not_worse`)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import datasets
import pyarrow as pa
import pytest

from actforge.pipelines.config import BuildConfig
from actforge.pipelines.curate.verify import plan, verify, verify_each
from actforge.schemas.vocab import OUTCOMES
from tests.support.factories import EXAMPLES, expert_paths

TWX_SMALL = "twx:twc[numLocations=1,numItemsToPutAway=2]@train:2"
NATIVE = EXAMPLES / "native.jsonl"


def _batch(spec: str) -> tuple[pa.Table, dict[str, list[str]]]:
    """Every state of the spec's trajectories with the expert's action and stand-ins for sampled
    alternatives (the expert's previous and next actions, two of the engine's valid actions,
    nonsense, an ambiguous or unknown "open door", "look around"), the rows in a scrambled but
    fixed order; and each trajectory's expert actions."""
    steps, prefixes = expert_paths(spec)
    items = []
    for step in steps:
        path, index = prefixes[step["trajectory_id"]], step["step_index"]
        near = [path[i] for i in (index - 1, index + 1) if 0 <= i < len(path)]
        valid = sorted(step["admissible"] or [])[:2]
        tried = [step["action"], *near, *valid, "fly to the moon", "open door", "look around"]
        keys = {k: step[k] for k in ("state_id", "trajectory_id", "step_index")}
        items += [keys | {"action": action} for action in dict.fromkeys(tried)]
    return pa.Table.from_pylist(items[::-1][1::2] + items[::-1][::2]), prefixes


@pytest.mark.parametrize(
    ("spec", "pools"),
    [(TWX_SMALL, (0, 2)), ("scienceworld:find-plant@train:1", (1,))],
    ids=["twx", "scienceworld"],
)
@pytest.mark.slow
def test_walking_each_trajectory_once_gives_the_rows_of_a_replay_per_action(
    spec: str, pools: tuple[int, ...]
) -> None:
    items, prefixes = _batch(spec)
    reference = verify_each(spec, items, prefixes).to_pylist()
    outcomes = Counter(row["outcome"] for row in reference)
    assert len(outcomes) >= 3 and outcomes["invalid"] < len(reference) / 2  # a comparison that can fail
    for pool in pools:
        assert verify(spec, items, prefixes, pool=pool).to_pylist() == reference, pool


def test_the_plan_walks_each_trajectory_once_and_cuts_the_longest_for_more_engines() -> None:
    prefixes = {"a": ["go north", "take key", "open door", "go east"], "b": ["look"]}
    tried = [("a", 0, "go north"), ("a", 3, "go east"), ("a", 1, "go south"), ("a", 1, "take key")]
    tried += [("a", 2, "go north"), ("b", 0, "wait"), ("a", 0, "go north")]
    a = ((0, ("go north",)), (1, ("go south", "take key")), (2, ("go north",)), (3, ("go east",)))
    assert [(job.trajectory_id, job.todo) for job in plan(tried, prefixes)] == [
        ("a", a),
        ("b", ((0, ("wait",)),)),
    ]
    three = plan(tried, prefixes, engines=3)
    assert (
        [(job.trajectory_id, job.todo) for job in three]
        == [
            ("a", a[:3]),  # each half replays 6 steps if every other action leaves the path
            ("a", a[3:]),
            ("b", ((0, ("wait",)),)),
        ]
    )
    assert all(job.path == tuple(prefixes[job.trajectory_id]) for job in three)


def _tried(spec: str, extra: dict[int, list[str]]) -> dict[tuple[int, str, str], str]:
    """(trajectory number, step, action) -> outcome, for every expert action of the spec's
    trajectories and the `extra` actions at those step indexes of the first one."""
    steps, prefixes = expert_paths(spec)
    first = steps[0]["trajectory_id"]
    items = [{k: s[k] for k in ("state_id", "trajectory_id", "step_index", "action")} for s in steps]
    items += [
        {"state_id": s["state_id"], "trajectory_id": first, "step_index": s["step_index"], "action": action}
        for s in steps
        if s["trajectory_id"] == first
        for action in extra.get(s["step_index"], [])
    ]
    verified = verify(spec, pa.Table.from_pylist(items), prefixes).to_pylist()
    order = sorted(prefixes)
    return {
        (order.index(item["trajectory_id"]), item["step_index"], item["action"]): row["outcome"]
        for item, row in zip(items, verified, strict=True)
    }


@pytest.mark.slow
def test_twx_outcomes() -> None:
    outcomes = _tried(TWX_SMALL, {1: ["fly to the moon", "look around", "inventory"]})
    assert set(outcomes.values()) <= set(OUTCOMES)
    extra = {(0, 1, "fly to the moon"), (0, 1, "look around"), (0, 1, "inventory")}
    expert = {key: outcome for key, outcome in outcomes.items() if key not in extra}
    assert "invalid" not in expert.values()  # the expert's own actions are always understood
    assert list(expert.values()).count("progresses") >= 4  # two objects put away per game
    assert outcomes[(0, 1, "fly to the moon")] == "invalid"
    assert outcomes[(0, 1, "look around")] == outcomes[(0, 1, "inventory")] == "no_effect"


@pytest.mark.slow
def test_scienceworld_outcomes() -> None:
    # In find-plant, focusing on anything but the plant ends the task.
    outcomes = _tried("scienceworld:find-plant@train:1", {1: ["focus on picture", "fly to the moon"]})
    assert outcomes[(0, 1, "focus on picture")] == "fails_task"
    assert outcomes[(0, 1, "fly to the moon")] == "invalid"
    expert = [
        o for (_, _, action), o in outcomes.items() if action not in ("focus on picture", "fly to the moon")
    ]
    assert "invalid" not in expert and "fails_task" not in expert and "progresses" in expert


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.usefixtures("prefect_harness", "hf_offline")
def test_verified_build_pays_once_and_drops_by_outcome(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from actforge.flows.build import build
    from actforge.flows.cli import main

    def config(out: str, **changes: object) -> BuildConfig:
        return BuildConfig(
            sources=(TWX_SMALL, str(NATIVE)),  # a live source and a file (not verifiable)
            out=str(tmp_path / out),
            store=str(tmp_path / "s.duckdb"),
            policy=str(tiny_model_dir),
            k=3,
            seed=1,
            verify=True,
            **changes,
        )

    first = build(config("v"))
    rows = [row for split in datasets.load_dataset(str(tmp_path / "v")).values() for row in split]
    assert rows and len(rows) == first["stats"]["pairs"]
    live = [row for row in rows if row["environment"] == "textworld_express"]
    assert live and all(row["outcome"] in OUTCOMES and row["expert_outcome"] in OUTCOMES for row in live)
    assert all(row["expert_outcome"] != "invalid" for row in live)
    assert all(isinstance(row["outcome_observation"], str) for row in live)
    files = [row for row in rows if row["environment"] != "textworld_express"]
    assert files and all(row["outcome"] is None and row["expert_outcome"] is None for row in files)
    tried = {(row["state_id"], row["alternative_action"]) for row in live}
    tried |= {(row["state_id"], row["expert_action"]) for row in live}
    assert first["run"]["verifications_added"] == len(tried)
    # The world_model config: every verified action with the engine's answer, as the pairs record it.
    world = [
        row for split in datasets.load_dataset(str(tmp_path / "v"), "world_model").values() for row in split
    ]
    assert len(world) == len(tried)
    answers = {(row["state_id"], row["tried_action"]): row["completion"][0]["content"] for row in world}
    for row in live:
        assert answers[(row["state_id"], row["alternative_action"])] == row["outcome_observation"]
        assert f"Action: {row['alternative_action']}" in next(
            w["prompt"][1]["content"] for w in world if w["tried_action"] == row["alternative_action"]
        )
    assert {row["side"] for row in world} == {"expert", "alternative"}
    assert {row["environment"] for row in world} == {"textworld_express"}  # files are not verified
    outcomes = first["stats"]["outcomes"]
    assert set(outcomes) == {"textworld_express"}
    assert sum(outcomes["textworld_express"]["alternative"].values()) == len(live)
    assert sum(outcomes["textworld_express"]["expert"].values()) == len(live)

    assert main(["stats", str(tmp_path / "v")]) == 0
    printed = capsys.readouterr().out
    assert "verified outcomes in textworld_express (alternatives / expert actions):" in printed
    shown = outcomes["textworld_express"]
    for outcome, n in shown["alternative"].items():
        assert f"    {outcome:<12}{n:>8} /{shown['expert'].get(outcome, 0):>6}" in printed

    again = build(config("v"))  # nothing new: no engine work, the same version
    assert again["run"]["verifications_added"] == 0 and again["version"] == first["version"]

    invalid = sum(row["outcome"] == "invalid" for row in live)
    assert invalid > 0  # a random tiny model says mostly nonsense
    dropped = build(config("d", drop_outcome=("invalid",)))
    assert dropped["run"]["verifications_added"] == 0  # the same store: paid for already
    assert dropped["stats"]["pairs_rejected"] == {"not_worse": invalid}
    assert dropped["stats"]["pairs"] == len(rows) - invalid
    kept = [row for split in datasets.load_dataset(str(tmp_path / "d")).values() for row in split]
    assert len(kept) == len(rows) - invalid and all(row["outcome"] != "invalid" for row in kept)
