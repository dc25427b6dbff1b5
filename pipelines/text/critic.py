"""ACT's critic task: the one critic prompt, its answer protocols, and the "act" config of both orders.

Every pair is shown in both orders (expert in slot 1, then in slot 2), so the published data is
exactly balanced and a critic that always answers one slot is right on half the rows and never on
both rows of a pair. The prompt depends only on the two actions in slot order, so it cannot leak
which one is the expert's.

Two answer protocols share that prompt and differ in how the assistant turn begins and ends:
- `direct`: the turn is opened with `<answer>` and the model writes one digit. Small models follow it
  (the base SmolLM2-135M writes 1 or 2 almost always), and it is cheap enough for CPUs.
- `reason`: ACT's shape. The model reasons for a bounded budget; the harness then appends `<answer>`
  (tokens masked from the loss) and the model writes the digit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from actforge.pipelines.text.prompts import few_shot_for, render_chat
from actforge.schemas import ACT_SCHEMA
from actforge.schemas.vocab import omitted_steps

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

CRITIC_VERSION = "critic-v2"
DEFAULT_HISTORY_CHARS = 4000
PROTOCOLS = ("direct", "reason")
# How the critic is trained: `exact` (GRPO's expected update, one-token answers: trainers.exact),
# `grpo` (TRL's sampled GRPO), `auto` (exact for direct, grpo for reason).
OBJECTIVES = ("auto", "exact", "grpo")
ANSWER_OPEN = "<answer>"
SLOTS = (1, 2)
_TAGGED = re.compile(r"<answer>\s*(.*?)\s*</answer>", re.IGNORECASE | re.DOTALL)
_DIGIT = re.compile(r"\s*([12])(?![0-9])")


def slot_actions(row: Mapping[str, Any], slot: int) -> tuple[str, str]:
    """(action 1, action 2) for a pair row with the expert in `slot`."""
    expert, alternative = row["expert_action"], row["alternative_action"]
    return (expert, alternative) if slot == 1 else (alternative, expert)


def _history_text(history: Sequence[Mapping[str, str]], max_chars: int, omitted: int = 0) -> str:
    """The most recent steps that fit `max_chars`, oldest first, saying how many were left out
    (here, and `omitted` already left out of the published row)."""
    kept: list[str] = []
    used = 0
    for step in reversed(history):
        text = f"Observation: {step['observation']}\nAction: {step['action']}"
        if used + len(text) > max_chars:
            break
        kept.append(text)
        used += len(text)
    skipped = omitted + len(history) - len(kept)
    head = [omitted_steps(skipped)] if skipped else []
    return "\n".join(head + list(reversed(kept))) or "(no earlier steps)"


def critic_messages(
    row: Mapping[str, Any], action_1: str, action_2: str, max_history_chars: int = DEFAULT_HISTORY_CHARS
) -> list[dict[str, str]]:
    """Conversational critic prompt: state, then "Action 1" and "Action 2", answer as <answer>N</answer>."""
    title = few_shot_for(row["environment"]).title
    system = (
        f"You judge the actions of an agent acting in {title}. Given the task, the earlier steps, "
        "the current observation and two candidate actions, decide which action an expert would take "
        "next. Give your final answer as <answer>1</answer> or <answer>2</answer>."
    )
    history = _history_text(row["history"], max_history_chars, row.get("history_omitted") or 0)
    user = (
        f"Task: {row['instruction']}\n\n"
        f"Earlier steps:\n{history}\n\n"
        f"Current observation: {row['observation']}\n\n"
        f"Action 1: {action_1}\nAction 2: {action_2}\n\n"
        "Which action is better? Answer with <answer>1</answer> or <answer>2</answer>."
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def critic_prompt_text(
    tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]], protocol: str
) -> str:
    """The critic prompt as the model sees it: chat template, then the protocol's opening."""
    check_protocol(protocol)
    return render_chat(tokenizer, messages) + (ANSWER_OPEN if protocol == "direct" else "")


def check_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown critic protocol {protocol!r}; expected one of {list(PROTOCOLS)}")
    return protocol


def parse_digit(text: str) -> int | None:
    """The slot written right after an opened <answer>: a 1 or 2 not followed by another digit."""
    match = _DIGIT.match(text)
    return int(match.group(1)) if match else None


def parse_answer(completion: str, protocol: str) -> int | None:
    """The slot a protocol's completion names, else None.

    `direct`: the completion follows the prompt's `<answer>`. `reason`: the answer follows the last
    `<answer>` of the completion (the harness's); reasoning without one never answered.
    """
    if check_protocol(protocol) == "direct":
        return parse_digit(completion)
    _, tag, answer = completion.lower().rpartition(ANSWER_OPEN)
    return parse_digit(answer) if tag else None


def parse_tagged(text: str) -> int | None:
    """The slot of free text (no harness): exactly one <answer> tag pair holding 1 or 2, else None."""
    answers = _TAGGED.findall(text)
    if len(answers) != 1 or answers[0] not in ("1", "2"):
        return None
    return int(answers[0])


def act_table(pairs: pa.Table, max_history_chars: int = DEFAULT_HISTORY_CHARS) -> pa.Table:
    """The "act" config: every pair twice, expert in slot 1 then slot 2, rows of a pair adjacent."""
    rows = []
    for row in pairs.to_pylist():
        for slot in SLOTS:
            action_1, action_2 = slot_actions(row, slot)
            prompt = critic_messages(row, action_1, action_2, max_history_chars)
            rows.append({**row, "prompt": prompt, "expert_slot": slot})
    return pa.Table.from_pylist(
        [{name: r[name] for name in ACT_SCHEMA.names} for r in rows], schema=ACT_SCHEMA
    )
