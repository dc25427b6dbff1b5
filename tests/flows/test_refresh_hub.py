"""`actforge refresh` with `push_to_hub`, against the loopback Hub (`tests/support/hub_server.py`).

Done when: adding one trajectory to a source and refreshing adds exactly its pairs, bumps the version
and makes exactly one Hub commit that `load_dataset(repo_id)` reads back with the new row count; an
identical refresh makes no commit. The token reaches the push only through `HF_TOKEN`, and the
endpoint only through huggingface_hub's own setting (`constants.ENDPOINT`, what `HF_ENDPOINT` sets at
import), as for a user; it never appears in anything printed or logged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from actforge.flows.cli import main
from actforge.pipelines.project import load_project
from tests.support.factories import append_new_trajectory, make_project
from tests.support.hub_server import TOKEN, HubServer, load_counts

REPO_ID = "user/ds"
LOGGERS = ("", "huggingface_hub", "httpx2", "pipelines", "flows", "prefect")
FORMAT = logging.Formatter("%(levelname)s %(name)s %(message)s")  # also renders tracebacks


# The Prefect test server and the loopback Hub.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.usefixtures("prefect_harness", "hf_offline"),
]


@pytest.fixture(autouse=True)
def hub_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every log record of the push and the build captured, to look for the token in
    (conftest's `hub` is the loopback Hub; `hf_offline` keeps the build off the network)."""
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    prefect = logging.getLogger("prefect")  # does not propagate to the root logger caplog listens on
    prefect.addHandler(caplog.handler)
    try:
        yield
    finally:
        prefect.removeHandler(caplog.handler)


def refresh(config: Path, capfd: pytest.CaptureFixture[str], transcript: list[str], *extra: str) -> str:
    assert main(["refresh", "--project", str(config), *extra]) == 0
    out, err = capfd.readouterr()
    transcript += [out, err]
    return out


def test_refresh_pushes_one_commit_per_new_version(
    tmp_path: Path,
    tiny_model_dir: Path,
    hub: HubServer,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = make_project(tmp_path, tiny_model_dir)
    with config.open("a", encoding="utf-8") as handle:
        handle.write(f"push_to_hub: {REPO_ID}\n")
    out = Path(load_project(config).build.out)
    transcript: list[str] = []

    # 1. First refresh: creates the repo, commits version 1 and tags it.
    printed = refresh(config, capfd, transcript)
    first = json.loads((out / "manifest.json").read_text())
    assert first["version"] == 1 and "version: 1" in printed
    repo = hub.repo(REPO_ID)
    assert f"hub: {REPO_ID}@main commit {repo.branches['main']} tag v1" in printed
    assert repo.tags == {"v1": repo.branches["main"]}
    assert hub.commit_count(REPO_ID) == 2  # the repo's initial commit, then ours
    commits = hub.commit_count(REPO_ID)

    # 2. Identical refresh: nothing sampled, same version, and no commit (nor tag) on the Hub.
    printed = refresh(config, capfd, transcript)
    assert "+0 samples (0 policy calls), +0 pairs" in printed and "version: 1" in printed
    assert f"hub: {REPO_ID}@main already has this version; no commit" in printed
    assert hub.commit_count(REPO_ID) == commits and hub.repo(REPO_ID).tags.keys() == {"v1"}

    # 3. One new trajectory: exactly its pairs, version 2, exactly one commit tagged v2. The repo now
    # comes from the command line instead of the project file.
    append_new_trajectory(tmp_path)
    config.write_text(config.read_text(encoding="utf-8").replace(f"push_to_hub: {REPO_ID}\n", ""), "utf-8")
    printed = refresh(config, capfd, transcript, "--repo-id", REPO_ID)
    assert "+1 trajectories, +3 states" in printed and "version: 2" in printed
    second = json.loads((out / "manifest.json").read_text())
    assert (second["version"], second["parent_version"]) == (2, 1)
    added = sum(second["added"]["pairs"].values())
    assert added > 0 and second["pairs"] == first["pairs"] + added
    assert hub.commit_count(REPO_ID) == commits + 1
    repo = hub.repo(REPO_ID)
    assert f"hub: {REPO_ID}@main commit {repo.branches['main']} tag v2" in printed
    assert repo.tags == {"v1": repo.commits[-2].oid, "v2": repo.commits[-1].oid}
    assert repo.commits[-1].oid == repo.branches["main"] and repo.commits[-1].parent == repo.tags["v1"]
    local = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert {p: d for p, d in hub.files(REPO_ID).items() if p != ".gitattributes"} == local

    counts, output = load_counts(hub.endpoint, TOKEN, tmp_path / "hf-load", REPO_ID, "main", "v1")
    transcript.append(output)
    for revision, manifest in (("v1", first), ("main", second)):
        rows = {s: n for s, n in manifest["splits"].items() if n}
        per_config: dict[str, dict[str, int]] = {}
        for shard in manifest["shards"]:
            split_rows = per_config.setdefault(shard["config"], {})
            split_rows[shard["split"]] = split_rows.get(shard["split"], 0) + shard["rows"]
        assert per_config["default"] == rows and per_config["act"] == {s: 2 * n for s, n in rows.items()}
        assert counts[revision] == per_config
    assert sum(counts["main"]["default"].values()) == sum(counts["v1"]["default"].values()) + added
    assert hub.unhandled == []

    # The token reached the Hub (every request is authenticated) yet nothing printed or logged shows it.
    transcript += [FORMAT.format(r) for r in caplog.get_records("setup") + caplog.get_records("call")]
    text = "\n".join(transcript)
    assert "HTTP Request: POST http://127.0.0.1" in text and "Generating train split" in text
    leaked = TOKEN in text
    assert not leaked, "the test token appeared in printed or logged output"  # message must not show it
