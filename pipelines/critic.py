"""ACT's critic task from one pair row: the prompt, which slot holds the expert, the answer parser.

The expert's slot is fixed by a seeded hash of `pair_id`: within a split, pairs are ranked by that
hash and alternate between slot 1 and slot 2, so the assignment is reproducible and each split is
balanced to within one row (a hash coin per row would drift several points off half on a few
hundred rows). The prompt depends only on the two actions in slot order, so it cannot leak which
one is the expert's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from pipelines.ids import content_hash
from pipelines.prompts import few_shot_for
from schemas import ACT_SCHEMA

CRITIC_VERSION = "critic-v1"
DEFAULT_HISTORY_CHARS = 4000
_ANSWER = re.compile(r"<answer>\s*(.*?)\s*</answer>", re.IGNORECASE | re.DOTALL)


def expert_slots(pair_ids: Sequence[str], seed: int = 0) -> list[int]:
    """1 or 2 for each pair of one split: alternating along the seeded hash order of the ids."""
    order = sorted(range(len(pair_ids)), key=lambda i: content_hash("slot", [seed, pair_ids[i]]))
    slots = [0] * len(pair_ids)
    for rank, index in enumerate(order):
        slots[index] = 1 + rank % 2
    return slots


def slot_actions(row: Mapping[str, Any], slot: int) -> tuple[str, str]:
    """(action 1, action 2) for a pair row with the expert in `slot`."""
    expert, alternative = row["expert_action"], row["alternative_action"]
    return (expert, alternative) if slot == 1 else (alternative, expert)


def _history_text(history: Sequence[Mapping[str, str]], max_chars: int) -> str:
    """The most recent steps that fit `max_chars`, oldest first, saying how many were left out."""
    kept: list[str] = []
    used = 0
    for step in reversed(history):
        text = f"Observation: {step['observation']}\nAction: {step['action']}"
        if used + len(text) > max_chars:
            break
        kept.append(text)
        used += len(text)
    skipped = len(history) - len(kept)
    head = [f"({skipped} earlier steps omitted)"] if skipped else []
    return "\n".join(head + list(reversed(kept))) or "(no earlier steps)"


def critic_messages(
    row: Mapping[str, Any], action_1: str, action_2: str, max_history_chars: int = DEFAULT_HISTORY_CHARS
) -> list[dict[str, str]]:
    """Conversational critic prompt: state, then "Action 1" and "Action 2", answer as <answer>N</answer>."""
    title = few_shot_for(row["environment"]).title
    system = (
        f"You judge the actions of an agent acting in {title}. Given the task, the earlier steps, "
        "the current observation and two candidate actions, decide which action an expert would take "
        "next. Think it through briefly, then give your final answer as <answer>1</answer> or "
        "<answer>2</answer>."
    )
    user = (
        f"Task: {row['instruction']}\n\n"
        f"Earlier steps:\n{_history_text(row['history'], max_history_chars)}\n\n"
        f"Current observation: {row['observation']}\n\n"
        f"Action 1: {action_1}\nAction 2: {action_2}\n\n"
        "Which action is better? Think, then answer with <answer>1</answer> or <answer>2</answer>."
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def critic_example(row: Mapping[str, Any], slot: int, max_history_chars: int = DEFAULT_HISTORY_CHARS) -> dict:
    """TRL-ready fields for one pair row with the expert in `slot`: `prompt` and `expert_slot`."""
    action_1, action_2 = slot_actions(row, slot)
    return {"prompt": critic_messages(row, action_1, action_2, max_history_chars), "expert_slot": slot}


def parse_answer(text: str) -> int | None:
    """The slot a completion names: exactly one <answer> tag holding 1 or 2, else None."""
    answers = _ANSWER.findall(text)
    if len(answers) != 1 or answers[0] not in ("1", "2"):
        return None
    return int(answers[0])


def act_table(pairs: pa.Table, seed: int = 0) -> pa.Table:
    """The "act" config of a published dataset: one critic example per pair row, slots balanced per split."""
    rows = pairs.to_pylist()
    slots: dict[str, int] = {}
    for split in sorted({row["split"] for row in rows}):
        ids = [row["pair_id"] for row in rows if row["split"] == split]
        slots.update(zip(ids, expert_slots(ids, seed), strict=True))
    examples = []
    for row in rows:
        example = critic_example(row, slots[row["pair_id"]])
        examples.append({name: example.get(name, row.get(name)) for name in ACT_SCHEMA.names})
    return pa.Table.from_pylist(examples, schema=ACT_SCHEMA)
