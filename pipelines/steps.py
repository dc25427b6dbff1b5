"""The build's steps over the store, each pure and testable; the Prefect flow composes them.

collect -> record (trajectories, quarantine, states) -> select -> pending -> sample batches ->
publish. Reruns are cheap because every step asks the store what is already there.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipelines.pairs import make_pairs
from pipelines.publish import publish
from pipelines.sampling import SamplingParams
from pipelines.sources import Collected
from pipelines.states import states_of
from pipelines.store import Store
from schemas import Sample, State


def record(store: Store, collected: Collected) -> tuple[list[State], dict[str, int]]:
    """Store what the sources yielded; returns every state of the collected trajectories.

    States are built from the stored trajectories, not the fresh ones: where a live engine's text
    changed since the first collection, the stored version stays the truth, so reruns match.
    """
    with store.transaction():
        added = {
            "trajectories_added": store.add_trajectories(collected.trajectories),
            "quarantined_added": store.add_quarantine(collected.quarantined),
        }
    states = states_of(store.trajectories(t.trajectory_id for t in collected.trajectories))
    added["states_added"] = store.add_states(states)
    return states, added


def select(states: Sequence[State], max_states: int | None) -> list[State]:
    """A deterministic subset: the first `max_states` by id (a hash, so spread over tasks and splits)."""
    ordered = sorted({s.state_id: s for s in states}.values(), key=lambda s: s.state_id)
    return ordered if max_states is None else ordered[:max_states]


def pending(store: Store, states: Sequence[State], policy: str, params: SamplingParams) -> list[State]:
    """States with no samples yet for this policy and sampling parameters."""
    done = store.sampled_state_ids([s.state_id for s in states], policy, params.digest)
    return [s for s in states if s.state_id not in done]


def store_batch(store: Store, states: Sequence[State], samples: Sequence[Sample]) -> dict[str, int]:
    """Store one batch's samples and the pairs they make; both commit together."""
    pairs = [pair for state in states for pair in make_pairs(state, samples)]
    with store.transaction():
        return {"samples_added": store.add_samples(samples), "pairs_added": store.add_pairs(pairs)}


def publish_dataset(
    store: Store,
    out: Path,
    trajectory_ids: Sequence[str],
    sources: Sequence[str],
    provenance: dict[str, Any],
) -> dict[str, Any]:
    """Publish the pairs of these trajectories with the dataset's counts in manifest and card."""
    stats = store.counts(trajectory_ids, sources)
    return publish(store.pairs_for(trajectory_ids), out, provenance, stats)
