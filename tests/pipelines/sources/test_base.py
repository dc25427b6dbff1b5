"""Collected sources: trajectories and quarantined lines round-trip through their tables."""

from __future__ import annotations

from tests.support.factories import trajectory_records
from tests.support.kitchen import TRAJECTORIES
from tests.support.kitchen import collected as _collected


def test_collected_round_trips_to_records() -> None:
    collected = _collected()
    assert trajectory_records(collected) == list(TRAJECTORIES)
    assert collected.quarantined.num_rows == 1
