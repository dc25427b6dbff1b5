"""ScienceWorld source: spec parsing without the engine, then one real-engine run (the JVM is slow)."""

from __future__ import annotations

import json

import pytest

from actforge.pipelines.sources.scienceworld import TASK_NAMES, Request, collect_scienceworld, parse_spec
from actforge.pipelines.sources.selectors import IdRange, SplitHead, split_of, variation_ids
from actforge.schemas.ids import episode_id
from tests.support.factories import Records, records_of

SPLITS = {"train": (0, 1, 2, 3), "dev": (4, 5), "test": (6, 7)}


def test_default_variations_are_first_train_one() -> None:
    assert parse_spec("scienceworld:boil") == Request(("boil",), (SplitHead("train", 1),))


def test_parses_ids_ranges_and_split_heads() -> None:
    request = parse_spec("scienceworld:find-plant, boil,find-plant@3,5-7,dev:2,test:10")
    assert request.tasks == ("find-plant", "boil")
    assert request.selectors == (IdRange(3, 3), IdRange(5, 7), SplitHead("dev", 2), SplitHead("test", 10))


def test_all_expands_to_every_engine_task() -> None:
    assert parse_spec("scienceworld:all@0").tasks == TASK_NAMES
    assert len(TASK_NAMES) == 30


def test_unknown_task_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="find-non-living-thing"):
        parse_spec("scienceworld:boil,find-unicorn")


@pytest.mark.parametrize("variations", ["5-3", "a", "1-", "-2", "1,,2", "valid:2", "train:0", "train:x"])
def test_malformed_variations_raise(variations: str) -> None:
    with pytest.raises(ValueError):
        parse_spec(f"scienceworld:boil@{variations}")


def test_variation_ids_follow_spec_order_once_each() -> None:
    selectors = (SplitHead("dev", 5), IdRange(1, 2), SplitHead("train", 2), IdRange(40, 40))
    assert variation_ids(selectors, SPLITS) == [4, 5, 1, 2, 0, 40]


def test_split_of_uses_engine_lists() -> None:
    assert [split_of(v, SPLITS) for v in (0, 4, 7, 8)] == ["train", "validation", "test", None]


@pytest.fixture(scope="module")
def collected() -> Records:
    return records_of(collect_scienceworld("scienceworld:find-non-living-thing@0,300", progress=False))


@pytest.mark.slow  # the JVM
def test_gold_replay_of_real_engine(collected: Records) -> None:
    [trajectory] = collected.trajectories
    assert (trajectory.task, trajectory.environment, trajectory.split) == (
        "find-non-living-thing",
        "scienceworld",
        "train",
    )
    assert trajectory.source == "scienceworld:find-non-living-thing@0,300"
    assert (trajectory.success, trajectory.reward) == (True, 1.0)
    assert len(trajectory.steps) == 5
    assert trajectory.steps[0].observation.startswith("This room is called")
    assert all(step.observation and step.action and step.admissible is None for step in trajectory.steps)
    assert trajectory.final_observation
    assert "non-living thing" in trajectory.instruction
    # Live text varies between runs, so the id is the episode's: task, variation, simplification.
    expected_id = episode_id(
        "scienceworld", "find-non-living-thing", {"variation": 0, "simplification": "easy"}
    )
    assert trajectory.trajectory_id == expected_id


@pytest.mark.slow  # the JVM
def test_out_of_range_variation_is_quarantined(collected: Records) -> None:
    [record] = collected.quarantined
    assert (record.reason, record.position) == ("no_such_variation", "find-non-living-thing@300")
    assert json.loads(record.raw) == {"task": "find-non-living-thing", "variation": 300, "gold": []}
