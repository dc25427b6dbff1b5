"""Sampling on a real tiny Llama: seeded per state, whatever the order of the states."""

from __future__ import annotations

from pathlib import Path

from actforge.pipelines.curate.filters import FilterConfig
from actforge.pipelines.policy.models import Policy
from actforge.pipelines.policy.sampling import sample_states
from actforge.pipelines.store.database import Store
from actforge.schemas import SAMPLE_SCHEMA, records_table
from tests.support.kitchen import recorded_states as _states
from tests.support.kitchen import sampling_params as _params


def test_sampling_is_seeded(tmp_path: Path, tiny: Policy) -> None:
    with Store(tmp_path / "s.duckdb") as store:
        states = _states(store)[:2]
    a = sample_states(tiny, states, _params(k=3, seed=1), FilterConfig())
    b = sample_states(tiny, list(reversed(states)), _params(k=3, seed=1), FilterConfig())
    assert sorted(a, key=lambda s: s.sample_id) == sorted(b, key=lambda s: s.sample_id)
    c = sample_states(tiny, states, _params(k=3, seed=2), FilterConfig())
    assert [s.raw_output for s in a] != [s.raw_output for s in c]
    assert all(s.raw_output.startswith("Action:") for s in a)
    assert {s.verdict for s in a} <= {"accepted", "rejected"}
    assert records_table(a, SAMPLE_SCHEMA).num_rows == 6
