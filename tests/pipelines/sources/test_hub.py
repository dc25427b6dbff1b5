"""`hf:` sources: trajectory datasets read from a Hub repo (the loopback Hub, the real client), pinned
to the commit their revision named, through the client's cache (so a cached commit reads offline)."""

from __future__ import annotations

from pathlib import Path

import huggingface_hub.constants
import pytest
from huggingface_hub import HfApi

from actforge.flows.cli import main
from actforge.pipelines.sources.hub import parse_spec
from actforge.pipelines.sources.registry import collect, fingerprint
from actforge.schemas.vocab import ALFWORLD, SCIENCEWORLD
from tests.support.hub_datasets import SPECS, trajectory_repos, upload
from tests.support.hub_server import READ_TOKEN, TOKEN, HubServer

pytestmark = pytest.mark.slow  # starts the loopback Hub


@pytest.fixture
def repos(hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The four repos on the loopback Hub, a cache of this test's own; repo id -> commit sha."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    return upload(HfApi(token=TOKEN), trajectory_repos())


def test_four_dataset_shapes_read_at_their_commit(
    repos: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    read = {repo: collect(spec, progress=False) for repo, spec in SPECS.items()}
    for repo, collected in read.items():
        pinned = parse_spec(SPECS[repo]).at(repos[repo])
        assert collected.quarantined.num_rows == 0, collected.quarantined.to_pylist()
        assert set(collected.trajectories["source"].to_pylist()) == {pinned}
    # AgentInstruct: the alfworld split only; the loss flags skip the few-shot reply's action.
    instruct = read["THUDM/AgentInstruct"]
    assert sorted(instruct.trajectories["instruction"].to_pylist()) == [
        "cool a mug.",
        "put a pencil in shelf.",
    ]
    assert set(instruct.trajectories["environment"].to_pylist()) == {ALFWORLD}
    assert sorted(instruct.steps["action"].to_pylist()) == sorted(
        ["go to desk 1", "take pencil 1", "go to fridge 1", "open fridge 1"]
    )
    # AgentTraj-L: one file of the repo (not alfworld_train.json); the environment from the item ids.
    agentgym = read["AgentGym/AgentTraj-L"]
    assert sorted(agentgym.steps["action"].to_pylist()) == ["focus on frog", "go to kitchen", "look around"]
    assert set(agentgym.trajectories["environment"].to_pylist()) == {SCIENCEWORLD}
    assert read["agent-eto/eto-sft-trajectory"].trajectories.num_rows >= 1
    assert set(read["osunlp/early-experience"].trajectories["environment"].to_pylist()) == {SCIENCEWORLD}

    # Cached: the same trajectories with the Hub unreachable, from the client's cache alone.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")
    for repo, spec in SPECS.items():
        assert collect(spec, progress=False).trajectories.equals(read[repo].trajectories), repo


def test_the_fingerprint_follows_the_commit_and_asks_only_for_the_revision(
    hub: HubServer, repos: dict[str, str]
) -> None:
    spec = SPECS["AgentGym/AgentTraj-L"]
    hub.requests.clear()
    first = fingerprint(spec)
    assert hub.requests == [("GET", "/api/datasets/AgentGym/AgentTraj-L/revision/main")]
    assert fingerprint(spec) == first
    hub.commit_files("AgentGym/AgentTraj-L", {"sciworld_train.json": b"[]"})
    assert fingerprint(spec) != first


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("hf:nobody/missing", "no dataset repo nobody/missing at http://"),
        ("hf:AgentGym/AgentTraj-L@v9", "AgentGym/AgentTraj-L has no revision 'v9'"),
        ("hf:AgentGym/AgentTraj-L:../../etc/passwd", "must stay inside the repo"),
        ("hf:AgentGym/AgentTraj-L:/etc/passwd", "must stay inside the repo"),
        ("hf:not-a-repo", "expected hf:OWNER/NAME"),
    ],
)
def test_a_bad_hub_spec_is_one_line_before_any_work(
    repos: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str], spec: str, message: str
) -> None:
    assert main(["build", "--source", spec, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("actforge: error: ") and message in err and err.count("\n") == 1, err
    assert TOKEN not in err and not (tmp_path / "out").exists()


def test_a_private_repo_needs_a_token_that_may_read_it(
    hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    repo = "AgentGym/AgentTraj-L"
    [commit] = upload(HfApi(token=TOKEN), {repo: trajectory_repos()[repo]}, private=True).values()
    monkeypatch.delenv("HF_TOKEN")
    assert main(["build", "--source", SPECS[repo], "--out", str(tmp_path / "out")]) == 2
    assert "a private one needs a token with read access in HF_TOKEN" in capsys.readouterr().err
    monkeypatch.setenv("HF_TOKEN", READ_TOKEN)
    collected = collect(SPECS[repo], progress=False)
    assert set(collected.trajectories["source"].to_pylist()) == {parse_spec(SPECS[repo]).at(commit)}
    assert READ_TOKEN not in capsys.readouterr().err
