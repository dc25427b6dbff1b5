"""What every expert source shares: spec prefixes, the `Collected` tables, quarantine records.

Every source returns good trajectories and quarantined records; it never raises on a bad record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from actforge.schemas import (
    QUARANTINE_SCHEMA,
    STEP_SCHEMA,
    TRAJECTORY_SCHEMA,
    Quarantined,
    Trajectory,
    records_table,
    trajectory_tables,
)
from actforge.schemas.ids import content_hash
from actforge.schemas.vocab import QUARANTINE_REASONS

FILE_FORMATS: tuple[str, ...] = ("native", "eto", "agentgym", "messages")
SCIENCEWORLD = "scienceworld:"  # the prefix of live ScienceWorld specs
TWX = "twx:"  # the prefix of live TextWorld Express specs
LIVE: dict[str, str] = {SCIENCEWORLD: "scienceworld", TWX: "textworld-express"}  # prefix -> engine package
HUB = "hf:"  # the prefix of dataset repos on the Hugging Face Hub (`sources.hub`)


def is_live(spec: str) -> bool:
    return spec.startswith(tuple(LIVE))


def is_remote(spec: str) -> bool:
    """A spec that names no local path: a live engine's or a Hub repo's."""
    return is_live(spec) or spec.startswith(HUB)


@dataclass
class Collected:
    """What sources yielded, as Arrow tables: trajectories, their steps (once each), quarantine."""

    trajectories: pa.Table = field(default_factory=TRAJECTORY_SCHEMA.empty_table)
    steps: pa.Table = field(default_factory=STEP_SCHEMA.empty_table)
    quarantined: pa.Table = field(default_factory=QUARANTINE_SCHEMA.empty_table)

    @classmethod
    def of(cls, trajectories: Sequence[Trajectory], quarantined: Sequence[Quarantined]) -> Collected:
        """One batch of records, parsed one at a time, as tables."""
        meta, steps = trajectory_tables(trajectories)
        return cls(meta, steps, records_table(quarantined, QUARANTINE_SCHEMA))

    def extend(self, other: Collected) -> None:
        self.trajectories = pa.concat_tables([self.trajectories, other.trajectories])
        self.steps = pa.concat_tables([self.steps, other.steps])
        self.quarantined = pa.concat_tables([self.quarantined, other.quarantined])


def quarantine(source: str, position: str, reason: str, detail: str, raw: str) -> Quarantined:
    """Build a quarantine record; its id is a content hash so re-runs do not duplicate it.
    `reason` must be one of `schemas.vocab.QUARANTINE_REASONS`, which the card documents."""
    if reason not in QUARANTINE_REASONS:
        raise ValueError(f"unknown quarantine reason {reason!r}; add it to schemas.vocab.QUARANTINE_REASONS")
    qid = content_hash("quarantine", [source, position, reason, raw])
    return Quarantined(qid, source, position, reason, detail, raw)
