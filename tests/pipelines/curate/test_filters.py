"""Filters: a truth table of outputs against an expert action, and the admissible-action modes."""

from __future__ import annotations

import pytest

from actforge.pipelines.curate.filters import FilterConfig, judge
from actforge.pipelines.text.actions import normalise, parse_action
from actforge.schemas import State


def _state(expert: str = "pick up the metal pot", admissible: tuple[str, ...] | None = None) -> State:
    return State(
        state_id="s",
        trajectory_id="t",
        source="test",
        task="boil",
        environment="scienceworld",
        split="train",
        step_index=0,
        instruction="boil water",
        history=(),
        observation="You are in the kitchen.",
        expert_action=expert,
        admissible=admissible,
    )


@pytest.mark.parametrize(
    ("raw", "action", "verdict", "reason"),
    [
        ("Action: open door to hallway", "open door to hallway", "accepted", "ok"),
        ("Action:   ", "", "rejected", "unparseable"),
        ("   ", "", "rejected", "empty"),
        ("", "", "rejected", "empty"),
        ("Thought: I should look around", "", "rejected", "unparseable"),
        ("Action: " + "x" * 121, "x" * 121, "rejected", "overlong"),
        ("Action: Pick up THE metal pot.", "Pick up THE metal pot.", "rejected", "same_as_expert"),
        ("Action: take metal pot", "take metal pot", "rejected", "same_as_expert"),
        ("Action: get a metal pot", "get a metal pot", "rejected", "same_as_expert"),
        ("Action: go to\x00 kit\ufffdchen", "go to\x00 kit\ufffdchen", "rejected", "garbled"),
        ("<think>hot</think><action>activate stove</action>", "activate stove", "accepted", "ok"),
        ("Thought: hmm\nAction: focus on orange\nObservation: x", "focus on orange", "accepted", "ok"),
    ],
)
def test_truth_table(raw: str, action: str, verdict: str, reason: str) -> None:
    [got] = judge([raw], _state(), FilterConfig())
    assert (got.action, got.verdict, got.reason) == (action, verdict, reason)


def test_duplicates_within_k_after_normalisation() -> None:
    outputs = ["Action: open door", "Action: Open the door!", "Action: look around", "Action: open door"]
    got = [(v.verdict, v.reason) for v in judge(outputs, _state(), FilterConfig())]
    assert got == [
        ("accepted", "ok"),
        ("rejected", "duplicate"),
        ("accepted", "ok"),
        ("rejected", "duplicate"),
    ]


def test_admissible_map_and_require() -> None:
    state = _state(admissible=("open door to hallway", "look around", "pick up metal pot"))
    outputs = ["Action: open the door to hallway", "Action: look aroun", "Action: dance"]
    mapped = judge(outputs, state, FilterConfig(admissible="map"))
    assert [(v.action, v.reason) for v in mapped] == [
        ("open door to hallway", "ok"),
        ("look around", "ok"),
        ("dance", "ok"),
    ]
    required = judge(outputs, state, FilterConfig(admissible="require"))
    assert [(v.action, v.reason) for v in required] == [
        ("open door to hallway", "ok"),
        ("look aroun", "not_admissible"),
        ("dance", "not_admissible"),
    ]
    # With no admissible list for the state, the option has nothing to check against.
    assert judge(["Action: dance"], _state(), FilterConfig(admissible="require"))[0].reason == "ok"


def test_bad_admissible_mode() -> None:
    with pytest.raises(ValueError, match="admissible"):
        FilterConfig(admissible="sometimes")


@pytest.mark.parametrize(
    ("text", "action"),
    [
        ("Thought: x\nAction: go north", "go north"),
        ("Thought:\nneed key\n\nAction:\ntake key", "take key"),
        ("<think>a</think><action>search[tea]</action>", "search[tea]"),
        ("go north\nthen south", "go north"),
        ("Thought: only thinking", None),
        ("", None),
    ],
)
def test_parse_action(text: str, action: str | None) -> None:
    assert parse_action(text) == action


@pytest.mark.parametrize(
    ("a", "b", "env"),
    [
        ("Examine the desk 1", "look at desk 1", "scienceworld"),
        ("Walk to kitchen", "go to kitchen", "scienceworld"),
        ("go kitchen", "go to kitchen", "scienceworld"),
        ("focus orange", "focus on orange", "scienceworld"),
        ("put the apple in the red box", "move apple to red box", "scienceworld"),
        ("drop apple", "put down apple", "scienceworld"),
        ("look", "look around", "scienceworld"),
        ("pick up mug 1 from countertop 1", "take mug 1 from countertop 1", "alfworld"),
        ("click[Buy Now]", "click[buy now]", "webshop"),
    ],
)
def test_normalise_aliases(a: str, b: str, env: str) -> None:
    assert normalise(a, env) == normalise(b, env)


def test_normalise_keeps_distinct_actions_distinct() -> None:
    assert normalise("go to kitchen", "scienceworld") != normalise("go to hallway", "scienceworld")
    assert normalise("search[tea]", "webshop") != normalise("click[tea]", "webshop")
    # "look at X" must not become "look around at X", nor "put down X" a move.
    assert normalise("look at desk", "scienceworld") == "look at desk"
    assert normalise("put down apple", "scienceworld") == "put down apple"
    # Verbs the engine rejects are not aliases of verbs it accepts.
    assert normalise("grab apple", "scienceworld") != normalise("pick up apple", "scienceworld")
