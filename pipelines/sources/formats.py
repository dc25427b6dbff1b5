"""The published trajectory formats (ETO, AgentGym, Early Experience messages, native): how a decoded
record is recognised and built into a Trajectory, or refused with a BadRecord naming why.

Reason codes: missing_field, wrong_type, unknown_role, no_action, turn_order (and the action
problems of `text.actions`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from actforge.pipelines.sources.conversation import BadRecord, ParsedConversation, parse_conversation
from actforge.pipelines.sources.records import SourceFile
from actforge.pipelines.text.actions import expert_action_problem
from actforge.schemas import SPLITS, Step, Trajectory
from actforge.schemas.ids import split_for, trajectory_id
from actforge.schemas.vocab import ALFWORLD, GENERIC, SCIENCEWORLD

_ITEM_ENVIRONMENTS: dict[str, str] = {"sciworld": SCIENCEWORLD}
_ALFWORLD_TASK_TYPE = re.compile(r"^([a-z]+(?:_[a-z]+)+)-")
_TYPE_NAMES: dict[type, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    list: "array",
    dict: "object",
}


def detect_format(record: Any) -> str | None:
    """The format a decoded record looks like, or None when it matches none."""
    if not isinstance(record, dict):
        return None
    if "messages" in record:
        return "messages"
    if "conversations" in record:
        return "agentgym" if "item_id" in record else "eto"
    if "steps" in record:
        return "native"
    return None


# --- validation ----------------------------------------------------------------------------------


def _get(obj: dict[str, Any], key: str, types: tuple[type, ...], path: str, optional: bool = False) -> Any:
    """obj[key] checked against `types` (bool is not a number); None is allowed only if optional."""
    name = f"{path}.{key}" if path else key
    if key not in obj:
        if optional:
            return None
        raise BadRecord("missing_field", f"{name} is missing")
    value = obj[key]
    if value is None and optional:
        return None
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        expected = " or ".join(_TYPE_NAMES[t] for t in types)
        raise BadRecord("wrong_type", f"{name} should be {expected}, got {_type_name(value)}")
    return value


def _type_name(value: Any) -> str:
    return "null" if value is None else _TYPE_NAMES.get(type(value), type(value).__name__)


def _record(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRecord("wrong_type", f"record should be object, got {_type_name(value)}")
    return value


def _first_trained(record: dict[str, Any]) -> int | None:
    """The first turn a `loss: true` flag marks as the agent's (AgentInstruct, AgentGym): the turns
    before it, few-shot replies among them, are the prompt. None when no turn carries the flag."""
    flags = [turn.get("loss") for turn in record["conversations"] if isinstance(turn, dict)]
    for i, flag in enumerate(flags):
        if flag is not None and not isinstance(flag, bool):
            got = _type_name(flag)
            raise BadRecord("wrong_type", f"conversations[{i}].loss should be boolean, got {got}")
    return next((i for i, flag in enumerate(flags) if flag), None)


def _turns(record: dict[str, Any], key: str, role_key: str, text_key: str) -> list[tuple[str, str]]:
    turns = _get(record, key, (list,), "")
    result = []
    for i, turn in enumerate(turns):
        path = f"{key}[{i}]"
        if not isinstance(turn, dict):
            raise BadRecord("wrong_type", f"{path} should be object, got {_type_name(turn)}")
        result.append((_get(turn, role_key, (str,), path), _get(turn, text_key, (str,), path)))
    return result


# --- building ------------------------------------------------------------------------------------


def _trajectory(
    file: SourceFile,
    task: str,
    environment: str,
    instruction: str,
    steps: tuple[Step, ...],
    final_observation: str | None = None,
    success: bool | None = None,
    reward: float | None = None,
    split: str | None = None,
) -> Trajectory:
    for i, step in enumerate(steps):
        problem = expert_action_problem(step.action)
        if problem is not None:
            raise BadRecord(problem[0], f"step {i}: {problem[1]}")
    tid = trajectory_id(task, environment, instruction, steps)
    return Trajectory(
        trajectory_id=tid,
        source=file.source,
        task=task,
        environment=environment,
        split=split if split in SPLITS else split_for(tid),
        instruction=instruction,
        steps=steps,
        final_observation=final_observation,
        success=success,
        reward=reward,
    )


def _from_conversation(
    file: SourceFile,
    task: str,
    environment: str,
    conversation: ParsedConversation,
    reward: float | None = None,
) -> Trajectory:
    return _trajectory(
        file,
        task,
        environment,
        conversation.instruction,
        conversation.steps,
        conversation.final_observation,
        success=None if reward is None else reward >= 1.0,
        reward=reward,
    )


def _build_eto(value: Any, file: SourceFile) -> Trajectory:
    record = _record(value)
    record_id = _get(record, "id", (str, int), "")
    turns = _turns(record, "conversations", "from", "value")
    conversation = parse_conversation(turns, _first_trained(record))
    environment = file.environment
    match = _ALFWORLD_TASK_TYPE.match(str(record_id)) if environment == ALFWORLD else None
    return _from_conversation(file, match.group(1) if match else environment, environment, conversation)


def _build_agentgym(value: Any, file: SourceFile) -> Trajectory:
    record = _record(value)
    item_id = _get(record, "item_id", (str,), "")
    turns = _turns(record, "conversations", "from", "value")
    conversation = parse_conversation(turns, _first_trained(record))
    reward = _get(record, "reward", (int, float), "", optional=True)
    environment = _item_environment(item_id)
    return _from_conversation(
        file, environment, environment, conversation, None if reward is None else float(reward)
    )


def _item_environment(item_id: str) -> str:
    prefix = item_id.rpartition("_")[0].lower()
    return _ITEM_ENVIRONMENTS.get(prefix, prefix) or GENERIC


def _build_messages(value: Any, file: SourceFile) -> Trajectory:
    record = _record(value)
    task = _get(record, "task", (str,), "", optional=True)
    conversation = parse_conversation(_turns(record, "messages", "role", "content"))
    environment = file.environment
    return _from_conversation(file, task or environment, environment, conversation)


def _build_native(value: Any, file: SourceFile) -> Trajectory:
    record = _record(value)
    task = _get(record, "task", (str,), "")
    instruction = _get(record, "instruction", (str,), "")
    steps = tuple(
        _native_step(step, f"steps[{i}]") for i, step in enumerate(_get(record, "steps", (list,), ""))
    )
    if not steps:
        raise BadRecord("no_action", "steps is empty")
    reward = _get(record, "reward", (int, float), "", optional=True)
    return _trajectory(
        file,
        task,
        _get(record, "environment", (str,), "", optional=True) or GENERIC,
        instruction,
        steps,
        final_observation=_get(record, "final_observation", (str,), "", optional=True),
        success=_get(record, "success", (bool,), "", optional=True),
        reward=None if reward is None else float(reward),
        split=_get(record, "split", (str,), "", optional=True),
    )


def _native_step(step: Any, path: str) -> Step:
    if not isinstance(step, dict):
        raise BadRecord("wrong_type", f"{path} should be object, got {_type_name(step)}")
    admissible = _get(step, "admissible", (list,), path, optional=True)
    if admissible is not None and not all(isinstance(a, str) for a in admissible):
        raise BadRecord("wrong_type", f"{path}.admissible should be array of strings")
    return Step(
        observation=_get(step, "observation", (str,), path),
        action=_get(step, "action", (str,), path),
        admissible=None if admissible is None else tuple(admissible),
    )


BUILDERS: dict[str, Callable[[Any, SourceFile], Trajectory]] = {
    "native": _build_native,
    "eto": _build_eto,
    "agentgym": _build_agentgym,
    "messages": _build_messages,
}
