"""push_dataset(): the real huggingface_hub client against a Hub-compatible server on loopback.

Nothing is mocked. `tests/support/hub_server.py` serves the Hub API on 127.0.0.1 and marks every file
"regular", so no LFS or Xet storage is involved. Our code gets the server through `endpoint=`.
`datasets.load_dataset(repo_id)` reads the Hub endpoint from `huggingface_hub.constants` at import
time, so each load runs in a fresh Python process with `HF_ENDPOINT` pointing at the server.
"""

from __future__ import annotations

import logging
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import huggingface_hub.constants
import pytest

from actforge.flows.cli import main
from actforge.pipelines.publish.hub import HubError, push_dataset
from tests.support import hub_server
from tests.support.factories import TRAJECTORIES, publish_pairs, states_per_split
from tests.support.hub_server import READ_TOKEN, TOKEN, HubServer

HUB_LOGGER = "actforge.pipelines.publish.hub"
LOGGERS = ("", "huggingface_hub", "httpx2", HUB_LOGGER)
FORMAT = logging.Formatter("%(levelname)s %(name)s %(message)s")  # also renders tracebacks
# Everything the module printed or logged, checked for the token by the last test.
TRANSCRIPT: list[str] = []
FEWER = {k: v for k, v in TRAJECTORIES.items() if k != "t2"}  # 13 train rows instead of 20


pytestmark = pytest.mark.slow  # the loopback Hub server, and `load_dataset` in fresh interpreters


