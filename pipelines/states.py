"""Expert trajectories to self-contained decision states, one per expert step."""

from __future__ import annotations

from collections.abc import Iterable

from pipelines.ids import state_id
from schemas import State, Step, Trajectory


def build_states(trajectory: Trajectory) -> list[State]:
    """State i holds the instruction, steps 0..i-1 (observation, action), and observation i."""
    states = []
    for index, step in enumerate(trajectory.steps):
        history = tuple(Step(s.observation, s.action) for s in trajectory.steps[:index])
        states.append(
            State(
                state_id=state_id(trajectory.trajectory_id, index),
                trajectory_id=trajectory.trajectory_id,
                source=trajectory.source,
                task=trajectory.task,
                environment=trajectory.environment,
                split=trajectory.split,
                step_index=index,
                instruction=trajectory.instruction,
                history=history,
                observation=step.observation,
                expert_action=step.action,
                admissible=step.admissible,
            )
        )
    return states


def states_of(trajectories: Iterable[Trajectory]) -> list[State]:
    return [state for trajectory in trajectories for state in build_states(trajectory)]
