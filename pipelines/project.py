"""A project file (YAML or TOML) naming what `actforge refresh` and `actforge serve` rebuild.

Relative paths in it are relative to the file, so a project folder can move as a whole.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path

import yaml

from actforge.pipelines.config import BuildConfig
from actforge.pipelines.sources.base import FILE_FORMATS, is_remote

PATH_KEYS = ("out", "store", "cache_dir")
HUB_KEYS = ("push_to_hub", "revision", "private")


@dataclass(frozen=True)
class Project:
    """A build configuration and where its versions are pushed."""

    build: BuildConfig
    push_to_hub: str | None = None
    revision: str | None = None
    private: bool = False

    def refresh_settings(self, with_report: bool = False) -> BuildConfig:
        """What a refresh builds: the project's settings, with the report's plots when asked."""
        return dataclasses.replace(self.build, with_report=True) if with_report else self.build


def _resolve_source(spec: str, base: Path) -> str:
    """File sources (with or without a FORMAT: prefix) resolved against the project folder."""
    if is_remote(spec):
        return spec
    head, sep, tail = spec.partition(":")
    if sep and head in FILE_FORMATS:
        return f"{head}:{base / tail}"
    return str(base / spec)


def load_project(path: Path | str) -> Project:
    """Read and check a project file; unknown keys and missing sources are errors, not defaults.

    Its keys are `BuildConfig`'s fields (same names, same defaults) plus the Hub settings.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    raw = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping of settings")
    known = {f.name for f in dataclasses.fields(BuildConfig)} | set(HUB_KEYS)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"{path}: unknown settings {unknown}; known: {sorted(known)}")
    if not raw.get("sources") or not raw.get("out"):
        raise ValueError(f"{path}: `sources` (a list of source specs) and `out` are required")
    base = path.resolve().parent
    raw["sources"] = tuple(_resolve_source(str(s), base) for s in raw["sources"])
    for key in PATH_KEYS:
        if raw.get(key) is not None:
            raw[key] = str(base / raw[key])
    hub = {key: raw.pop(key) for key in HUB_KEYS if key in raw}
    try:
        return Project(BuildConfig(**raw), **hub)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