@pytest.fixture(autouse=True)
def hub_env(
    hub: HubServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> Iterator[None]:
    """Beyond conftest's `hub` (token in HF_TOKEN, huggingface_hub on loopback): a private HF_HOME,
    short retry backoff, and a transcript of all output."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr("actforge.pipelines.publish.hub.BACKOFF_SECONDS", 0.05)
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    yield
    out, err = capfd.readouterr()
    records = caplog.get_records("setup") + caplog.get_records("call")
    TRANSCRIPT.extend([out, err, *(FORMAT.format(r) for r in records)])
    sys.stdout.write(out)
    sys.stderr.write(err)


def published(tmp_path: Path, trajectories: dict = TRAJECTORIES, name: str = "ds") -> Path:
    out = tmp_path / name
    publish_pairs(out, trajectories)
    return out


def load_counts(hub: HubServer, tmp_path: Path, repo_id: str, *revisions: str) -> dict:
    counts, output = hub_server.load_counts(hub.endpoint, TOKEN, tmp_path / "hf-load", repo_id, *revisions)
    TRANSCRIPT.append(output)
    return counts


def error_of(out: Path, repo_id: str, hub: HubServer, **kwargs) -> HubError:
    with pytest.raises(HubError) as info:
        push_dataset(out, repo_id, endpoint=hub.endpoint, **kwargs)
    TRANSCRIPT.append(str(info.value))
    return info.value


FULL = {"train": 20, "validation": 5, "test": 5}


def configs(pairs: dict[str, int], trajectories: dict) -> dict[str, dict[str, int]]:
    """Rows per config: the act config holds every pair in both orders, states one row per state,
    preference one row per pair."""
    states = {split: n for split, n in states_per_split(trajectories).items() if split in pairs}
    act = {s: 2 * n for s, n in pairs.items()}
    return {"default": pairs, "act": act, "states": states, "preference": pairs}


def test_push_creates_repo_and_load_dataset_reads_both_configs(hub: HubServer, tmp_path: Path) -> None:
    out = published(tmp_path)
    result = push_dataset(out, "tester/act-pairs", private=True, endpoint=hub.endpoint)

    assert result["changed"] and result["tag"] == "v1" and result["revision"] == "main"
    assert result["deleted"] == []
    assert sorted(result["added"]) == sorted(
        p for p in hub.files("tester/act-pairs") if p != ".gitattributes"
    )
    repo = hub.repo("tester/act-pairs")
    assert repo.private
    assert repo.tags == {"v1": result["commit"]} and repo.branches["main"] == result["commit"]
    assert hub.commit_count("tester/act-pairs") == 2  # the repo's initial commit, then ours
    local = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert {p: d for p, d in hub.files("tester/act-pairs").items() if p != ".gitattributes"} == local
    assert load_counts(hub, tmp_path, "tester/act-pairs", "main") == {"main": configs(FULL, TRAJECTORIES)}
    assert hub.unhandled == []


def test_unchanged_push_commits_nothing_and_a_changed_one_commits_once(
    hub: HubServer, tmp_path: Path
) -> None:
    repo_id = "tester/versions"
    out = published(tmp_path)
    first = push_dataset(out, repo_id, endpoint=hub.endpoint)
    commits = hub.commit_count(repo_id)

    again = push_dataset(out, repo_id, endpoint=hub.endpoint)
    assert again == {
        "repo_id": repo_id,
        "revision": "main",
        "commit": None,
        "tag": None,
        "changed": False,
        "added": [],
        "deleted": [],
    }
    assert hub.commit_count(repo_id) == commits

    # Fewer trajectories: new shard files replace the old ones (same names, new content) and the act
    # and data shards change; the manifest's version goes to 2.
    manifest = publish_pairs(out, FEWER)
    assert manifest["version"] == 2
    second = push_dataset(out, repo_id, endpoint=hub.endpoint)
    assert hub.commit_count(repo_id) == commits + 1
    assert second["changed"] and second["tag"] == "v2" and second["commit"] != first["commit"]
    assert "manifest.json" in second["added"] and "README.md" in second["added"]
    assert "data/train-00000-of-00001.parquet" in second["added"]
    assert "data/test-00000-of-00001.parquet" not in second["added"]  # unchanged shard not re-sent
    assert hub.repo(repo_id).tags == {"v1": first["commit"], "v2": second["commit"]}

    counts = load_counts(hub, tmp_path, repo_id, "v1", "v2")
    fewer = {"train": 13, "validation": 5, "test": 5}
    assert counts == {"v1": configs(FULL, TRAJECTORIES), "v2": configs(fewer, FEWER)}


def test_cli_publish_commits_a_version_once(
    hub: HubServer, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """`actforge publish` with the endpoint and token only where a user sets them (HF_ENDPOINT, HF_TOKEN)."""
    out = published(tmp_path)
    assert main(["publish", str(out), "--repo-id", "tester/cli", "--private"]) == 0
    assert main(["publish", str(out), "--repo-id", "tester/cli"]) == 0
    printed, err = capfd.readouterr()
    TRANSCRIPT.extend([printed, err])
    repo = hub.repo("tester/cli")
    head = repo.branches["main"]
    assert printed.splitlines() == [
        f"hub: tester/cli@main commit {head} tag v1",
        "hub: tester/cli@main already has this version; no commit",
    ]
    assert repo.private and repo.tags == {"v1": head} and hub.commit_count("tester/cli") == 2


def test_changed_push_adds_and_deletes_in_one_commit(hub: HubServer, tmp_path: Path) -> None:
    repo_id = "tester/shrink"
    out = published(tmp_path)
    push_dataset(out, repo_id, endpoint=hub.endpoint)
    commits = hub.commit_count(repo_id)

    # The test split disappears: its shards must go, in the same commit that adds the new ones.
    publish_pairs(out, {k: v for k, v in TRAJECTORIES.items() if v[0] != "test"})
    result = push_dataset(out, repo_id, endpoint=hub.endpoint)

    assert hub.commit_count(repo_id) == commits + 1
    assert result["changed"] and result["tag"] == "v2"
    deleted = [f"{c}/test-00000-of-00001.parquet" for c in ("act", "data", "preference", "states")]
    assert result["deleted"] == deleted
    assert {"manifest.json", "README.md"} <= set(result["added"])
    assert not any(p.startswith(("data/test", "act/test")) for p in hub.files(repo_id))
    head = hub.repo(repo_id).commits[-1]
    assert head.oid == result["commit"] and head.parent == hub.repo(repo_id).commits[-2].oid
    assert push_dataset(out, repo_id, endpoint=hub.endpoint)["changed"] is False


def test_changed_content_under_an_existing_version_tag_is_refused(hub: HubServer, tmp_path: Path) -> None:
    repo_id = "tester/same-version"
    first, other = published(tmp_path), published(tmp_path, FEWER, "other")
    push_dataset(first, repo_id, endpoint=hub.endpoint)
    commits = hub.commit_count(repo_id)

    err = error_of(other, repo_id, hub)  # also version 1, different content
    assert "v1" in str(err) and "new manifest version" in str(err)
    assert hub.commit_count(repo_id) == commits


def test_concurrent_commit_makes_the_push_fail_cleanly(hub: HubServer, tmp_path: Path) -> None:
    repo_id = "tester/race"
    out = published(tmp_path)
    push_dataset(out, repo_id, endpoint=hub.endpoint)
    publish_pairs(out, FEWER)
    commits = hub.commit_count(repo_id)

    # Someone else commits after we read the head and before our commit arrives.
    hub.race(repo_id, {"notes.txt": b"edited on the Hub\n"})
    err = error_of(out, repo_id, hub)
    assert "moved" in str(err) and "push again" in str(err)
    assert hub.commit_count(repo_id) == commits + 1  # theirs only
    assert hub.repo(repo_id).tags.keys() == {"v1"}

    result = push_dataset(out, repo_id, endpoint=hub.endpoint)  # re-diffs against the new head
    assert result["changed"] and result["tag"] == "v2"
    assert hub.files(repo_id)["notes.txt"] == b"edited on the Hub\n"  # not ours to delete


def test_missing_token_says_how_to_log_in(
    hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    before = len(hub.requests)
    err = error_of(published(tmp_path), "tester/no-token", hub)
    assert "HF_TOKEN" in str(err) and "hf auth login" in str(err)
    assert len(hub.requests) == before  # failed before any request


def test_saved_login_is_used(hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_TOKEN")
    token_path = Path(huggingface_hub.constants.HF_TOKEN_PATH)
    token_path.parent.mkdir(parents=True, exist_ok=True)
    token_path.write_text(TOKEN)
    assert push_dataset(published(tmp_path), "tester/saved-login", endpoint=hub.endpoint)["changed"]


def test_wrong_token_is_rejected_without_echoing_it(
    hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_wrong_" + TOKEN)
    err = error_of(published(tmp_path), "tester/wrong-token", hub)
    assert "401" in str(err) and "HF_TOKEN" in str(err)


def test_read_only_token_reports_missing_permission(
    hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = published(tmp_path)
    push_dataset(out, "tester/read-only", endpoint=hub.endpoint)
    publish_pairs(out, FEWER)
    commits = hub.commit_count("tester/read-only")

    monkeypatch.setenv("HF_TOKEN", READ_TOKEN)
    err = error_of(out, "tester/read-only", hub)
    assert "permission" in str(err) and "403" in str(err)
    assert hub.commit_count("tester/read-only") == commits

    err = error_of(out, "tester/not-yet-created", hub)  # creating the repo is refused too
    assert "permission" in str(err) and "does not exist" in str(err)
    assert ("dataset", "tester/not-yet-created") not in hub.repos


def test_missing_branch_is_a_clear_error(hub: HubServer, tmp_path: Path) -> None:
    out = published(tmp_path)
    push_dataset(out, "tester/branches", endpoint=hub.endpoint)
    err = error_of(out, "tester/branches", hub, revision="dev")
    assert "branch 'dev' does not exist" in str(err)


def test_network_failure_is_retried_then_names_the_endpoint(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as sock:  # a free port with nothing listening on it
        sock.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{sock.getsockname()[1]}"
    out = published(tmp_path)
    started = time.monotonic()
    with pytest.raises(HubError) as info:
        push_dataset(out, "tester/offline", endpoint=endpoint, retries=2)
    TRANSCRIPT.append(str(info.value))
    assert endpoint in str(info.value) and "3 attempts" in str(info.value)
    retries = [r for r in caplog.records if r.name == HUB_LOGGER and "retry" in r.getMessage()]
    assert len(retries) == 2
    assert time.monotonic() - started < 10


def test_a_garbled_reply_is_a_transfer_error_and_is_retried(
    hub: HubServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A 200 whose body is not JSON raises outside the HTTP error types; it is retried like one."""
    out = published(tmp_path)
    hub.fail_next("/preupload/", "garble")
    result = push_dataset(out, "tester/garbled", endpoint=hub.endpoint)
    assert result["changed"] and result["tag"] == "v1"
    assert hub.files("tester/garbled")["manifest.json"] == (out / "manifest.json").read_bytes()
    logged = [r.getMessage() for r in caplog.records if r.name == HUB_LOGGER]
    retries = [line for line in logged if "retry" in line]
    assert len(retries) == 1 and "JSONDecodeError" in retries[0]


def test_retries_running_out_on_a_non_http_error_is_one_line_saying_nothing_was_committed(
    hub: HubServer, tmp_path: Path
) -> None:
    out = published(tmp_path)
    hub.fail_next("/tree/", "garble", times=3)  # the file listing, before any commit is sent
    err = error_of(out, "tester/garbled-out", hub, retries=2)
    assert "\n" not in str(err)
    assert "JSONDecodeError" in str(err) and "3 attempts" in str(err) and "nothing was committed" in str(err)
    assert hub.commit_count("tester/garbled-out") <= 1  # at most the repo's initial commit


def test_a_commit_whose_reply_was_lost_is_reported_as_this_runs_commit(
    hub: HubServer, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    out = published(tmp_path)
    repo_id = "tester/lost-reply"
    hub.fail_next("/commit/", "lose_reply")
    assert main(["publish", str(out), "--repo-id", repo_id]) == 0
    printed, err = capfd.readouterr()
    TRANSCRIPT.extend([printed, err])
    head = hub.repo(repo_id).branches["main"]
    assert printed.splitlines() == [f"hub: {repo_id}@main commit {head} tag v1"]
    assert hub.repo(repo_id).tags == {"v1": head}
    assert [c.title for c in hub.repo(repo_id).commits].count("Publish 30 pairs (v1)") == 1


def test_a_tag_whose_reply_was_lost_is_reported_as_this_runs_tag(hub: HubServer, tmp_path: Path) -> None:
    out = published(tmp_path)
    hub.fail_next("/tag/", "lose_reply")
    result = push_dataset(out, "tester/lost-tag", endpoint=hub.endpoint)
    assert result["changed"] and result["tag"] == "v1"
    assert hub.repo("tester/lost-tag").tags == {"v1": result["commit"]}


def test_an_interrupted_publish_is_not_pushed(hub: HubServer, tmp_path: Path) -> None:
    out = published(tmp_path)
    shard = next((out / "data").glob("train-*.parquet"))
    shard.write_bytes(shard.read_bytes()[:-10])  # what a publish killed mid-move leaves behind
    err = error_of(out, "tester/interrupted", hub)
    assert "does not hold the files its manifest lists" in str(err)
    assert ("dataset", "tester/interrupted") not in hub.repos


def test_token_never_printed_or_logged() -> None:
    """Runs last (file order): everything the module printed, logged or raised, without the token."""
    text = "\n".join(TRANSCRIPT)
    # The transcript did capture the traffic, huggingface_hub DEBUG records and subprocess output.
    assert "HTTP Request: POST http://127.0.0.1" in text and "About to commit" in text
    assert "Generating train split" in text
    leaked = TOKEN in text or READ_TOKEN in text
    assert not leaked, "a test token appeared in printed or logged output"  # message must not show it
