"""Push a published dataset folder to the Hugging Face Hub as one atomic commit.

One commit per push keeps every Hub revision a complete, consistent dataset: new or changed shards,
the card and the manifest are added and stale shards deleted together. The commit names its parent
(the branch head we diffed against), so a concurrent push makes the Hub refuse ours instead of mixing
two datasets. An unchanged folder makes no commit, and each commit is tagged `v{version}` so a
version in the manifest always names one dataset on the Hub.

The token comes only from huggingface_hub's own resolution (`HF_TOKEN`, or the login saved by
`hf auth login`) and never appears in messages or logs.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, get_token
from huggingface_hub.errors import (
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.hf_api import RepoFile
from huggingface_hub.utils.sha import git_hash

from actforge.pipelines.publish.layout import CARD, FOLDERS, MANIFEST, SHARD_NAME, intact, read_manifest

log = logging.getLogger(__name__)

REPO_TYPE = "dataset"
BACKOFF_SECONDS = 0.5  # first wait between attempts; doubles each time
RETRY_STATUS = {500, 502, 503, 504}


class HubError(RuntimeError):
    """A push failed for a reason the user can act on (token, permission, conflict, network)."""


def push_dataset(
    out: Path,
    repo_id: str,
    revision: str | None = None,
    private: bool = False,
    endpoint: str | None = None,
    retries: int = 3,
) -> dict[str, Any]:
    """Make `revision` of dataset repo `repo_id` hold exactly the published folder OUT.

    Every transfer error (network, 5xx, Xet, a garbled or lost reply) is retried here, `retries`
    times with exponential backoff; a refusal the user must act on (4xx) is not. Retrying the whole
    push is safe: it re-diffs against the current head, and the parent-commit check stops a commit
    from landing twice. The result says what this run did: its commit and tag, or neither.
    """
    out = Path(out)
    manifest = read_manifest(out)
    if not intact(out, manifest):
        raise HubError(
            f"{out} does not hold the files its manifest lists (a publish was interrupted?): "
            "run the build again to finish it, then push"
        )
    token = get_token()
    if not token:
        raise HubError(
            "no Hugging Face token found: set the HF_TOKEN environment variable or run `hf auth login`"
        )
    api = HfApi(endpoint=endpoint, token=token)
    where = api.endpoint
    branch = revision or "main"
    done = _Done()
    for attempt in range(retries + 1):
        try:
            return _push_once(api, out, manifest, repo_id, branch, private, done)
        except HubError:
            raise
        except HfHubHTTPError as err:
            if _status(err) not in RETRY_STATUS:
                raise _explain(err, repo_id, branch, where, token) from None
            failure: Exception = err
        except Exception as err:  # any transfer error: network, Xet, a garbled or lost reply
            failure = err
        if attempt < retries:
            wait = BACKOFF_SECONDS * 2**attempt
            log.warning(
                "push to %s failed (%s); retry %d/%d in %.1fs",
                where,
                _reason(failure, token),
                attempt + 1,
                retries,
                wait,
            )
            time.sleep(wait)
    raise HubError(
        f"could not push to the Hub at {where} ({_reason(failure, token)}) after {retries + 1} attempts"
        f"{done.so_far()}; check the endpoint and your network, then push again"
    ) from failure


@dataclass
class _Done:
    """What this run's attempts have done so far, so a retry reports a commit whose reply was lost."""

    parent: str | None = None  # the head an attempt sent a commit on top of
    title: str | None = None
    commit: str | None = None
    tag: str | None = None

    def so_far(self) -> str:
        if self.commit:
            return f" (commit {self.commit[:12]} landed; tag {self.tag or 'not created'})"
        return " (nothing was committed)" if self.parent is None else " (a commit may have landed)"


def _push_once(
    api: HfApi,
    out: Path,
    manifest: dict[str, Any],
    repo_id: str,
    branch: str,
    private: bool,
    done: _Done,
) -> dict[str, Any]:
    """One diff-and-commit against the current head of `branch`."""
    head = _head(api, repo_id, branch, private)
    added, deleted = _changes(api, out, manifest, repo_id, head)
    version = int(manifest.get("version", 1))
    tag = f"v{version}"
    tags = {ref.name: ref.target_commit for ref in api.list_repo_refs(repo_id, repo_type=REPO_TYPE).tags}
    if not added and not deleted:
        if done.commit is None and done.parent is not None and _landed(api, repo_id, head, done):
            done.commit = head  # an earlier attempt's commit landed, but its reply was lost
        if tag not in tags:  # a push committed but died before tagging: finish its job
            api.create_tag(repo_id, tag=tag, revision=head, repo_type=REPO_TYPE)
            done.tag = tag
        elif done.commit is not None and tags[tag] == done.commit:
            done.tag = tag  # this run's tag, whose reply was lost
        log.info("%s@%s holds this dataset (%s)", repo_id, branch, tag)
        return _result(repo_id, branch, done, [], [])
    if tag in tags:
        raise HubError(
            f"{repo_id} already has tag {tag} on commit {tags[tag][:12]}, but this dataset differs from it: "
            "publish it with a new manifest version before pushing"
        )
    operations: list[Any] = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=out / p) for p in added]
    operations += [CommitOperationDelete(path_in_repo=p) for p in deleted]
    done.parent, done.title = head, f"Publish {manifest.get('pairs', 0)} pairs ({tag})"
    info = api.create_commit(
        repo_id,
        operations,
        commit_message=done.title,
        commit_description=f"{len(added)} file(s) added or changed, {len(deleted)} stale shard(s) deleted.",
        repo_type=REPO_TYPE,
        revision=branch,
        parent_commit=head,
    )
    done.commit = info.oid
    api.create_tag(repo_id, tag=tag, revision=info.oid, repo_type=REPO_TYPE)
    done.tag = tag
    log.info(
        "pushed %s@%s: commit %s, tag %s (+%d -%d files)",
        repo_id,
        branch,
        info.oid[:12],
        tag,
        len(added),
        len(deleted),
    )
    return _result(repo_id, branch, done, added, deleted)


