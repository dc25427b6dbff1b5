"""Split hygiene: a prompt repeated across splits is counted, and `leakage="drop"` takes it out of the
held-out splits (and only there)."""

from __future__ import annotations

from pathlib import Path

import datasets
import pytest

from actforge.flows.cli import main
from actforge.schemas import Step
from tests.support.factories import make_trajectory, publish_pairs

pytestmark = pytest.mark.usefixtures("hf_offline")

FIRST = Step("You are in the kitchen. A fridge is here.", "open fridge", ("open fridge", "look"))


def _two_runs_of_one_task() -> list:
    """A train and a test trajectory of the same task that start from the same state."""
    train = make_trajectory("a", "train", (FIRST, Step("Milk is in the fridge.", "take milk")), "get food")
    test = make_trajectory("b", "test", (FIRST, Step("Eggs are in the fridge.", "take eggs")), "get food")
    return [train, test]


def _look(state: object) -> list[str]:
    """The same alternative in every state, as a policy that likes one action would give."""
    return ["look around"]


def test_a_first_state_shared_by_two_splits_is_counted_and_can_be_dropped_from_test(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reported = publish_pairs(tmp_path / "r", _two_runs_of_one_task(), alternatives=_look)
    assert reported["stats"]["leakage"] == {"states_in_several_splits": 2, "pairs_in_several_splits": 2}
    assert reported["splits"] == {"train": 2, "test": 2}

    dropped = publish_pairs(tmp_path / "d", _two_runs_of_one_task(), alternatives=_look, leakage="drop")
    assert dropped["stats"]["leakage"] == {
        "states_in_several_splits": 2,
        "pairs_in_several_splits": 2,
        "states_dropped": 1,
        "pairs_dropped": 1,
    }
    assert dropped["splits"] == {"train": 2, "test": 1}
    test = datasets.load_dataset(str(tmp_path / "d"), split="test")
    assert [(row["trajectory_id"], row["step_index"]) for row in test] == [("b", 1)]
    train = datasets.load_dataset(str(tmp_path / "d"), split="train")
    assert [(row["trajectory_id"], row["step_index"]) for row in train] == [("a", 0), ("a", 1)]
    assert main(["stats", str(tmp_path / "d")]) == 0
    printed = capsys.readouterr().out
    assert "  leakage: states_dropped                 1" in printed
    assert "  leakage: pairs_in_several_splits        2" in printed
    card = (tmp_path / "d" / "README.md").read_text(encoding="utf-8")
    assert "states_dropped: `1`" in card and "states_in_several_splits: `2`" in card
    for config in ("act", "states", "preference"):
        rows = datasets.load_dataset(str(tmp_path / "d"), config, split="test")
        assert {row["state_id"] for row in rows} == {test[0]["state_id"]}, config


def test_no_shared_prompt_no_leakage(tmp_path: Path) -> None:
    runs = _two_runs_of_one_task()
    runs[1] = make_trajectory("b", "test", (Step("Another kitchen.", "open fridge"),), "get food")
    assert publish_pairs(tmp_path / "r", runs, alternatives=_look)["stats"]["leakage"] == {
        "states_in_several_splits": 0,
        "pairs_in_several_splits": 0,
    }
