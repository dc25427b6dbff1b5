"""ACT's critic task: seeded slot balance, prompt rendering that never leaks the slot, answer parsing."""

from __future__ import annotations

import pyarrow as pa
import pytest

from actforge.pipelines.text.critic import (
    act_table,
    critic_messages,
    critic_prompt_text,
    parse_answer,
    parse_tagged,
    slot_actions,
)
from tests.support.tiny_model import CHAT_TEMPLATE

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


def test_act_table_holds_both_orders_of_every_pair_adjacent() -> None:
    pairs = [
        {**ROW, "pair_id": "p0", "state_id": "s0", "trajectory_id": "t", "task": "boil", "split": "train"},
        {
            **ROW,
            "pair_id": "p1",
            "state_id": "s0",
            "trajectory_id": "t",
            "task": "boil",
            "split": "train",
            "alternative_action": "look around",
        },
    ]
    table = act_table(pa.Table.from_pylist(pairs)).to_pylist()
    assert [(r["pair_id"], r["expert_slot"]) for r in table] == [("p0", 1), ("p0", 2), ("p1", 1), ("p1", 2)]
    first, second = table[0]["prompt"][1]["content"], table[1]["prompt"][1]["content"]
    assert "Action 1: move metal pot to stove\nAction 2: eat metal pot" in first
    assert "Action 1: eat metal pot\nAction 2: move metal pot to stove" in second


def test_prompt_from_one_row_holds_the_state_and_both_actions() -> None:
    system, user = critic_messages(ROW, *slot_actions(ROW, 2))
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
def test_parse_tagged(text: str, slot: int | None) -> None:
    assert parse_tagged(text) == slot


@pytest.mark.parametrize(
    ("completion", "direct", "reason"),
    [
        ("1", 1, None),  # direct: the digit right after the prompt's <answer>
        (" 2</answer>", 2, None),
        ("2\n", 2, None),
        ("12", None, None),  # not a slot
        ("3", None, None),
        ("", None, None),
        ("one", None, None),
        ("Action 2 heats the pot.\n<answer>2", None, 2),  # reason: after the harness's tag
        ("Both look fine <answer>1</answer> maybe\n<answer>2", None, 2),  # the last tag counts
        ("I pick 1", None, None),  # no tag: reasoning that never answered
        ("thinking<answer>", None, None),
        ("thinking<answer>7", None, None),
    ],
)
def test_parse_answer_per_protocol(completion: str, direct: int | None, reason: int | None) -> None:
    assert parse_answer(completion, "direct") == direct
    assert parse_answer(completion, "reason") == reason


def test_critic_prompt_text_opens_the_answer_for_direct_only() -> None:
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.BPE()))
    tokenizer.chat_template = CHAT_TEMPLATE
    messages = critic_messages(ROW, *slot_actions(ROW, 1))
    direct = critic_prompt_text(tokenizer, messages, "direct")
    reason = critic_prompt_text(tokenizer, messages, "reason")
    assert direct == reason + "<answer>" and reason.endswith("<|im_start|>assistant\n")
    with pytest.raises(ValueError, match="protocol"):
        critic_prompt_text(tokenizer, messages, "free")