def _changes(
    api: HfApi, out: Path, manifest: dict[str, Any], repo_id: str, head: str
) -> tuple[list[str], list[str]]:
    """The files of `out` that differ from the repo at `head`, and the repo's shards this version
    no longer has (stale shards of configs we publish; other files in the repo stay)."""
    remote = {
        entry.path: entry
        for entry in api.list_repo_tree(repo_id, recursive=True, revision=head, repo_type=REPO_TYPE)
        if isinstance(entry, RepoFile)
    }
    plots = [plot["path"] for plot in manifest.get("report", [])]
    local = [shard["path"] for shard in manifest["shards"]] + plots + [CARD, MANIFEST]
    added = [path for path in local if not _same(out / path, remote.get(path))]
    keep = set(local)
    deleted = sorted(
        path
        for path in remote
        if path.split("/", 1)[0] in FOLDERS.values()
        and path.count("/") == 1
        and SHARD_NAME.match(path.split("/", 1)[1])
        and path not in keep
    )
    return added, deleted


def _landed(api: HfApi, repo_id: str, head: str, done: _Done) -> bool:
    """Whether `head` is the commit an earlier attempt sent: our title, right on top of our parent."""
    commits = api.list_repo_commits(repo_id, revision=head, repo_type=REPO_TYPE)
    return len(commits) >= 2 and commits[0].title == done.title and commits[1].commit_id == done.parent


def _result(repo_id: str, branch: str, done: _Done, added: list[str], deleted: list[str]) -> dict[str, Any]:
    """What this run did: its commit (None if it committed nothing), the tag it created, and the files."""
    return {
        "repo_id": repo_id,
        "revision": branch,
        "commit": done.commit,
        "tag": done.tag,
        "changed": done.commit is not None,
        "added": added,
        "deleted": deleted,
    }


def _head(api: HfApi, repo_id: str, branch: str, private: bool) -> str:
    """The commit `branch` points at now, creating the repo first when it does not exist."""
    try:
        info = api.repo_info(repo_id, revision=branch, repo_type=REPO_TYPE)
    except RevisionNotFoundError:
        raise HubError(
            f"branch {branch!r} does not exist in {repo_id}: create it on the Hub first "
            "(e.g. `hf repo branch create`) or push to main"
        ) from None
    except RepositoryNotFoundError:
        try:
            api.create_repo(repo_id, repo_type=REPO_TYPE, private=private, exist_ok=True)
        except HfHubHTTPError as err:
            if _status(err) in (401, 403):
                raise HubError(
                    f"dataset repo {repo_id} does not exist and your token may not create it "
                    f"(HTTP {_status(err)}: no permission); create it on the Hub "
                    "or use a token with write access"
                ) from None
            raise
        log.info("created dataset repo %s (private=%s)", repo_id, private)
        info = api.repo_info(repo_id, revision=branch, repo_type=REPO_TYPE)
    if not info.sha:
        raise HubError(f"the Hub did not report a head commit for {repo_id}@{branch}")
    return info.sha


def _same(path: Path, remote: RepoFile | None) -> bool:
    """Whether the remote file (a RepoFile or None) already has this local file's content."""
    if remote is None:
        return False
    data = path.read_bytes()
    if remote.lfs is not None:
        return remote.lfs.sha256 == hashlib.sha256(data).hexdigest()
    return remote.blob_id == git_hash(data)


def _reason(err: Exception, token: str) -> str:
    """One line naming a failed attempt's error (HTTP status, or its type and message), token masked."""
    status = _status(err)
    text = f"HTTP {status}" if status else f"{type(err).__name__}: {err}".splitlines()[0][:200]
    return text.replace(token, "***")


def _status(err: Exception) -> int | None:
    response = getattr(err, "response", None)
    return getattr(response, "status_code", None)


def _explain(err: HfHubHTTPError, repo_id: str, branch: str, where: str, token: str) -> HubError:
    """A HubError that says what to do, from an HTTP error (never echoing the token)."""
    status = _status(err)
    if status == 412:
        message = (
            f"{repo_id}@{branch} moved while we pushed (someone else committed): nothing was changed; "
            "push again to diff against the new head"
        )
    elif status == 409:
        message = f"conflicting change in {repo_id} on the Hub (HTTP 409): {err}; push again"
    elif status == 401:
        message = (
            f"the Hub at {where} rejected the token (HTTP 401): set a valid HF_TOKEN or run `hf auth login`"
        )
    elif status == 403:
        message = (
            f"no permission to write to {repo_id} (HTTP 403): use a token with write access to this repo"
        )
    elif isinstance(err, RepositoryNotFoundError):
        message = f"dataset repo {repo_id} not found at {where}, or your token cannot see it"
    elif isinstance(err, RemoteEntryNotFoundError):
        message = f"a file to delete vanished from {repo_id}@{branch} meanwhile; push again"
    else:
        message = f"the Hub at {where} refused the push of {repo_id}@{branch}: {err}"
    return HubError(message.replace(token, "***"))
