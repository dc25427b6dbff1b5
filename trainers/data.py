"""Training datasets from a published OUT folder (a local path or a Hub repo id).

The "act" config is TRL-ready as published. The agent datasets are built from the pair rows of the
default config: several pairs share one state, so states are deduplicated, keeping the first row
of each state in published order (sorted by trajectory, step, pair), which makes the order stable.
"""

from __future__ import annotations

from typing import Any

import datasets

from pipelines.prompts import ACTION_PREFIX, agent_messages
from schemas import state_from_row

DEFAULT_HISTORY_STEPS = 6
STATE_COLUMNS = ["prompt", "expert_action", "environment"]


def act_dataset(data: str, split: str) -> datasets.Dataset:
    """The "act" config exactly as published: GRPOTrainer takes it without any mapping."""
    return datasets.load_dataset(data, "act", split=split)


def states_dataset(data: str, split: str, max_history_steps: int = DEFAULT_HISTORY_STEPS) -> datasets.Dataset:
    """One row per unique state: the agent's conversational prompt, the expert action, the environment.

    The agent is expected to answer `Action: <action>`; `action_reward` parses that.
    """
    pairs = datasets.load_dataset(data, "default", split=split)
    first: dict[str, int] = {}
    for index, state_id in enumerate(pairs["state_id"]):
        first.setdefault(state_id, index)
    unique = pairs.select(sorted(first.values()))

    def to_state(row: dict[str, Any]) -> dict[str, Any]:
        state = state_from_row(row)
        window = min(max_history_steps, len(state.history))
        return {"prompt": agent_messages(state, window)}

    drop = [name for name in unique.column_names if name not in STATE_COLUMNS]
    return unique.map(to_state, remove_columns=drop).select_columns(STATE_COLUMNS)


def sft_dataset(data: str, split: str, max_history_steps: int = DEFAULT_HISTORY_STEPS) -> datasets.Dataset:
    """The same states as prompt/completion conversations, so SFTTrainer trains on the completion only."""
    states = states_dataset(data, split, max_history_steps)
    return states.map(
        lambda row: {
            "completion": [{"role": "assistant", "content": f"{ACTION_PREFIX} {row['expert_action']}"}]
        },
        remove_columns=["expert_action", "environment"],
    )
