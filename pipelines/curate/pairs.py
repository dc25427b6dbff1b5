"""Accepted samples of a state become critique pairs (state, expert action, alternative)."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from actforge.pipelines.text.actions import normalise
from actforge.schemas import STORED_PAIR_SCHEMA, Sample, State
from actforge.schemas.ids import pair_id
from actforge.schemas.vocab import ACCEPTED


def pairs_table(states: Sequence[State], samples: Sequence[Sample]) -> pa.Table:
    """The store's pair rows (STORED_PAIR_SCHEMA) of the accepted samples of these states."""
    by_id = {s.state_id: s for s in states}
    rows = [
        {
            "pair_id": pair_id(state.state_id, state.expert_action, normalise(s.action, state.environment)),
            "state_id": state.state_id,
            "sample_id": s.sample_id,
            "alternative_action": s.action,
            "policy": s.policy,
        }
        for s in samples
        if s.verdict == ACCEPTED and (state := by_id.get(s.state_id)) is not None
    ]
    return pa.Table.from_pylist(rows, schema=STORED_PAIR_SCHEMA)
