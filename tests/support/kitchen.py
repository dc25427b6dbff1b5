"""Two recorded trajectories of three kitchen steps (an apple in train, a pear in test) and one
quarantined line: what the store, steps, sampling and prompt tests record into a fresh store.

Test modules import the helpers under their old private names (`collected as _collected`, ...)."""

from __future__ import annotations

from actforge.pipelines import steps
from actforge.pipelines.config import BuildConfig
from actforge.pipelines.sources.base import Collected, quarantine
from actforge.pipelines.store.database import Store
from actforge.pipelines.store.states import load_states
from actforge.schemas import State, Step, Trajectory
from actforge.schemas.ids import trajectory_id

BUDGET = BuildConfig.history_chars


def kitchen_trajectory(name: str, split: str = "train") -> Trajectory:
    steps_ = (
        Step(f"{name}: you are in the hallway.", "go to kitchen"),
        Step(f"{name}: you are in the kitchen.", "open fridge"),
        Step(f"{name}: the fridge is open.", "pick up apple"),
    )
    tid = trajectory_id(name, "scienceworld", f"find the {name}", steps_)
    return Trajectory(
        trajectory_id=tid,
        source="test-source",
        task=name,
        environment="scienceworld",
        split=split,
        instruction=f"find the {name}",
        steps=steps_,
    )


TRAJECTORIES = (kitchen_trajectory("apple"), kitchen_trajectory("pear", "test"))
IDS = sorted(t.trajectory_id for t in TRAJECTORIES)


def collected() -> Collected:
    bad = quarantine("test-source", "line 3", "invalid_json", "Expecting value", "{oops")
    return Collected.of(TRAJECTORIES, [bad])


def recorded_states(store: Store, history_chars: int = BUDGET) -> list[State]:
    """Every state of the recorded trajectories, in the order `select` gives."""
    ids, _ = steps.record(store, collected())
    return load_states(store, ids, steps.select(store, ids, None), history_chars)


def sampling_params(**changes: int):
    return BuildConfig(**({"k": 4, "seed": 3} | changes)).sampling
