"""Decision states for a policy: rows of the store's steps with their history windows, as records.

A state is (trajectory, step index); its text lives once in the store's `steps` table, and a
state row (instruction, bounded history, observation, expert action) is assembled when needed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from actforge.pipelines.store.database import Store
from actforge.schemas import State, states_from_table


def load_states(
    store: Store, trajectory_ids: Sequence[str], state_ids: Sequence[str], history_chars: int
) -> list[State]:
    """These states as records, in the order of `state_ids`, with their admissible actions."""
    rows = store.published("states", trajectory_ids, None, history_chars, state_ids=state_ids).read_all()
    admissible = store.admissible(state_ids)
    states = {s.state_id: s for s in states_from_table(rows)}
    return [dataclasses.replace(states[i], admissible=admissible[i]) for i in state_ids]
