"""Expert sources by spec: which source reads a spec, what its content depends on, and whether it can be read.

A source spec is a live engine's, `scienceworld:TASKS@VARIATIONS` or `twx:GAMES@SEEDS` (TextWorld
Express), a Hub dataset repo's, `hf:OWNER/NAME[@REVISION][:PATH_OR_CONFIG[/SPLIT]]`, or
`[FORMAT:]PATH` (a file or a folder).
Every source returns good trajectories and quarantined records; it never raises on a bad record.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from actforge.pipelines.sources.base import FILE_FORMATS, HUB, LIVE, SCIENCEWORLD, TWX, Collected, is_live
from actforge.pipelines.sources.live import LiveEngine
from actforge.schemas.ids import content_hash


def fingerprint(spec: str) -> str:
    """What a source's content depends on, for caching collection: file bytes, or a live spec.

    Live episodes are keyed by task and variation or seed (see `schemas.ids.episode_id`), so the spec
    and the engine's version identify them; files are identified by what they hold, a Hub repo by
    the commit its revision names now (one request; nothing is downloaded).
    """
    if spec.startswith(HUB):
        from actforge.pipelines.sources.hub import parse_spec, resolve

        return content_hash("source", [spec, resolve(parse_spec(spec))])
    if is_live(spec):
        from importlib.metadata import version

        engine = next(package for prefix, package in LIVE.items() if spec.startswith(prefix))
        return content_hash("source", [spec, version(engine)])
    from actforge.pipelines.sources.files import source_files

    files = [[str(p), hashlib.sha256(p.read_bytes()).hexdigest()] for p in source_files(spec)]
    return content_hash("source", [spec, files])


def collect(spec: str, fmt: str | None = None, progress: bool = True) -> Collected:
    """Collect expert trajectories from one source spec."""
    if spec.startswith(SCIENCEWORLD):
        from actforge.pipelines.sources.scienceworld import collect_scienceworld

        return collect_scienceworld(spec, progress=progress)
    if spec.startswith(TWX):
        from actforge.pipelines.sources.twx import collect_twx

        return collect_twx(spec, progress=progress)
    if spec.startswith(HUB):
        from actforge.pipelines.sources.hub import collect_hub

        return collect_hub(spec, fmt=fmt, progress=progress)
    from actforge.pipelines.sources.files import collect_files

    return collect_files(spec, fmt=fmt, progress=progress)


def check_source(spec: str) -> None:
    """A source spec that can be read: a ValueError or FileNotFoundError naming what is wrong."""
    if spec.startswith(SCIENCEWORLD):
        from actforge.pipelines.sources.scienceworld import parse_spec

        parse_spec(spec)
        return
    if spec.startswith(TWX):
        from actforge.pipelines.sources import twx

        twx.parse_spec(spec)
        return
    if spec.startswith(HUB):
        from actforge.pipelines.sources.hub import parse_spec, resolve

        resolve(parse_spec(spec))  # the repo and revision exist, and the token may read them
        return
    head, sep, tail = spec.partition(":")
    if sep and head.isidentifier() and head not in FILE_FORMATS and not Path(spec).exists():
        known = ", ".join(["scienceworld", "twx", "hf", *FILE_FORMATS])
        raise ValueError(f"source {spec!r}: unknown format {head!r}; expected one of {known}, or a path")
    from actforge.pipelines.sources.files import source_files

    source_files(spec)


def engine_for(spec: str) -> LiveEngine:
    """The started engine of a live spec (a context manager that closes it)."""
    if spec.startswith(SCIENCEWORLD):
        from actforge.pipelines.sources.scienceworld import ScienceWorldEngine

        return ScienceWorldEngine(spec)
    if spec.startswith(TWX):
        from actforge.pipelines.sources.twx import TwxEngine

        return TwxEngine(spec)
    raise ValueError(f"not a live spec (scienceworld:TASKS@VARIATIONS or twx:GAMES@SEEDS): {spec!r}")
