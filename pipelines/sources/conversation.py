"""Turn a chat-style expert conversation into trajectory steps.

ETO, AgentGym and Early Experience files all store an episode as a conversation: an opening
(general instructions, maybe an "OK" acknowledgement, then the task with the first observation),
followed by assistant actions alternating with user observations. The formats differ only in
field names and role spellings, so the turn logic lives here once.

Turn indices in quarantine details are 0-based positions in the record's turn list.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from actforge.pipelines.text.actions import parse_action
from actforge.schemas import Step

ROLES: dict[str, str] = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
}

# parse_action accepts a bare line as an action, so "OK" would count; the opening ends only at an
# assistant turn that marks its action explicitly.
_ACTION_MARKER = re.compile(r"<action>|(?:^|\n)\s*\**action\**\s*:", re.IGNORECASE)
_OBSERVATION_LABEL = re.compile(r"^\s*observation\s*:\s*", re.IGNORECASE)
_INSTRUCTION_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"Instruction:\s*\[SEP\]\s*(.+?)\s*\[SEP\]", re.IGNORECASE),
    re.compile(r"Task Description:\s*(.+)", re.IGNORECASE),
    re.compile(r"Your task is to:\s*(.+)", re.IGNORECASE),
    re.compile(r"Instruction:\s*(.+)", re.IGNORECASE),
)


class BadRecord(Exception):
    """A record that must be quarantined: `reason` is a short code, `detail` says where and why."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class ParsedConversation:
    """The trajectory content of a conversation; ids and metadata are the caller's business."""

    instruction: str
    steps: tuple[Step, ...]
    final_observation: str | None


def normalise_role(role: str, index: int) -> str:
    """system/user/assistant for any known spelling; an unknown role cannot be placed in a turn."""
    normalised = ROLES.get(role.strip().lower())
    if normalised is None:
        raise BadRecord("unknown_role", f"turn {index}: unknown role {role!r}")
    return normalised


def strip_observation_label(text: str) -> str:
    """Observation text without the leading "Observation:" label that prompts add."""
    return _OBSERVATION_LABEL.sub("", text, count=1).strip()


def extract_instruction(task_text: str) -> str:
    """The task sentence of a task turn, else its first non-empty line."""
    for pattern in _INSTRUCTION_PATTERNS:
        match = pattern.search(task_text)
        if match is not None and match.group(1).strip():
            return match.group(1).strip()
    return next((line.strip() for line in task_text.splitlines() if line.strip()), "")


def parse_conversation(
    turns: Sequence[tuple[str, str]], first_action: int | None = None
) -> ParsedConversation:
    """Steps, instruction and final observation of `(role, text)` turns; raises BadRecord.
    `first_action` is the agent's first turn where the format marks it (loss flags); otherwise it is
    the first assistant turn that holds an action."""
    roles = [normalise_role(role, i) for i, (role, _) in enumerate(turns)]
    texts = [text for _, text in turns]
    if first_action is None:
        first_action = _first_action_turn(roles, texts)
    elif roles[first_action] != "assistant":
        raise BadRecord("turn_order", f"turn {first_action}: the first trained turn is not the agent's")
    task_turn = _task_turn(roles, first_action)
    task_text = strip_observation_label(texts[task_turn])
    steps, final_observation = _steps(roles, texts, task_turn, task_text)
    return ParsedConversation(extract_instruction(task_text), steps, final_observation)


def _first_action_turn(roles: list[str], texts: list[str]) -> int:
    for i, (role, text) in enumerate(zip(roles, texts, strict=True)):
        if role == "assistant" and _ACTION_MARKER.search(text) and parse_action(text) is not None:
            return i
    raise BadRecord("no_action", "no assistant turn contains an action")


def _task_turn(roles: list[str], first_action: int) -> int:
    """The last user turn of the opening: it holds the task and the first observation."""
    for i in range(first_action - 1, -1, -1):
        if roles[i] == "user":
            return i
    raise BadRecord("turn_order", f"turn {first_action}: assistant action before any user turn")


def _steps(
    roles: list[str], texts: list[str], task_turn: int, first_observation: str
) -> tuple[tuple[Step, ...], str | None]:
    """Walk the strictly alternating assistant/user turns after the opening."""
    steps: list[Step] = []
    observation = first_observation
    expected = "assistant"
    for i in range(task_turn + 1, len(roles)):
        if roles[i] != expected:
            raise BadRecord("turn_order", f"turn {i}: expected {expected} turn, got {roles[i]}")
        if expected == "assistant":
            action = parse_action(texts[i])
            if action is None:
                raise BadRecord("no_action", f"turn {i}: assistant turn has no action")
            steps.append(Step(observation=observation, action=action))
            expected = "user"
        else:
            observation, expected = strip_observation_label(texts[i]), "assistant"
    # A conversation ending on a user turn carries the observation after the last action.
    final_observation = observation if expected == "assistant" else None
    return tuple(steps), final_observation
