"""ACT's critic task: seeded slot balance, prompt rendering that never leaks the slot, answer parsing."""

from __future__ import annotations

import pytest

from pipelines.critic import critic_example, critic_messages, expert_slots, parse_answer, slot_actions
from pipelines.ids import content_hash

ROW = {
    "pair_id": "p0",
    "environment": "scienceworld",
    "instruction": "Your task is to boil water.",
    "history": [
        {"observation": "You are in the hallway.", "action": "go to kitchen"},
        {"observation": "You are in the kitchen. You see a stove.", "action": "pick up metal pot"},
    ],
    "observation": "You hold a metal pot. The stove is off.",
    "expert_action": "move metal pot to stove",
    "alternative_action": "eat metal pot",
}


@pytest.mark.parametrize("n", [100, 101, 137, 400])
def test_slots_are_seeded_and_balanced(n: int) -> None:
    ids = [content_hash("pair", i) for i in range(n)]
    slots = expert_slots(ids)
    assert abs(slots.count(1) - slots.count(2)) <= 1
    assert 0.45 <= slots.count(1) / n <= 0.55
    # Reproducible and independent of row order.
    by_id = dict(zip(ids, slots, strict=True))
    assert dict(zip(ids[::-1], expert_slots(ids[::-1]), strict=True)) == by_id
    # Another seed reshuffles the slots.
    assert expert_slots(ids, seed=1) != slots


def test_prompt_from_one_row_holds_the_state_and_both_actions() -> None:
    example = critic_example(ROW, 2)
    assert example["expert_slot"] == 2
    system, user = example["prompt"]
    assert system["role"] == "system" and user["role"] == "user"
    assert "<answer>1</answer>" in system["content"]
    content = user["content"]
    for text in (ROW["instruction"], ROW["observation"], "go to kitchen", "You are in the hallway."):
        assert text in content
    a1, a2 = slot_actions(ROW, 2)
    assert (a1, a2) == (ROW["alternative_action"], ROW["expert_action"])
    assert f"Action 1: {a1}\nAction 2: {a2}" in content
    assert slot_actions(ROW, 1) == (ROW["expert_action"], ROW["alternative_action"])


def test_prompt_never_leaks_the_expert_slot() -> None:
    # The prompt depends on the two actions in slot order only: the same order gives the same prompt
    # whichever of them is the expert's, and no words like "expert" name one of them.
    as_expert = critic_messages(ROW, "eat metal pot", "move metal pot to stove")
    swapped = {**ROW, "expert_action": "eat metal pot", "alternative_action": "move metal pot to stove"}
    assert critic_messages(swapped, "eat metal pot", "move metal pot to stove") == as_expert
    assert "expert_action" not in str(as_expert) and "alternative" not in str(as_expert).lower()


def test_history_window_keeps_recent_steps() -> None:
    long = {
        **ROW,
        "history": [{"observation": f"room {i} " + "x" * 200, "action": f"act {i}"} for i in range(50)],
    }
    content = critic_messages(long, "a", "b", max_history_chars=1000)[1]["content"]
    assert "act 49" in content and "act 0\n" not in content
    assert "earlier steps omitted" in content
    assert len(content) < 2000


@pytest.mark.parametrize(
    ("text", "slot"),
    [
        ("<answer>1</answer>", 1),
        ("I think the second is better. <answer> 2 </answer>", 2),
        ("<think>pot on stove boils water</think>\n<ANSWER>1</ANSWER> done", 1),
        ("<answer>1</answer><answer>2</answer>", None),
        ("<answer>3</answer>", None),
        ("<answer>one</answer>", None),
        ("Action 1", None),
        ("", None),
    ],
)
def test_parse_answer(text: str, slot: int | None) -> None:
    assert parse_answer(text) == slot
