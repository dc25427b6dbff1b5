"""Accepted samples of a state become critique pairs (state, expert action, alternative)."""

from __future__ import annotations

from collections.abc import Iterable

from pipelines.actions import normalise
from pipelines.filters import ACCEPTED
from pipelines.ids import pair_id
from schemas import Pair, Sample, State


def make_pairs(state: State, samples: Iterable[Sample]) -> list[Pair]:
    return [
        Pair(
            pair_id=pair_id(state.state_id, state.expert_action, normalise(s.action, state.environment)),
            state_id=state.state_id,
            sample_id=s.sample_id,
            trajectory_id=state.trajectory_id,
            source=state.source,
            task=state.task,
            environment=state.environment,
            split=state.split,
            step_index=state.step_index,
            instruction=state.instruction,
            history=state.history,
            observation=state.observation,
            expert_action=state.expert_action,
            alternative_action=s.action,
            policy=s.policy,
        )
        for s in samples
        if s.verdict == ACCEPTED and s.state_id == state.state_id
    ]
