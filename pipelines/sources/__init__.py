"""Expert sources: files in published formats, or live expert runs of an environment.

A source spec is a live engine's, `scienceworld:TASKS@VARIATIONS` or `twx:GAMES@SEEDS` (TextWorld
Express), or `[FORMAT:]PATH` (a file or a folder).
Every source returns good trajectories and quarantined records; it never raises on a bad record.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from schemas import (
    QUARANTINE_SCHEMA,
    STEP_SCHEMA,
    TRAJECTORY_SCHEMA,
    Quarantined,
    Trajectory,
    records_table,
    trajectory_tables,
)
from schemas.ids import content_hash

FILE_FORMATS: tuple[str, ...] = ("native", "eto", "agentgym", "messages")
SCIENCEWORLD = "scienceworld:"  # the prefix of live ScienceWorld specs
TWX = "twx:"  # the prefix of live TextWorld Express specs
LIVE: dict[str, str] = {SCIENCEWORLD: "scienceworld", TWX: "textworld-express"}  # prefix -> engine package


def is_live(spec: str) -> bool:
    return spec.startswith(tuple(LIVE))


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
    """Build a quarantine record; its id is a content hash so re-runs do not duplicate it."""
    qid = content_hash("quarantine", [source, position, reason, raw])
    return Quarantined(qid, source, position, reason, detail, raw)


def fingerprint(spec: str) -> str:
    """What a source's content depends on, for caching collection: file bytes, or a live spec.

    Live episodes are keyed by task and variation or seed (see `schemas.ids.episode_id`), so the spec
    and the engine's version identify them; files are identified by what they hold.
    """
    if is_live(spec):
        from importlib.metadata import version

        engine = next(package for prefix, package in LIVE.items() if spec.startswith(prefix))
        return content_hash("source", [spec, version(engine)])
    from pipelines.sources.files import source_files

    files = [[str(p), hashlib.sha256(p.read_bytes()).hexdigest()] for p in source_files(spec)]
    return content_hash("source", [spec, files])


def collect(spec: str, fmt: str | None = None, progress: bool = True) -> Collected:
    """Collect expert trajectories from one source spec."""
    if spec.startswith(SCIENCEWORLD):
        from pipelines.sources.scienceworld import collect_scienceworld

        return collect_scienceworld(spec, progress=progress)
    if spec.startswith(TWX):
        from pipelines.sources.twx import collect_twx

        return collect_twx(spec, progress=progress)
    from pipelines.sources.files import collect_files

    return collect_files(spec, fmt=fmt, progress=progress)


def check_source(spec: str) -> None:
    """A source spec that can be read: a ValueError or FileNotFoundError naming what is wrong."""
    if spec.startswith(SCIENCEWORLD):
        from pipelines.sources.scienceworld import parse_spec

        parse_spec(spec)
        return
    if spec.startswith(TWX):
        from pipelines.sources import twx

        twx.parse_spec(spec)
        return
    head, sep, tail = spec.partition(":")
    if sep and head.isidentifier() and head not in FILE_FORMATS and not Path(spec).exists():
        known = ", ".join(["scienceworld", "twx", *FILE_FORMATS])
        raise ValueError(f"source {spec!r}: unknown format {head!r}; expected one of {known}, or a path")
    from pipelines.sources.files import source_files

    source_files(spec)
