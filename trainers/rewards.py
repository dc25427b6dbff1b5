"""GRPO reward functions with TRL's signature: completions plus dataset columns as keyword lists.

Prompts are text (see `trainers.data`), so completions are strings; a list of messages is accepted
too, for users who feed the conversational "act" config to TRL directly.

The critic has two rewards and two zero-weight companions that only show in TRL's logs:
- `critic`: 1.0 when the answer names the expert's slot, else 0.0.
- `slot_balance`: every batch holds each pair in both orders, so a critic that answers one slot more
  than half the time is wrong by construction. Pure position bias earns the same `critic` reward
  whichever slot it prefers, so in expectation GRPO does not push against it and sampling noise
  walks the model onto one slot (measured: docs/RESULTS.md). This reward gives an answer
  0.5 - (share of the batch's answers naming the same slot), and -0.5 to no answer; with weight
  BALANCE_WEIGHT it never outweighs being right.
- `answers_slot_1`, `answers_slot_2`: the share of completions naming each slot (weight 0), logged
  as `rewards/answers_slot_1/mean`, so a collapse shows while it happens.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from actforge.pipelines.text.actions import normalise, parse_action
from actforge.pipelines.text.critic import SLOTS, check_protocol, parse_answer
from actforge.pipelines.text.prompts import ACTION_PREFIX

BALANCE_WEIGHT = 0.5
Completion = str | Sequence[dict[str, Any]]
RewardFunc = Callable[..., list[float]]


def completion_text(completion: Completion) -> str:
    """The text of a completion: the string itself, or the last assistant message's content."""
    if isinstance(completion, str):
        return completion
    for message in reversed(completion):
        if message.get("role", "assistant") == "assistant":
            return message.get("content") or ""
    return ""


def critic_rewards(protocol: str) -> tuple[list[RewardFunc], list[float]]:
    """The critic's reward functions for `protocol` and their weights (TRL's `reward_weights`)."""
    check_protocol(protocol)

    def critic(completions: list[Completion], expert_slot: list[int], **kwargs: Any) -> list[float]:
        """1.0 when the answer names the expert's slot; anything else (other slot, no answer) 0.0."""
        return [
            1.0 if parse_answer(completion_text(c), protocol) == int(slot) else 0.0
            for c, slot in zip(completions, expert_slot, strict=True)
        ]

    def slot_balance(completions: list[Completion], **kwargs: Any) -> list[float]:
        """0.5 - the batch's share of answers naming this answer's slot; -0.5 for no answer."""
        answers = [parse_answer(completion_text(c), protocol) for c in completions]
        share = {slot: answers.count(slot) / len(answers) for slot in SLOTS}
        return [-0.5 if a is None else 0.5 - share[a] for a in answers]

    def answers(slot: int) -> RewardFunc:
        def share(completions: list[Completion], **kwargs: Any) -> list[float]:
            return [float(parse_answer(completion_text(c), protocol) == slot) for c in completions]

        share.__name__ = f"answers_slot_{slot}"
        return share

    return [critic, slot_balance, *(answers(slot) for slot in SLOTS)], [1.0, BALANCE_WEIGHT, 0.0, 0.0]


def action_reward(
    completions: list[Completion], expert_action: list[str], environment: list[str], **kwargs: Any
) -> list[float]:
    """1.0 when the action (generated after the prompt's "Action:") equals the expert's, normalised."""
    rewards = []
    for completion, expert, env in zip(completions, expert_action, environment, strict=True):
        action = parse_action(ACTION_PREFIX + completion_text(completion))
        same = action is not None and normalise(action, env) == normalise(expert, env)
        rewards.append(1.0 if same else 0.0)
    return rewards
