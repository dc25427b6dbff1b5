"""The `preference` config: each pair as TRL's conversational preference row, so `DPOTrainer` and
`RewardTrainer` take the pairs as they are: `prompt` is the agent prompt of the state (what the
policy saw when it sampled), `chosen` the expert's action and `rejected` the alternative, each as
the agent's reply."""

from __future__ import annotations

import pyarrow as pa

from actforge.pipelines.text.prompts import acted, agent_messages
from actforge.schemas import PREFERENCE_SCHEMA, states_from_table


def preference_table(pairs: pa.Table) -> pa.Table:
    """One preference row per pair row, in the pairs' order."""
    states = states_from_table(pairs)
    ids = ("pair_id", "state_id", "trajectory_id", "task", "environment", "split")
    rows = [
        {name: row[name] for name in ids}
        | {
            "prompt": agent_messages(state),
            "chosen": acted(row["expert_action"]),
            "rejected": acted(row["alternative_action"]),
        }
        for state, row in zip(states, pairs.to_pylist(), strict=True)
    ]
    return pa.Table.from_pylist(rows, schema=PREFERENCE_SCHEMA)
