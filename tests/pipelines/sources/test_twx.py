"""TextWorld Express as a live source: the spec grammar, and gold paths replayed on the real engine
(small household games, few seeds)."""

from __future__ import annotations

import pytest

from actforge.pipelines.sources.registry import check_source, collect, fingerprint
from actforge.pipelines.sources.selectors import IdRange, SplitHead
from actforge.pipelines.sources.twx import ENVIRONMENT, Game, parse_spec

SMALL = (
    "twc[numLocations=1,numItemsToPutAway=2],"
    "cookingworld[numLocations=1,numIngredients=1,numDistractorItems=0]"
)


def test_games_with_parameters_and_seeds() -> None:
    request = parse_spec(f"twx:{SMALL}@train:2,dev:1,20000-20001")
    assert request.games == (
        Game("twc", (("numLocations", 1), ("numItemsToPutAway", 2))),
        Game("cookingworld", (("numLocations", 1), ("numIngredients", 1), ("numDistractorItems", 0))),
    )
    assert request.games[0].engine_parameters == "numLocations=1,numItemsToPutAway=2"
    assert request.selectors == (SplitHead("train", 2), SplitHead("dev", 1), IdRange(20000, 20001))
    assert parse_spec("twx:twc").selectors == (SplitHead("train", 1),)
    assert parse_spec("twx:twc,coin").games == (Game("twc"), Game("coin"))


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ("twx:", "no TextWorld Express game"),
        ("twx:alfworld", "unknown TextWorld Express game 'alfworld'"),
        ("twx:twc[rooms]", "malformed parameter 'rooms' of twc"),
        ("twx:twc[numLocations=two]", "malformed parameter"),
        ("twx:twc[numLocations=1", "malformed TextWorld Express games"),
        ("twx:twc@train:0", "asks for no variations"),
        ("twx:twc@5-3", "empty variation range"),
    ],
)
def test_bad_specs_are_clear_errors(spec: str, error: str) -> None:
    with pytest.raises(ValueError, match=error.replace("[", r"\[")):
        check_source(spec)


@pytest.mark.slow  # starts the TextWorld Express JVM
def test_gold_paths_replay_on_the_real_engine() -> None:
    spec = f"twx:{SMALL}@train:2,dev:1"
    collected = collect(spec, progress=False)
    trajectories = collected.trajectories.to_pylist()
    assert collected.quarantined.num_rows == 0
    assert sorted((t["task"], t["split"]) for t in trajectories) == sorted(
        [(game, split) for game in ("twc", "cookingworld") for split in ("train", "train", "validation")]
    )
    assert {t["environment"] for t in trajectories} == {ENVIRONMENT}
    assert all(t["success"] and t["reward"] == 1.0 for t in trajectories)  # kept only when the replay won
    steps = collected.steps.to_pylist()
    assert len(steps) == sum(t["num_steps"] for t in trajectories) > 6
    # Every step records the engine's valid actions, and the expert's action is one of them.
    assert all(step["admissible"] and step["action"] in step["admissible"] for step in steps)
    # The same spec collects the same episodes; other parameters are other episodes.
    again = collect(spec, progress=False)
    assert (
        again.trajectories["trajectory_id"].to_pylist() == collected.trajectories["trajectory_id"].to_pylist()
    )
    bigger = collect("twx:twc[numLocations=2,numItemsToPutAway=2]@train:1", progress=False)
    first_twc = next(t for t in trajectories if t["task"] == "twc" and t["split"] == "train")
    assert bigger.trajectories["trajectory_id"][0].as_py() != first_twc["trajectory_id"]
    assert fingerprint(spec) != fingerprint("twx:twc@train:2")


@pytest.mark.slow  # starts the TextWorld Express JVM
def test_engine_refusals_are_quarantined_with_reasons() -> None:
    collected = collect("twx:twc[bogus=3],coin@train:1,999999", progress=False)
    reasons = {(q["position"], q["reason"]) for q in collected.quarantined.to_pylist()}
    assert reasons == {("twc[bogus=3]", "engine_error"), ("coin@999999", "no_such_variation")}
    details = {q["reason"]: q["detail"] for q in collected.quarantined.to_pylist()}
    assert "Unrecognized property name (bogus)" in details["engine_error"]  # the engine's own words
    assert collected.trajectories["task"].to_pylist() == ["coin"]  # the rest of the source goes on
