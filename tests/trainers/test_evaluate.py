"""trainers.evaluate: scoring truth tables, tables, and a real greedy run of the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from actforge.pipelines.policy.models import load_policy
from actforge.pipelines.publish.layout import read_manifest
from actforge.schemas.ids import state_id
from actforge.trainers.evaluate import (
    ACTION_TOKENS,
    action_prompts,
    answer_probabilities,
    answer_token_ids,
    compare_table,
    critic_prompts,
    critic_rows,
    evaluate,
    expert_states,
    format_table,
    generate_greedy,
    score_actions,
    score_pairs,
    write_result,
)
from tests.support.factories import publish_pairs


def rows_of(slots_by_pair: dict[str, tuple[int, ...]]) -> list[dict]:
    return [{"pair_id": pair, "expert_slot": slot} for pair, slots in slots_by_pair.items() for slot in slots]


def test_score_pairs_truth_table() -> None:
    rows = rows_of({"a": (1, 2), "b": (1, 2), "c": (1, 2)})
    # a: right in both orders; b: right with the expert in slot 1 only; c: wrong in both.
    p_slot_1 = [0.9, 0.2, 0.8, 0.7, 0.4, 0.6]
    result = score_pairs(rows, p_slot_1)
    assert result["accuracy"] == pytest.approx(3 / 6)
    assert result["consistent_accuracy"] == pytest.approx(1 / 3)
    assert result["slot_1"] == {"accuracy": pytest.approx(2 / 3), "n": 3}
    assert result["slot_2"] == {"accuracy": pytest.approx(1 / 3), "n": 3}
    p_expert = [0.9, 0.8, 0.8, 0.3, 0.4, 0.4]
    assert result["p_expert"] == pytest.approx(sum(p_expert) / 6)
    assert result["margin"] == pytest.approx(sum(2 * p - 1 for p in p_expert) / 6)
    assert (result["pairs"], result["n"]) == (3, 6)
    with pytest.raises(ValueError):
        score_pairs(rows, p_slot_1[:-1])


@pytest.mark.parametrize("p_slot_1", [0.99, 0.01, 0.7])
def test_a_constant_answer_scores_zero_consistent(p_slot_1: float) -> None:
    rows = rows_of({f"p{i}": (1, 2) for i in range(10)})
    result = score_pairs(rows, [p_slot_1] * len(rows))
    assert result["consistent_accuracy"] == 0.0 and result["accuracy"] == 0.5
    assert {result["slot_1"]["accuracy"], result["slot_2"]["accuracy"]} == {0.0, 1.0}


def test_score_actions_truth_table() -> None:
    cases = [  # (completion after "Action:", expert action, environment)
        (" go to kitchen\nObservation: ...", "go to kitchen", "scienceworld"),  # equal on its first line
        (" examine the Thermometer.", "look at thermometer", "scienceworld"),  # alias-equal
        (" open door to hallway", "open fridge 1", "alfworld"),  # a different action
        ("", "look around", "scienceworld"),  # nothing: unparseable
        ("  ", "look", "generic"),  # only spaces: unparseable
        (" pick up key 1", "take key 1", "alfworld"),  # ALFWorld alias
        (" take key", "pick up key", "generic"),  # a ScienceWorld alias, but generic has none
    ]
    completions, experts, environments = (list(column) for column in zip(*cases, strict=True))
    assert score_actions(completions, experts, environments) == {
        "accuracy": 3 / 7,
        "unparseable": 2 / 7,
        "n": 7,
    }
    assert score_actions([" take key"], ["pick up key"], ["scienceworld"])["accuracy"] == 1.0
    with pytest.raises(ValueError):
        score_actions([" go north"], ["go north"], [])


@pytest.mark.usefixtures("hf_offline")
def test_evaluate_tiny_model(dataset: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    result = evaluate(str(dataset), str(tiny_model_dir), batch_size=4, free_text_tokens=4)

    assert set(result) == {"model", "policy", "data", "split", "protocol", "critic", "action"}
    assert (result["model"], result["data"], result["split"]) == (str(tiny_model_dir), str(dataset), "test")
    assert result["policy"].startswith("tiny-llama@") and result["protocol"] == "direct"
    critic, action = result["critic"], result["action"]
    assert (critic["pairs"], critic["n"], action["n"]) == (8, 16, 5)
    assert critic["slot_1"]["n"] == critic["slot_2"]["n"] == 8
    assert 0.0 <= critic["tag_rate"] <= 1.0

    # The reported numbers are the answer probabilities of the one critic prompt, recomputed here.
    policy = load_policy(str(tiny_model_dir))
    rows = critic_rows(str(dataset), "test")
    prompts = critic_prompts(policy, rows, "direct")
    assert all(policy.tokenizer.decode(ids).endswith("<|im_start|>assistant\n<answer>") for ids in prompts)
    probabilities = answer_probabilities(policy, prompts, batch_size=4)
    recomputed = score_pairs(rows, probabilities)
    assert set(recomputed) == set(critic) - {"tag_rate"}
    for key, value in recomputed.items():
        assert critic[key] == (pytest.approx(value, abs=1e-6) if isinstance(value, float) else value)
    # Batching with left padding does not change them (beyond float rounding).
    for batch_size in (1, 5):
        assert answer_probabilities(policy, prompts, batch_size) == pytest.approx(probabilities, abs=1e-6)
    states = expert_states(str(dataset), "test")
    actions = generate_greedy(policy, action_prompts(policy, states), 4, ACTION_TOKENS, ["\n"])
    expected = score_actions(actions, [s.expert_action for s in states], [s.environment for s in states])
    assert expected == action

    path = tmp_path / "results" / "tiny.json"
    write_result(result, path)
    assert path.read_text(encoding="utf-8") == json.dumps(result, sort_keys=True, indent=2) + "\n"


@pytest.mark.usefixtures("hf_offline")
def test_reason_protocol_reasons_then_opens_the_answer(dataset: Path, tiny_model_dir: Path) -> None:
    policy = load_policy(str(tiny_model_dir))
    rows = critic_rows(str(dataset), "test", max_pairs=2)
    direct = critic_prompts(policy, rows, "direct")
    reason = critic_prompts(policy, rows, "reason")
    for short, long in zip(direct, reason, strict=True):
        text = policy.tokenizer.decode(long)
        assert text.endswith("<answer>") and len(long) > len(short)
    result = evaluate(str(dataset), str(tiny_model_dir), max_pairs=2, max_states=1, protocol="reason")
    assert result["protocol"] == "reason" and result["critic"]["pairs"] == 2


@pytest.mark.usefixtures("hf_offline")
def test_selection_is_sorted_and_capped(dataset: Path, tiny_model_dir: Path) -> None:
    rows = critic_rows(str(dataset), "test")
    ids = sorted({row["pair_id"] for row in rows})
    assert [(r["pair_id"], r["expert_slot"]) for r in rows] == [(i, s) for i in ids for s in (1, 2)]
    assert len(ids) == 8
    assert [row["pair_id"] for row in critic_rows(str(dataset), "test", max_pairs=3)] == sorted(ids[:3] * 2)
    states = expert_states(str(dataset), "test")
    expected = sorted([state_id("t0", i) for i in range(3)] + [state_id("t1", i) for i in range(2)])
    assert [s.state_id for s in states] == expected
    assert expert_states(str(dataset), "test", max_states=2) == states[:2]

    result = evaluate(str(dataset), str(tiny_model_dir), max_pairs=3, max_states=2)
    assert (result["critic"]["pairs"], result["action"]["n"]) == (3, 2)


def test_answers_must_be_single_tokens(tiny_model_dir: Path) -> None:
    tokenizer = load_policy(str(tiny_model_dir)).tokenizer
    one, two = answer_token_ids(tokenizer)
    assert tokenizer.decode([one]) == "1" and tokenizer.decode([two]) == "2"


RESULT = {
    "model": "base",
    "split": "test",
    "critic": {
        "consistent_accuracy": 0.25,
        "accuracy": 0.5,
        "pairs": 4,
        "p_expert": 0.5,
        "slot_1": {"accuracy": 0.75, "n": 4},
        "slot_2": {"accuracy": 0.25, "n": 4},
    },
    "action": {"accuracy": 0.2, "unparseable": 0.0, "n": 5},
}
TRAINED = {
    **RESULT,
    "model": "out/act-model",
    "critic": {**RESULT["critic"], "accuracy": 0.875, "slot_2": {"accuracy": None, "n": 0}},
    "play": {"mean_score": 25.0, "success_rate": 0.5},
}


def test_format_table() -> None:
    lines = format_table([RESULT, TRAINED], ["base", "ACT"]).splitlines()
    assert lines[0].split()[:5] == ["model", "pairs", "states", "consistent", "critic"]
    assert set(lines[1]) == {"-", " "}
    assert lines[2].split() == "base 4 5 0.250 0.500 0.750 0.250 - 0.500 0.200 - -".split()
    assert lines[3].split() == "ACT 4 5 0.250 0.875 0.750 - - 0.500 0.200 25.000 0.500".split()
    assert len({len(line) for line in lines[:2]}) == 1
    assert format_table([{"model": "m", "play": {"mean_score": 8.0}}]).splitlines()[2].split()[:3] == [
        "m",
        "-",
        "-",
    ]


def test_compare_table() -> None:
    lines = compare_table(RESULT, TRAINED).splitlines()
    assert lines[0].split() == ["metric", "before", "(base)", "after", "(out/act-model)", "delta"]
    rows = {line[:12].strip(): line[12:].split() for line in lines[2:]}
    assert rows["critic acc"] == ["0.500", "0.875", "+0.375"]
    assert rows["slot-2 acc"] == ["0.250", "-", "-"]
    assert rows["play score"] == ["-", "25.000", "-"]


def test_a_folder_republished_in_place_is_read_at_its_new_version(tmp_path: Path, hf_offline: None) -> None:
    """`datasets` caches a local folder under its card's features and its file names, not their
    content, so `load_dataset` served the first version's rows after a rebuild in place with the same
    shard names; training and evaluation read the shards the manifest lists."""
    from actforge.trainers.train import held_out_splits

    out = tmp_path / "ds"
    publish_pairs(out, {"t0": ("test", 3), "t1": ("validation", 2)})
    assert len(critic_rows(str(out), "test")) == 2 * 3 and len(expert_states(str(out), "test")) == 3
    publish_pairs(out, {"t0": ("test", 3), "t1": ("validation", 2), "t2": ("test", 4)})
    assert read_manifest(out)["version"] == 2
    assert len(critic_rows(str(out), "test")) == 2 * 7 and len(expert_states(str(out), "test")) == 7
    assert held_out_splits(str(out)) == ["validation", "test"]
    with pytest.raises(ValueError, match="no 'act' rows in split 'train'"):
        critic_rows(str(out), "train")
