"""GRPO reward functions with TRL's signature: completions plus dataset columns as keyword lists.

Completions are strings for text prompts and lists of messages for conversational prompts (both
the "act" config and the agent states are conversational); every function accepts either.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pipelines.actions import normalise, parse_action
from pipelines.critic import parse_answer

_WELL_FORMED = re.compile(r"<answer>\s*[12]\s*</answer>", re.IGNORECASE)
_OPEN_OR_CLOSE = re.compile(r"</?answer>", re.IGNORECASE)

Completion = str | Sequence[dict[str, Any]]


def completion_text(completion: Completion) -> str:
    """The text of a completion: the string itself, or the last assistant message's content."""
    if isinstance(completion, str):
        return completion
    for message in reversed(completion):
        if message.get("role", "assistant") == "assistant":
            return message.get("content") or ""
    return ""


def critic_reward(completions: list[Completion], expert_slot: list[int], **kwargs: Any) -> list[float]:
    """1.0 when the completion's single answer names the expert's slot; anything else earns 0.0."""
    return [
        1.0 if parse_answer(completion_text(c)) == int(slot) else 0.0
        for c, slot in zip(completions, expert_slot, strict=True)
    ]


def format_reward(completions: list[Completion], **kwargs: Any) -> list[float]:
    """1.0 for exactly one answer tag pair holding 1 or 2, so a model can learn the format first.

    Its weight against `critic_reward` is TRL's own `reward_weights` config field.
    """
    rewards = []
    for completion in completions:
        text = completion_text(completion)
        # Two tags in all (one opening, one closing) and those two enclose a bare 1 or 2.
        ok = len(_OPEN_OR_CLOSE.findall(text)) == 2 and _WELL_FORMED.search(text) is not None
        rewards.append(1.0 if ok else 0.0)
    return rewards


def action_reward(
    completions: list[Completion], expert_action: list[str], environment: list[str], **kwargs: Any
) -> list[float]:
    """1.0 when the parsed action equals the expert's after normalisation (aliases included)."""
    rewards = []
    for completion, expert, env in zip(completions, expert_action, environment, strict=True):
        action = parse_action(completion_text(completion))
        same = action is not None and normalise(action, env) == normalise(expert, env)
        rewards.append(1.0 if same else 0.0)
    return rewards
