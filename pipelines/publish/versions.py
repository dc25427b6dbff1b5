"""Dataset versions: a publish with new content is the next version, recording its parent and
what it added; the same content is the same version."""

from __future__ import annotations

from typing import Any

from actforge.schemas import SPLITS

VERSION_KEYS = ("version", "parent_version", "added", "history")
DERIVED_KEYS = ("report",)  # drawn from a version's content (its plots), so never compared
# What made a version (library versions, `pipelines.publish.libraries`): recorded when the version is written
# and kept while its content stays the same, so an upgrade alone makes no new version.
BUILD_KEYS = ("built_with",)


def content(manifest: dict[str, Any]) -> dict[str, Any]:
    """A manifest without its version fields and what is derived from them: what two versions are
    compared on."""
    return {k: v for k, v in manifest.items() if k not in (*VERSION_KEYS, *DERIVED_KEYS, *BUILD_KEYS)}


def latest(*manifests: dict[str, Any] | None) -> dict[str, Any] | None:
    """The manifest with the highest version: what is in OUT, or what the store last published there
    when OUT's manifest was lost, damaged or left behind by a killed publish."""
    found = [m for m in manifests if m is not None and isinstance(m.get("version"), int)]
    return max(found, key=lambda m: m["version"], default=None)


def same_version(previous: dict[str, Any] | None, new_content: dict[str, Any]) -> bool:
    """The current version holds exactly this content (a manifest without versions never does)."""
    return previous is not None and "version" in previous and content(previous) == new_content


def next_version(previous: dict[str, Any] | None, new_content: dict[str, Any]) -> dict[str, Any]:
    """Version fields of a new manifest: number, parent, what it added, and the history so far."""
    if same_version(previous, new_content):
        # Same content whose files were damaged or removed: rewrite them as the same version.
        return {k: previous[k] for k in VERSION_KEYS if k in previous}
    old = previous or {"stats": {}, "splits": {}}
    new_stats, old_stats = new_content["stats"], old["stats"]
    added = {
        "trajectories": new_stats.get("trajectories", 0) - old_stats.get("trajectories", 0),
        "states": new_stats.get("states", 0) - old_stats.get("states", 0),
        "pairs": {s: new_content["splits"].get(s, 0) - old["splits"].get(s, 0) for s in SPLITS},
    }
    version = (previous or {}).get("version", 0) + 1
    parent = previous.get("version") if previous else None
    entry = {"version": version, "parent_version": parent, "added": added}
    return entry | {"history": [*(previous or {}).get("history", []), entry]}
