"""The build's steps over the store: "never sample twice" (pending, store_batch, finish) with pairs
deduplicated, and a deterministic selection of states."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from actforge.pipelines import steps
from actforge.pipelines.curate.filters import FilterConfig
from actforge.pipelines.policy.models import Policy
from actforge.pipelines.policy.sampling import sample_states
from actforge.pipelines.store.database import Store
from actforge.schemas import PAIR_SCHEMA
from actforge.schemas.ids import state_id
from tests.support.kitchen import BUDGET, IDS, TRAJECTORIES
from tests.support.kitchen import collected as _collected
from tests.support.kitchen import recorded_states as _states
from tests.support.kitchen import sampling_params as _params


def _accepted(samples: Sequence) -> int:
    return sum(1 for s in samples if s.verdict == "accepted")


def test_never_sample_twice_and_pairs_dedup(tmp_path: Path, tiny: Policy) -> None:
    params, filters = _params(), FilterConfig()
    with Store(tmp_path / "s.duckdb") as store:
        states = _states(store)
        state_ids = [s.state_id for s in states]
        todo = steps.pending(store, state_ids, tiny.name, None, params)
        # A trajectory's states come together, in step order: the decoder shares their prefixes.
        by_trajectory = sorted(states, key=lambda s: (s.trajectory_id, s.step_index))
        assert todo == [s.state_id for s in by_trajectory] and len(todo) == 6
        samples = sample_states(tiny, states, params, filters)
        steps.store_batch(store, states, samples)
        # Staged samples are not "done" until merged; the merge reports what is new.
        run = steps.finish(store)
        assert run == {"samples_added": 24, "pairs_added": _accepted(samples)}
        assert steps.pending(store, state_ids, tiny.name, None, params) == []
        # Other sampling parameters are other samples: those states are pending again.
        assert len(steps.pending(store, state_ids, tiny.name, None, _params(seed=4))) == 6
        # Sampling the same states again (a crashed run retried) adds nothing.
        steps.store_batch(store, states, sample_states(tiny, states, params, filters))
        assert steps.finish(store) == {"samples_added": 0, "pairs_added": 0}
        pairs = store.published("pairs", IDS, None, BUDGET).read_all()
        counts = store.counts(IDS, ["test-source"])
    assert pairs.schema == PAIR_SCHEMA
    assert pairs.num_rows == run["pairs_added"] == counts["pairs"]
    assert counts["samples"] == 24
    assert len(set(pairs.column("pair_id").to_pylist())) == pairs.num_rows


def test_select_is_deterministic_subset(tmp_path: Path) -> None:
    with Store(tmp_path / "s.duckdb") as store:
        ids, _ = steps.record(store, _collected())
        chosen = steps.select(store, ids, None)
        # whole trajectories in step order; one per split, so ordered by id
        expected = [state_id(t, i) for t in sorted(t.trajectory_id for t in TRAJECTORIES) for i in range(3)]
        assert chosen == expected
        assert steps.select(store, ids, 2) == chosen[:2]
        assert steps.select(store, ids[:1], None) == [state_id(ids[0], i) for i in range(3)]
