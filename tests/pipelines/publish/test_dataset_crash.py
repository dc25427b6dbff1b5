"""Crash-safe publishing: a killed or damaged publish never sends the version history backwards.

The store records the last version it published to each folder, so a lost or damaged manifest is
rebuilt from it; a publish killed with SIGKILL (a real child process that kills itself at a chosen
call) is finished by the next one as the next version, with the same pairs and no leftovers.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from actforge.pipelines.publish.dataset import publish
from actforge.pipelines.publish.layout import read_manifest
from actforge.pipelines.store.database import Store
from tests.support.factories import HISTORY_CHARS, PROVENANCE, ROOT, TRAJECTORIES, add_pairs

GROWN = TRAJECTORIES | {"t6": ("validation", 3)}
MORE = GROWN | {"t7": ("test", 2)}


def publish_from(store_path: Path, out: Path, trajectories: dict) -> dict:
    with Store(store_path) as store:
        ids = add_pairs(store, trajectories)
        return publish(store, out, ids, PROVENANCE, store.counts(ids, ["scienceworld"]), HISTORY_CHARS)


def shard_hashes(out: Path) -> dict[str, str]:
    return {s["path"]: s["sha256"] for s in read_manifest(out)["shards"]}


def damage(out: Path, how: str) -> None:
    if how == "manifest removed":
        (out / "manifest.json").unlink()
    elif how == "manifest garbled":
        (out / "manifest.json").write_text('{"version": 2, "shards": [', encoding="utf-8")
    elif how == "manifest emptied":
        (out / "manifest.json").write_bytes(b"")
    else:
        shutil.rmtree(out)


DAMAGES = ["manifest removed", "manifest garbled", "manifest emptied", "folder removed"]


@pytest.mark.parametrize("how", DAMAGES)
def test_a_lost_or_damaged_manifest_is_rebuilt_from_the_store(tmp_path: Path, how: str) -> None:
    store, out = tmp_path / "s.duckdb", tmp_path / "ds"
    publish_from(store, out, TRAJECTORIES)
    second = publish_from(store, out, GROWN)
    assert second["version"] == 2
    damage(out, how)
    again = publish_from(store, out, GROWN)
    assert again == second  # the same content is the same version, never version 1 again
    assert read_manifest(out) == second and shard_hashes(out) == {
        s["path"]: s["sha256"] for s in second["shards"]
    }
    third = publish_from(store, out, MORE)
    assert (third["version"], third["parent_version"]) == (3, 2)
    assert [h["version"] for h in third["history"]] == [1, 2, 3]


def test_a_store_that_lost_its_record_follows_the_folder(tmp_path: Path) -> None:
    """A fresh store publishing into a folder with a newer manifest continues that folder's history."""
    out = tmp_path / "ds"
    publish_from(tmp_path / "a.duckdb", out, TRAJECTORIES)
    publish_from(tmp_path / "a.duckdb", out, GROWN)
    assert publish_from(tmp_path / "b.duckdb", out, MORE)["version"] == 3


# The child publishes GROWN into OUT (which holds version 1 of TRAJECTORIES) and SIGKILLs itself on
# the n-th call of a function, optionally only from a given caller and with a given target file.
CHILD = textwrap.dedent(
    """
    import os, signal, sys, json
    from pathlib import Path
    from tests.pipelines.publish.test_dataset_crash import GROWN, publish_from

    store, out, function, nth, caller, target = json.loads(sys.argv[1])
    calls = 0

    def hook(frame, event, arg):
        global calls
        if event != "call" or frame.f_code.co_name != function:
            return
        if caller is not None and frame.f_back.f_code.co_name != caller:
            return
        if target is not None and getattr(frame.f_locals.get("target"), "name", None) != target:
            return
        calls += 1
        if calls == nth:
            os.kill(os.getpid(), signal.SIGKILL)

    sys.setprofile(hook)
    publish_from(Path(store), Path(out), GROWN)
    sys.setprofile(None)
    print("not killed")
    """
)

KILL_POINTS = {
    "while writing shards": ("_write_split", 4, None, None),
    "before the first move": ("commit", 1, None, None),
    "after some shards moved": ("replace", 3, "commit", None),
    "before the card moved": ("replace", 1, "commit", "README.md"),
    "before the manifest switched": ("replace", 1, "commit", "manifest.json"),
    "before the store recorded it": ("record_publish", 1, None, None),
}


