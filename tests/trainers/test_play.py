"""Play: the tiny model acts in the real ScienceWorld and TextWorld Express engines; the aggregation is
checked on its own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from actforge.pipelines.policy.models import Policy
from actforge.trainers.play import play, summarise

SPEC = "scienceworld:find-non-living-thing@test:2"


@pytest.fixture(scope="module")
def result(tiny: Policy) -> dict[str, Any]:
    return play(tiny, SPEC, max_steps=3, progress=False)


@pytest.mark.slow  # the JVM
def test_plays_each_variation_within_the_step_limit(result: dict[str, Any]) -> None:
    assert result["spec"] == SPEC and result["max_steps"] == 3
    episodes = result["episodes"]
    assert [(e["task"], e["split"]) for e in episodes] == [("find-non-living-thing", "test")] * 2
    assert len({e["variation"] for e in episodes}) == 2
    for episode in episodes:
        assert 1 <= episode["steps"] <= 3
        assert len(episode["actions"]) == episode["steps"]
        assert all(isinstance(action, str) for action in episode["actions"])
        assert isinstance(episode["score"], int) and -100 <= episode["score"] <= 100
        assert episode["success"] == (episode["score"] == 100)


@pytest.mark.slow  # the JVM
def test_aggregates_are_means_of_the_episodes(result: dict[str, Any]) -> None:
    episodes = result["episodes"]
    scores = [e["score"] for e in episodes]
    wins = [float(e["success"]) for e in episodes]
    task = result["tasks"]["find-non-living-thing"]
    assert task == {"episodes": 2, "mean_score": sum(scores) / 2, "success_rate": sum(wins) / 2}
    assert (result["mean_score"], result["success_rate"]) == (task["mean_score"], task["success_rate"])


@pytest.mark.slow  # the JVM
def test_greedy_play_is_deterministic(tiny: Policy, result: dict[str, Any]) -> None:
    assert play(tiny, SPEC, max_steps=3, progress=False) == result


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("alfworld:pick", "not a live spec"),
        pytest.param(
            "scienceworld:find-non-living-thing@99999", "no variation 99999", marks=pytest.mark.slow
        ),  # the JVM
    ],
)
def test_bad_spec_raises(tiny: Policy, spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        play(tiny, spec, max_steps=1, progress=False)


@pytest.mark.slow  # the JVM
def test_plays_a_textworld_express_game(tiny: Policy) -> None:
    """The same loop on TextWorld Express: its seeds are the variations, its scores are on 0-100,
    and a failed run is the same run again."""
    spec = "twx:twc[numLocations=1,numItemsToPutAway=1]@test:2"
    result = play(tiny, spec, max_steps=3, progress=False)
    episodes = result["episodes"]
    assert [(e["task"], e["split"]) for e in episodes] == [("twc", "test")] * 2
    assert sorted(e["variation"] for e in episodes) == [20000, 20001]  # the engine's first test seeds
    for episode in episodes:
        assert 1 <= episode["steps"] <= 3 and len(episode["actions"]) == episode["steps"]
        assert isinstance(episode["score"], int) and 0 <= episode["score"] <= 100
        assert episode["success"] == (episode["score"] == 100)
    assert result["tasks"]["twc"]["episodes"] == 2
    assert play(tiny, spec, max_steps=3, progress=False) == result


def test_summarise_weighs_episodes_equally_across_tasks() -> None:
    episodes = [
        {"task": "boil", "score": 100, "success": True},
        {"task": "boil", "score": -100, "success": False},
        {"task": "melt", "score": 30, "success": False},
    ]
    assert summarise(episodes) == {
        "tasks": {
            "boil": {"episodes": 2, "mean_score": 0.0, "success_rate": 0.5},
            "melt": {"episodes": 1, "mean_score": 30.0, "success_rate": 0.0},
        },
        "mean_score": 10.0,
        "success_rate": 1 / 3,
    }


@pytest.mark.slow  # the JVM
def test_cli_eval_play_writes_and_prints_scores(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from actforge.flows.cli import main

    output = tmp_path / "play.json"
    spec = "scienceworld:find-non-living-thing@test:1"
    argv = [
        "eval",
        "--model",
        str(tiny_model_dir),
        "--play",
        spec,
        "--play-steps",
        "2",
        "--out",
        str(output),
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    result = json.loads(output.read_text())
    score = result["play"]["tasks"]["find-non-living-thing"]["mean_score"]
    assert f"play find-non-living-thing: mean score {score:.1f}" in printed
    assert result["play"]["episodes"][0]["steps"] <= 2
    assert main(["eval", "--model", str(tiny_model_dir)]) == 2  # neither --data nor --play
    assert "--data OUT, --play SPEC" in capsys.readouterr().err
