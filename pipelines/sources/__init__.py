"""Expert sources: files in published formats, or live expert runs of an environment.

A source spec is either `scienceworld:TASKS@VARIATIONS` or `[FORMAT:]PATH` (a file or a folder).
Every source returns good trajectories and quarantined records; it never raises on a bad record.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from pipelines.ids import content_hash
from schemas import Quarantined, Trajectory

FILE_FORMATS: tuple[str, ...] = ("native", "eto", "agentgym", "messages")


@dataclass
class Collected:
    """What one source yielded."""

    trajectories: list[Trajectory] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)

    def extend(self, other: Collected) -> None:
        self.trajectories.extend(other.trajectories)
        self.quarantined.extend(other.quarantined)


def quarantine(source: str, position: str, reason: str, detail: str, raw: str) -> Quarantined:
    """Build a quarantine record; its id is a content hash so re-runs do not duplicate it."""
    qid = content_hash("quarantine", [source, position, reason, raw])
    return Quarantined(qid, source, position, reason, detail, raw)


def fingerprint(spec: str) -> str:
    """What a source's content depends on, for caching collection: file bytes, or a live spec.

    Live ScienceWorld episodes are keyed by task and variation (see `pipelines.ids.episode_id`), so
    the spec and the engine's version identify them; files are identified by what they hold.
    """
    if spec.startswith("scienceworld:"):
        from importlib.metadata import version

        return content_hash("source", [spec, version("scienceworld")])
    from pipelines.sources.files import source_files

    files = [[str(p), hashlib.sha256(p.read_bytes()).hexdigest()] for p in source_files(spec)]
    return content_hash("source", [spec, files])


def collect(spec: str, fmt: str | None = None, progress: bool = True) -> Collected:
    """Collect expert trajectories from one source spec."""
    if spec.startswith("scienceworld:"):
        from pipelines.sources.scienceworld import collect_scienceworld

        return collect_scienceworld(spec, progress=progress)
    from pipelines.sources.files import collect_files

    return collect_files(spec, fmt=fmt, progress=progress)
