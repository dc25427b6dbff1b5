"""The same live spec gives the same bytes: ScienceWorld's worlds and gold paths (constant JVM identity
hashes) and TextWorld Express's gold paths (the gold agent walks with Random(seed)), load after load,
in one JVM and in fresh ones, through a whole build."""

from __future__ import annotations

from pathlib import Path

import pytest

from actforge.flows.cli import main
from actforge.pipelines.sources.scienceworld import SIMPLIFICATION, _replay, start
from actforge.pipelines.sources.twx import seeded_gold_path
from actforge.pipelines.sources.twx import start as start_twx

pytestmark = pytest.mark.slow  # the JVMs


def _gold_and_world(env, task: str, variation: int) -> tuple[list[str], str, tuple]:
    """A load's gold path, object tree and replayed steps, as collection sees them."""
    env.load(task, variation, SIMPLIFICATION, generateGoldPath=True)
    gold = env.get_gold_action_sequence()
    tree = env.server.getObjectTree("")
    return gold, tree, _replay(env, gold)


def test_scienceworld_loads_repeat_within_one_jvm() -> None:
    # Before: find-animal variation 0 focused on the butterfly, the dove or the blue jay, load by load.
    env = start()
    try:
        first = _gold_and_world(env, "find-animal", 0)
        again = []
        for other in ("find-plant", "find-animal", "find-living-thing"):
            _gold_and_world(env, other, 1)  # other tasks in between, as a build loads them
            again.append(_gold_and_world(env, "find-animal", 0))
    finally:
        env.close()
    assert all(result == first for result in again)
    assert any(action.startswith("focus on") for action in first[0]) and first[2][2] == 100


def test_twx_gold_paths_repeat_within_one_jvm() -> None:
    env = start_twx()
    try:
        paths = []
        for _ in range(4):
            env.load("twc", "")
            paths.append(seeded_gold_path(env, 0, "train"))
    finally:
        env.close()
    assert paths[0] and all(path == paths[0] for path in paths)


@pytest.mark.integration
@pytest.mark.usefixtures("prefect_harness", "hf_offline")
@pytest.mark.parametrize("spec", ["scienceworld:find-animal,find-plant@0,1", "twx:twc@train:2"])
def test_two_builds_on_fresh_stores_write_the_same_bytes(
    tmp_path: Path, tiny_model_dir: Path, spec: str
) -> None:
    shards = []
    for name in ("a", "b"):
        out = tmp_path / name / "ds"
        argv = ["build", "--source", spec, "--policy", str(tiny_model_dir), "--k", "2", "--out", str(out)]
        assert main(argv) == 0
        shards.append({str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.parquet"))})
    assert shards[0] and shards[0] == shards[1]
