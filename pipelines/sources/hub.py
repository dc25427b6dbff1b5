"""Expert trajectories from a dataset repo on the Hugging Face Hub.

A spec is `hf:OWNER/NAME[@REVISION][:PATH_OR_CONFIG[/SPLIT]]`. The revision (default `main`) is
resolved to its commit first, one request; the files then come through huggingface_hub's cache
(`HF_ENDPOINT`, `HF_TOKEN`, `HF_HUB_CACHE` and `HF_HUB_OFFLINE` as the user set them), so an
unchanged commit is never downloaded twice and a cached one reads offline. After the colon comes a
file or folder of the repo, or a config of its card (`configs:` in README.md) with an optional
split, read as `datasets` would. Records are read as files are (`sources.files`), and every
trajectory's `source` names the commit it came from.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from actforge.pipelines.sources.base import Collected

PREFIX = "hf:"
_SPEC = re.compile(r"^hf:(?P<repo>[\w.-]+/[\w.-]+)(?:@(?P<revision>[^:]+))?(?::(?P<path>.*))?$")
_SUFFIXES = (".json", ".jsonl", ".parquet")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class HubSpec:
    """What an `hf:` spec names: a dataset repo, a revision, and a path or config in it."""

    spec: str
    repo_id: str
    revision: str
    path: str | None

    def at(self, commit: str) -> str:
        """The spec pinned to a commit: what trajectories record as their source."""
        return f"{PREFIX}{self.repo_id}@{commit}" + (f":{self.path}" if self.path else "")


def parse_spec(spec: str) -> HubSpec:
    """An `hf:` spec, checked without the network; a path that could leave the repo is refused."""
    match = _SPEC.match(spec)
    if match is None:
        raise ValueError(f"source {spec!r}: expected hf:OWNER/NAME[@REVISION][:PATH_OR_CONFIG[/SPLIT]]")
    path = match.group("path") or None
    if path is not None:
        pure = PurePosixPath(path)
        if "\\" in path or pure.is_absolute() or ".." in pure.parts:
            why = "must stay inside the repo (no '..', not absolute)"
            raise ValueError(f"source {spec!r}: the path {path!r} {why}")
    return HubSpec(spec, match.group("repo"), match.group("revision") or "main", path)


def resolve(hub: HubSpec) -> str:
    """The commit the spec's revision names now: one request, or the cache's record when offline.
    A missing or private repo and an unknown revision are one-line errors."""
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    if _COMMIT.match(hub.revision):
        return hub.revision
    if constants.HF_HUB_OFFLINE:
        return _cached(hub).commit_hash
    try:
        return HfApi().dataset_info(hub.repo_id, revision=hub.revision).sha
    except RevisionNotFoundError:
        raise ValueError(f"source {hub.spec!r}: {hub.repo_id} has no revision {hub.revision!r}") from None
    except (RepositoryNotFoundError, HfHubHTTPError) as err:
        status = err.response.status_code if err.response is not None else None
        if not isinstance(err, RepositoryNotFoundError) and status not in (401, 403):
            raise
        raise ValueError(
            f"source {hub.spec!r}: no dataset repo {hub.repo_id} at {constants.ENDPOINT} "
            "(a private one needs a token with read access in HF_TOKEN)"
        ) from None


def collect_hub(spec: str, fmt: str | None = None, progress: bool = True) -> Collected:
    """Trajectories and quarantined records of the files an `hf:` spec names, at its commit."""
    from actforge.pipelines.sources.files import collect_paths

    hub = parse_spec(spec)
    commit = resolve(hub)
    folder, paths = _download(hub, commit)
    return collect_paths(hub.at(commit), [(folder / p, p) for p in paths], fmt, progress)


def _download(hub: HubSpec, commit: str) -> tuple[Path, list[str]]:
    """The snapshot folder of the commit and the repo paths to read (sorted), fetched into the cache."""
    from huggingface_hub import snapshot_download

    files = _files_at(hub, commit)
    patterns = _patterns(hub, commit, files)
    readable = [f for f in files if f.lower().endswith(_SUFFIXES)]
    wanted = [f for f in readable if any(fnmatch.fnmatch(f, p) for p in patterns)]
    if not wanted:
        kinds = ", ".join(_SUFFIXES)
        raise FileNotFoundError(f"source {hub.spec!r}: no {kinds} files match in {hub.repo_id}")
    # By the revision's name, so the cache records where it pointed and an offline rerun finds it.
    folder = Path(
        snapshot_download(hub.repo_id, repo_type="dataset", revision=hub.revision, allow_patterns=wanted)
    )
    if folder.name != commit:
        raise RuntimeError(
            f"source {hub.spec!r}: {hub.revision} moved to {folder.name} during the build; run it again"
        )
    return folder, wanted


def _files_at(hub: HubSpec, commit: str) -> list[str]:
    """The repo's file paths at the commit: listed by the Hub, or, offline, those the cache holds."""
    from huggingface_hub import HfApi, constants

    if not constants.HF_HUB_OFFLINE:
        return sorted(HfApi().list_repo_files(hub.repo_id, repo_type="dataset", revision=commit))
    snapshot = _cached(hub)
    return sorted(f.file_path.relative_to(snapshot.snapshot_path).as_posix() for f in snapshot.files)


def _cached(hub: HubSpec) -> Any:
    """The cache's snapshot of the spec's revision (a branch or tag name, or a commit), read with
    huggingface_hub's own cache scanner; a one-line error when the cache has none."""
    from huggingface_hub import scan_cache_dir

    for repo in scan_cache_dir().repos:
        if (repo.repo_type, repo.repo_id) == ("dataset", hub.repo_id):
            for revision in repo.revisions:
                if hub.revision in revision.refs or revision.commit_hash == hub.revision:
                    return revision
    raise ValueError(f"source {hub.spec!r}: not in the Hub cache, and HF_HUB_OFFLINE is set")


def _patterns(hub: HubSpec, commit: str, files: list[str]) -> list[str]:
    """Glob patterns of the files to read: a path's file or folder, a card config's data files, or all."""
    if hub.path is None:
        return ["*"]
    if hub.path in files or any(f.startswith(hub.path.rstrip("/") + "/") for f in files):
        return [hub.path, hub.path.rstrip("/") + "/*"]
    config, _, split = hub.path.partition("/")
    for entry in _card_configs(hub, commit, files):
        if entry.get("config_name") == config:
            data_files = entry.get("data_files") or []
            if isinstance(data_files, str | dict):
                data_files = [data_files]
            found = [
                p
                for item in data_files
                if not split or (isinstance(item, dict) and item.get("split") == split)
                for p in _as_list(item["path"] if isinstance(item, dict) else item)
            ]
            if found:
                return found
            raise ValueError(f"source {hub.spec!r}: config {config!r} has no split {split!r}")
    raise FileNotFoundError(f"source {hub.spec!r}: {hub.repo_id} has no file, folder or config {hub.path!r}")


def _card_configs(hub: HubSpec, commit: str, files: list[str]) -> list[dict]:
    """The `configs:` of the repo's card front matter (none without a card)."""
    from huggingface_hub import hf_hub_download

    if "README.md" not in files:
        return []
    card = hf_hub_download(hub.repo_id, "README.md", repo_type="dataset", revision=commit)
    text = Path(card).read_text(encoding="utf-8")
    if not text.startswith("---"):
        return []
    meta = yaml.safe_load(text.split("---", 2)[1]) or {}
    return [c for c in meta.get("configs") or [] if isinstance(c, dict)]


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)
