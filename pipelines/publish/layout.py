"""The published folder: file names, the manifest, and moving a finished publish into place.

Files are written into a temporary folder inside OUT first, then moved into place; the switch to
the new version is one rename of `manifest.json`, which goes last and is never removed first. A
publish killed before that rename leaves the old manifest, whose shards no longer all match it,
so the next publish rewrites the folder as the next version (see `pipelines.publish.versions`).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from actforge.schemas.vocab import ACT, DEFAULT, PREFERENCE, SPLITS, STATES, WORLD_MODEL

MANIFEST = "manifest.json"
CARD = "README.md"
# Config -> folder: raw pairs under data/ (the Hub's default), TRL-ready critic examples under act/,
# one row per expert state (what agent training and next-action evaluation need) under states/.
FOLDERS = {
    DEFAULT: "data",
    ACT: "act",
    STATES: "states",
    PREFERENCE: "preference",
    WORLD_MODEL: "world_model",
}
REPORT = "report"  # the report's plots, with `--with-report` (`pipelines.publish.report`)
SHARD_NAME = re.compile(rf"^(?:{'|'.join(map(re.escape, SPLITS))})-\d{{5}}-of-\d{{5}}\.parquet$")


def shard_name(config: str, split: str, index: int, count: int) -> str:
    """A shard's path in OUT, as the Hub's `data_files` patterns expect it."""
    return f"{FOLDERS[config]}/{split}-{index:05d}-of-{count:05d}.parquet"


def read_manifest(out: Path | str) -> dict[str, Any]:
    """The manifest of a published dataset folder; FileNotFoundError saying what is there instead."""
    folder = Path(out)
    if not folder.is_dir():
        what = "a file, not a dataset folder" if folder.exists() else "no such folder"
        raise FileNotFoundError(f"{out}: {what}; run `actforge build --out {out}` to publish a dataset there")
    manifest = current(folder)
    if manifest is None:
        raise FileNotFoundError(
            f"{out}: no readable {MANIFEST}; run `actforge build --out {out}` to publish a dataset there"
        )
    return manifest


def current(root: Path) -> dict[str, Any] | None:
    """The manifest of the version already in OUT; None when it is missing or damaged."""
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return manifest if isinstance(manifest, dict) and isinstance(manifest.get("version"), int) else None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def intact(root: Path, manifest: dict[str, Any]) -> bool:
    """OUT's manifest is this one, its every shard is on disk with its recorded hash, and the card
    is there."""
    if current(root) != manifest:
        return False
    for shard in manifest["shards"]:
        path = root / shard["path"]
        if not path.is_file() or sha256_file(path) != shard["sha256"]:
            return False
    return (root / CARD).is_file()


def commit(staging: Path, root: Path, shard_paths: list[str], report_paths: list[str] = ()) -> None:
    """Move staged files into OUT, remove stale shards and plots, then switch the manifest in one
    rename."""
    for folder in FOLDERS.values():
        inside(root, root / folder).mkdir(exist_ok=True)
    if report_paths:
        inside(root, root / REPORT).mkdir(exist_ok=True)
    for rel in [*shard_paths, *report_paths]:
        (staging / rel).replace(inside(root, root / rel))
    keep = {*shard_paths, *report_paths}
    for folder in FOLDERS.values():
        for old in sorted(inside(root, root / folder).iterdir()):
            if SHARD_NAME.match(old.name) and f"{folder}/{old.name}" not in keep:
                inside(root, old).unlink()
    if (root / REPORT).is_dir():
        for old in sorted(inside(root, root / REPORT).glob("*.png")):
            if f"{REPORT}/{old.name}" not in keep:
                inside(root, old).unlink()
    (staging / CARD).replace(inside(root, root / CARD))
    (staging / MANIFEST).replace(inside(root, root / MANIFEST))


def shard_paths(out: Path | str, config: str, split: str) -> list[Path]:
    """The shards of one config's split that OUT's manifest lists (none: the split is empty)."""
    root = Path(out)
    shards = read_manifest(root)["shards"]
    return [inside(root, root / s["path"]) for s in shards if s["config"] == config and s["split"] == split]


def splits_of(out: Path | str, config: str) -> set[str]:
    """The splits of one config that have rows in OUT."""
    return {s["split"] for s in read_manifest(out)["shards"] if s["config"] == config and s["rows"]}


def inside(root: Path, path: Path) -> Path:
    """`path` resolved, refusing anything that escapes `root` (e.g. through a symlink)."""
    resolved = path.resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise ValueError(f"refusing {resolved}: outside {root}")
    return resolved
