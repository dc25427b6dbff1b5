"""Typed records that flow through the pipeline: source -> states -> samples -> pairs.

Records are frozen dataclasses so a step cannot mutate what an earlier step produced; ids are
content hashes computed in `pipelines.ids`, never random.
"""

from __future__ import annotations

from dataclasses import dataclass

SPLITS: tuple[str, ...] = ("train", "validation", "test")


@dataclass(frozen=True)
class Step:
    """One expert step: what the agent saw, then what it did.

    `observation` is the observation *before* `action` (for step 0 the task's first observation).
    `admissible` lists the actions the environment accepted at that point, when the source knows.
    """

    observation: str
    action: str
    admissible: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Trajectory:
    """One expert episode, normalised from any source format."""

    trajectory_id: str
    source: str
    task: str
    environment: str
    split: str
    instruction: str
    steps: tuple[Step, ...]
    final_observation: str | None = None
    success: bool | None = None
    reward: float | None = None


@dataclass(frozen=True)
class Quarantined:
    """A record that could not become a trajectory, kept whole with where it came from and why."""

    quarantine_id: str
    source: str
    position: str
    reason: str
    detail: str
    raw: str


@dataclass(frozen=True)
class State:
    """A self-contained decision point: everything a policy or critic needs to act at step i."""

    state_id: str
    trajectory_id: str
    source: str
    task: str
    environment: str
    split: str
    step_index: int
    instruction: str
    history: tuple[Step, ...]
    observation: str
    expert_action: str
    admissible: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Sample:
    """One policy output for a state, kept whatever its verdict so nothing is sampled twice."""

    sample_id: str
    state_id: str
    policy: str
    params_hash: str
    params: str
    seed: int
    sample_index: int
    raw_output: str
    action: str
    verdict: str
    reason: str


@dataclass(frozen=True)
class Pair:
    """A critique pair: one row is enough to render a critic prompt."""

    pair_id: str
    state_id: str
    sample_id: str
    trajectory_id: str
    source: str
    task: str
    environment: str
    split: str
    step_index: int
    instruction: str
    history: tuple[Step, ...]
    observation: str
    expert_action: str
    alternative_action: str
    policy: str