@pytest.mark.slow  # a child process per kill point, about 4 s each
@pytest.mark.parametrize("point", KILL_POINTS)
def test_a_publish_killed_anywhere_is_finished_by_the_next_as_the_next_version(
    tmp_path: Path, point: str
) -> None:
    reference = publish_from(tmp_path / "ref.duckdb", tmp_path / "ref", GROWN)
    store, out = tmp_path / "s.duckdb", tmp_path / "ds"
    first = publish_from(store, out, TRAJECTORIES)
    args = json.dumps([str(store), str(out), *KILL_POINTS[point]])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.run(
        [sys.executable, "-c", CHILD, args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert child.returncode == -signal.SIGKILL, child.stdout + child.stderr
    if point == "before the store recorded it":
        assert read_manifest(out)["version"] == 2  # the switch happened; only the store missed it
    else:
        assert read_manifest(out) == first  # the old manifest stays until the one-rename switch

    finished = publish_from(store, out, GROWN)
    assert (finished["version"], finished["parent_version"]) == (2, 1)
    assert shard_hashes(out) == {s["path"]: s["sha256"] for s in reference["shards"]}  # the same pairs
    assert not list(out.glob(".publish-*"))
    assert publish_from(store, out, GROWN) == finished  # and it stays version 2


# `actforge build` in a child that SIGKILLs itself on the n-th call of MODULE.NAME (the function,
# wrapped where the flow looks it up; the wrapper only counts calls, then calls the real one).
CLI_CHILD = textwrap.dedent(
    """
    import importlib, json, os, signal, sys
    from actforge.flows.cli import main

    kill, argv = json.loads(sys.argv[1])
    if kill:
        module_name, name, nth = kill
        module = importlib.import_module(module_name)
        real, calls = getattr(module, name), []

        def counted(*args, **kwargs):
            calls.append(1)
            if len(calls) == nth:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)

        setattr(module, name, counted)
    sys.exit(main(argv))
    """
)


def survivors(marker: str) -> list[str]:
    """Processes still alive that a run started (they inherited its marker variable)."""
    import psutil

    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        try:
            if process.environ().get("ACTFORGE_TEST_RUN") == marker:
                found.append(f"{process.pid}: {' '.join(process.info['cmdline'] or [])}")
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return found


@pytest.mark.slow
@pytest.mark.integration
def test_a_build_killed_while_sampling_or_publishing_leaves_nothing_behind(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    """Killed CLI builds leave no process (Prefect's API lives in a thread of the CLI), and the
    build that finishes publishes the pairs of an uninterrupted build as the next version."""
    marker = os.urandom(8).hex()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")},
        "PYTHONPATH": str(ROOT),
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "HF_HUB_OFFLINE": "1",
        "ACTFORGE_TEST_RUN": marker,
    }
    first = ["--source", str(ROOT / "data/examples/native.jsonl")]
    both = [*first, "--source", str(ROOT / "data/examples/eto_alfworld.json")]
    common = ["--policy", str(tiny_model_dir), "--k", "2", "--batch-size", "8"]

    def build(sources: list[str], name: str, kill: tuple[str, str, int] | None = None) -> int:
        argv = ["build", *sources, *common, "--out", str(tmp_path / name)]
        argv += ["--store", str(tmp_path / f"{name}.duckdb")]
        log = tmp_path / f"{name}-{kill[1] if kill else 'full'}.log"
        with log.open("w") as output:  # a file, not a pipe: an orphan holding a pipe would hang us
            code = subprocess.run(
                [sys.executable, "-c", CLI_CHILD, json.dumps([kill, argv])],
                cwd=tmp_path,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=300,
            ).returncode
        assert not survivors(marker), log.read_text()
        assert kill is not None or code == 0, log.read_text()  # a finished build shows why it failed
        return code

    build(both, "reference")
    build(first, "ds")
    steps, dataset = "actforge.pipelines.steps", "actforge.pipelines.publish.dataset"
    assert build(both, "ds", (steps, "store_batch", 2)) == -signal.SIGKILL  # sampling
    assert build(both, "ds", (dataset, "commit", 1)) == -signal.SIGKILL  # publishing
    assert read_manifest(tmp_path / "ds")["version"] == 1
    build(both, "ds")
    finished = read_manifest(tmp_path / "ds")
    assert (finished["version"], finished["parent_version"]) == (2, 1)
    assert shard_hashes(tmp_path / "ds") == shard_hashes(tmp_path / "reference")
    assert not list((tmp_path / "ds").glob(".publish-*"))
