"""trainers.evaluate: scoring truth tables, tables, and a real greedy run of the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.ids import state_id
from pipelines.policy import load_policy
from pipelines.publish import publish
from schemas import PAIR_SCHEMA, Step, to_arrow
from tests.factories import make_pair
from trainers.evaluate import (
    action_prompts,
    compare_table,
    critic_prompts,
    critic_rows,
    evaluate,
    expert_states,
    format_table,
    generate_greedy,
    prompt_budget,
    score_actions,
    score_critic,
    write_result,
)

MAX_NEW_TOKENS = 8
# trajectory -> (split, steps, alternatives per state): 8 test pairs over 5 states, 3 train pairs.
TRAJECTORIES = {"t0": ("test", 3, 2), "t1": ("test", 2, 1), "t2": ("train", 3, 1)}


def make_dataset(out: Path) -> Path:
    """A published dataset (both configs) of ScienceWorld-like pairs."""
    records = []
    for name, (split, length, k) in TRAJECTORIES.items():
        steps = tuple(Step(f"This room is called room {i}.", f"go to room {i + 1}") for i in range(length))
        for i in range(length):
            for j in range(k):
                instruction = f"Your task is to find a non-living thing ({name})."
                records.append(make_pair(name, split, steps, i, f"look at thing {j}", j, instruction))
    publish(to_arrow(records, PAIR_SCHEMA), out, {"seed": 0}, {})
    return out


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("eval") / "ds")


def test_score_critic_truth_table() -> None:
    completions = [
        "Action 1 fits. <answer>1</answer>",  # right, expert in slot 1
        "<answer> 2 </answer>",  # right, expert in slot 2
        "<answer>2</answer>",  # wrong, expert in slot 1
        "I cannot tell.",  # unparseable, expert in slot 2
        "<answer>1</answer> or <answer>2</answer>",  # both answers: unparseable, expert in slot 1
        "<answer>3</answer>",  # not a slot: unparseable, expert in slot 1
    ]
    result = score_critic(completions, [1, 2, 1, 2, 1, 1])
    assert result == {
        "accuracy": 2 / 6,
        "unparseable": 3 / 6,
        "n": 6,
        "slot_1": {"accuracy": 1 / 4, "n": 4},
        "slot_2": {"accuracy": 1 / 2, "n": 2},
    }
    assert score_critic([], [])["accuracy"] is None
    assert score_critic(["<answer>1</answer>"], [1])["slot_2"] == {"accuracy": None, "n": 0}
    with pytest.raises(ValueError):
        score_critic(["<answer>1</answer>"], [1, 2])


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
    result = evaluate(str(dataset), str(tiny_model_dir), batch_size=4, max_new_tokens=MAX_NEW_TOKENS)

    assert set(result) == {"model", "policy", "data", "split", "max_new_tokens", "critic", "action"}
    assert (result["model"], result["data"], result["split"]) == (str(tiny_model_dir), str(dataset), "test")
    assert result["policy"].startswith("tiny-llama@")
    critic, action = result["critic"], result["action"]
    assert critic["n"] == 8 and action["n"] == 5
    assert critic["slot_1"]["n"] + critic["slot_2"]["n"] == critic["n"]
    rows = critic_rows(str(dataset), "test")
    assert critic["slot_1"]["n"] == sum(row["expert_slot"] == 1 for row in rows)
    assert 0 < critic["slot_1"]["n"] < critic["n"]
    for value in (critic, critic["slot_1"], critic["slot_2"], action):
        assert 0.0 <= value["accuracy"] <= 1.0
    for value in (critic, action):
        assert 0.0 <= value["unparseable"] <= 1.0

    # The reported shares are the scores of the raw greedy completions, recomputed here.
    policy = load_policy(str(tiny_model_dir))
    budget = prompt_budget(policy, MAX_NEW_TOKENS)
    completions = generate_greedy(policy, critic_prompts(policy, rows, budget), 4, MAX_NEW_TOKENS)
    assert score_critic(completions, [row["expert_slot"] for row in rows]) == critic
    states = expert_states(str(dataset), "test")
    actions = generate_greedy(policy, action_prompts(policy, states, budget), 4, MAX_NEW_TOKENS, ["\n"])
    expected = score_actions(actions, [s.expert_action for s in states], [s.environment for s in states])
    assert expected == action

    path = tmp_path / "results" / "tiny.json"
    write_result(result, path)
    assert path.read_text(encoding="utf-8") == json.dumps(result, sort_keys=True, indent=2) + "\n"


@pytest.mark.usefixtures("hf_offline")
def test_selection_is_sorted_and_capped(dataset: Path, tiny_model_dir: Path) -> None:
    rows = critic_rows(str(dataset), "test")
    ids = [row["pair_id"] for row in rows]
    assert ids == sorted(ids) and len(ids) == 8
    assert [row["pair_id"] for row in critic_rows(str(dataset), "test", max_pairs=3)] == ids[:3]
    states = expert_states(str(dataset), "test")
    expected = sorted([state_id("t0", i) for i in range(3)] + [state_id("t1", i) for i in range(2)])
    assert [s.state_id for s in states] == expected
    assert expert_states(str(dataset), "test", max_states=2) == states[:2]

    result = evaluate(str(dataset), str(tiny_model_dir), max_pairs=3, max_states=2, max_new_tokens=4)
    assert (result["critic"]["n"], result["action"]["n"]) == (3, 2)


@pytest.mark.usefixtures("hf_offline")
def test_prompts_fit_the_context(dataset: Path, tiny_model_dir: Path) -> None:
    policy = load_policy(str(tiny_model_dir))
    rows = critic_rows(str(dataset), "test")
    full = critic_prompts(policy, rows, 10_000)
    assert policy.tokenizer.decode(full[0]).endswith("<|im_start|>assistant\n")
    cut = critic_prompts(policy, rows, 20)
    assert all(len(ids) == 20 for ids in cut)
    assert [ids[-20:] for ids in full] == cut
    states = expert_states(str(dataset), "test")
    assert all(policy.tokenizer.decode(ids).endswith("Action:") for ids in action_prompts(policy, states, 40))
    assert all(len(ids) <= 40 for ids in action_prompts(policy, states, 40))
    assert prompt_budget(policy, 48) == policy.model.config.max_position_embeddings - 48
    with pytest.raises(ValueError, match="no room"):
        prompt_budget(policy, policy.model.config.max_position_embeddings)


@pytest.mark.usefixtures("hf_offline")
def test_left_padding_does_not_change_completions(dataset: Path, tiny_model_dir: Path) -> None:
    policy = load_policy(str(tiny_model_dir))
    prompts = critic_prompts(policy, critic_rows(str(dataset), "test"), 10_000)
    assert len({len(ids) for ids in prompts}) > 1
    alone = generate_greedy(policy, prompts, batch_size=1, max_new_tokens=4)
    assert generate_greedy(policy, prompts, batch_size=3, max_new_tokens=4) == alone


RESULT = {
    "model": "base",
    "split": "test",
    "critic": {
        "accuracy": 0.5,
        "unparseable": 0.25,
        "n": 8,
        "slot_1": {"accuracy": 0.75, "n": 4},
        "slot_2": {"accuracy": 0.25, "n": 4},
    },
    "action": {"accuracy": 0.2, "unparseable": 0.0, "n": 5},
}
TRAINED = {
    **RESULT,
    "model": "out/act-model",
    "critic": {**RESULT["critic"], "accuracy": 0.875, "slot_2": {"accuracy": None, "n": 0}},
}


def test_format_table() -> None:
    lines = format_table([RESULT, TRAINED]).splitlines()
    assert lines[0].split() == [
        "model",
        "split",
        "pairs",
        "states",
        "critic",
        "acc",
        "unparseable",
        "slot-1",
        "acc",
        "slot-2",
        "acc",
        "action",
        "acc",
        "action",
        "unparseable",
    ]
    assert set(lines[1]) == {"-", " "}
    assert lines[2].split() == "base test 8 5 0.500 0.250 0.750 0.250 0.200 0.000".split()
    assert lines[3].split() == "out/act-model test 8 5 0.875 0.250 0.750 - 0.200 0.000".split()
    assert len({len(line) for line in lines[:2]}) == 1


def test_compare_table() -> None:
    lines = compare_table(RESULT, TRAINED).splitlines()
    assert lines[0].split() == ["metric", "before", "(base)", "after", "(out/act-model)", "delta"]
    rows = {line[:18].strip(): line[18:].split() for line in lines[2:]}
    assert rows == {
        "critic acc": ["0.500", "0.875", "+0.375"],
        "unparseable": ["0.250", "0.250", "+0.000"],
        "slot-1 acc": ["0.750", "0.750", "+0.000"],
        "slot-2 acc": ["0.250", "-", "-"],
        "action acc": ["0.200", "0.200", "+0.000"],
        "action unparseable": ["0.000", "0.000", "+0.000"],
    }
