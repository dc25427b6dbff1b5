"""Pair records for tests that need a published dataset without running a build."""

from __future__ import annotations

from pipelines.ids import pair_id, sample_id, state_id
from schemas import Pair, Step


def make_pair(
    trajectory: str,
    split: str,
    steps: tuple[Step, ...],
    index: int,
    alternative: str,
    sample_index: int = 0,
    instruction: str = "Your task is to find a non-living thing.",
    source: str = "scienceworld",
) -> Pair:
    """The pair (state `index` of `steps`, its expert action, `alternative`) with real content ids."""
    state = state_id(trajectory, index)
    step = steps[index]
    return Pair(
        pair_id=pair_id(state, step.action, alternative),
        state_id=state,
        sample_id=sample_id(state, "policy", "params", sample_index),
        trajectory_id=trajectory,
        source=source,
        task="find-non-living-thing",
        environment="scienceworld",
        split=split,
        step_index=index,
        instruction=instruction,
        history=steps[:index],
        observation=step.observation,
        expert_action=step.action,
        alternative_action=alternative,
        policy="policy",
    )
