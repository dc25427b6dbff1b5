"""The `world_model` config (with `--verify`): Early Experience's implicit world modelling. Each action
tried in the live engine, the expert's and each alternative, becomes a prompt that shows the state and
the action and asks what the environment answers; the engine's answer is the completion."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from actforge.pipelines.text.prompts import ACTION_PREFIX, few_shot_for
from actforge.schemas import WORLD_MODEL_SCHEMA
from actforge.schemas.vocab import ALTERNATIVE, EXPERT, omitted_steps


def world_messages(state: Mapping[str, Any], action: str) -> list[dict[str, str]]:
    """The state (task, its published history window, observation) and an action, as a question."""
    title = few_shot_for(state["environment"]).title
    lines = [f"Task: {state['instruction']}"]
    if state["history_omitted"]:
        lines.append(omitted_steps(state["history_omitted"]))
    for step in state["history"]:
        lines += [f"Observation: {step['observation']}", f"{ACTION_PREFIX} {step['action']}"]
    lines += [f"Observation: {state['observation']}", f"{ACTION_PREFIX} {action}"]
    system = (
        f"You model {title}. Given the task, what happened so far and the next action, answer with "
        "exactly what the environment says after that action."
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n".join(lines)}]


def world_model_table(states: pa.Table, tried: pa.Table) -> pa.Table:
    """One row per action tried in each state (`tried`: state_id, action, outcome_observation), in
    the states' order, the expert's action first, then the alternatives by text."""
    by_state: dict[str, list[dict[str, Any]]] = {}
    for row in tried.to_pylist():
        if row["outcome_observation"] is not None:
            by_state.setdefault(row["state_id"], []).append(row)
    ids = ("state_id", "trajectory_id", "task", "environment", "split")
    rows = []
    for state in states.to_pylist():
        answers = by_state.get(state["state_id"], [])
        for answer in sorted(answers, key=lambda a: (a["action"] != state["expert_action"], a["action"])):
            side = EXPERT if answer["action"] == state["expert_action"] else ALTERNATIVE
            rows.append(
                {name: state[name] for name in ids}
                | {
                    "side": side,
                    "tried_action": answer["action"],
                    "prompt": world_messages(state, answer["action"]),
                    "completion": [{"role": "assistant", "content": answer["outcome_observation"]}],
                }
            )
    return pa.Table.from_pylist(rows, schema=WORLD_MODEL_SCHEMA)
