"""trainers/: reward truth tables, TRL config parsing, and real 2-step TRL runs on the tiny model (CPU)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from pipelines.publish import publish
from schemas import ACT_SCHEMA, PAIR_SCHEMA, Step, to_arrow
from tests.factories import make_pair
from trainers.data import act_dataset, sft_dataset, states_dataset
from trainers.rewards import action_reward, critic_reward, format_reward
from trainers.train import parse_train_args, train

pytestmark = pytest.mark.usefixtures("hf_offline")

# Tiny and fast: 2 steps, 2 generations, short completions, one prompt per step.
FAST = "--max_steps 2 --num_generations 2 --max_completion_length 16 --save_strategy no".split()


def assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A published OUT folder: 2 train trajectories (3 states, 2 alternatives each) and 1 test one."""
    records = []
    for name, split, length in (("a", "train", 2), ("b", "train", 1), ("c", "test", 1)):
        steps = tuple(Step(f"{name} obs {i}", f"go to room {i}", None) for i in range(length))
        for i in range(length):
            for k, alternative in enumerate((f"look at thing {i}", f"open door {i}")):
                records.append(make_pair(name, split, steps, i, alternative, k, f"do task {name}", "test"))
    out = tmp_path_factory.mktemp("published") / "ds"
    publish(to_arrow(records, PAIR_SCHEMA), out, {"sources": ["test"], "seed": 0}, {})
    return str(out)


@pytest.mark.parametrize(
    ("text", "slot", "reward"),
    [
        ("<answer>1</answer>", 1, 1.0),
        ("<answer>2</answer>", 1, 0.0),
        ("I think action 2 is better.", 2, 0.0),
        ("<answer>1</answer> <answer>2</answer>", 1, 0.0),
        ("<answer>1</answer> or <answer>1</answer>", 1, 0.0),
        ("Action 2 opens the door first. <answer> 2 </answer> Done.", 2, 1.0),
        ("<answer>3</answer>", 1, 0.0),
        ("", 1, 0.0),
    ],
)
def test_critic_reward(text: str, slot: int, reward: float) -> None:
    assert critic_reward([text], expert_slot=[slot]) == [reward]
    assert critic_reward([assistant(text)], expert_slot=[slot], trainer_state=None) == [reward]


@pytest.mark.parametrize(
    ("text", "reward"),
    [
        ("<answer>1</answer>", 1.0),
        ("thinking... <answer>2</answer>", 1.0),
        ("<answer>1</answer><answer>2</answer>", 0.0),
        ("<answer>one</answer>", 0.0),
        ("<answer>12</answer>", 0.0),
        ("<answer>1", 0.0),
        ("<answer><answer>1</answer>", 0.0),
        ("no answer", 0.0),
    ],
)
def test_format_reward(text: str, reward: float) -> None:
    assert format_reward([text]) == [reward]
    assert format_reward([[{"role": "user", "content": "q"}, *assistant(text)]]) == [reward]


@pytest.mark.parametrize(
    ("text", "expert", "reward"),
    [
        ("Action: examine the thermometer", "look at thermometer", 1.0),
        ("Action: Go Kitchen.", "go to kitchen", 1.0),
        ("Action: go to hallway", "go to kitchen", 0.0),
        ("Thought: I should look around first.", "look around", 0.0),
        ("", "look around", 0.0),
    ],
)
def test_action_reward(text: str, expert: str, reward: float) -> None:
    envs = ["scienceworld"]
    assert action_reward([text], expert_action=[expert], environment=envs) == [reward]
    assert action_reward([assistant(text)], expert_action=[expert], environment=envs) == [reward]


def test_datasets_keep_what_trainers_need(published: str) -> None:
    act = act_dataset(published, "train")
    assert act.column_names == ACT_SCHEMA.names and len(act) == 6
    assert {r["expert_slot"] for r in act} <= {1, 2}

    states = states_dataset(published, "train", max_history_steps=1)
    assert states.column_names == ["prompt", "expert_action", "environment"]
    assert len(states) == 3  # 6 pairs, 3 unique states, published order
    assert list(states["expert_action"]) == ["go to room 0", "go to room 1", "go to room 0"]
    second = states[1]["prompt"]
    assert second[-1] == {"role": "user", "content": "Observation: a obs 1"}
    assert second[-2] == {"role": "assistant", "content": "Action: go to room 0"}
    assert states_dataset(published, "train").to_list() == states.to_list()  # history of 1 fits either way

    sft = sft_dataset(published, "train")
    assert sft.column_names == ["prompt", "completion"]
    assert sft[1]["completion"] == [{"role": "assistant", "content": "Action: go to room 1"}]


def test_yaml_and_overrides_land_in_trl_config(tmp_path: Path) -> None:
    config = tmp_path / "grpo.yaml"
    config.write_text("learning_rate: 3.0e-5\nmax_steps: 50\nbeta: 0.02\nreward_weights: [1.0, 0.1]\n")
    args = parse_train_args("act", config, ["--max_steps", "2", "--temperature=0.7"], tmp_path / "run")
    assert args.learning_rate == 3e-5  # from YAML
    assert args.max_steps == 2  # override wins over YAML
    assert args.temperature == 0.7 and args.beta == 0.02 and args.reward_weights == [1.0, 0.1]
    assert args.output_dir == str(tmp_path / "run")
    assert args.num_generations == 4 and args.max_completion_length == 128 and args.logging_steps == 1
    assert args.generation_batch_size % args.num_generations == 0
    if not torch.cuda.is_available():
        assert args.use_cpu and not args.bf16 and not args.activation_checkpointing

    action = parse_train_args("action", None, ["--num_generations", "3"])
    assert action.max_completion_length == 32 and action.generation_batch_size % 3 == 0

    sft = parse_train_args("sft", None, ["--gradient_checkpointing", "true", "--logging_steps", "5"])
    assert sft.activation_checkpointing and sft.logging_steps == 5  # the user's choice stays

    with pytest.raises(ValueError, match="not used"):
        parse_train_args("act", None, ["--no_such_field", "1"])
    with pytest.raises(ValueError, match="remote code"):
        parse_train_args("sft", None, ["--trust_remote_code", "true"])


def assert_loads(folder: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
    assert model.config.num_hidden_layers == 2
    assert (folder / "tokenizer_config.json").is_file()


def test_grpo_act_run_then_reference_model_from_saved_folder(
    tiny_model_dir: Path, published: str, tmp_path: Path
) -> None:
    act = train("act", published, str(tiny_model_dir), str(tmp_path / "act"), None, FAST)
    assert_loads(act)
    # Start from the saved folder with beta > 0: TRL reloads the reference model from that path.
    ref = train("act", published, str(act), str(tmp_path / "act-ref"), None, [*FAST, "--beta", "0.1"])
    assert_loads(ref)


def test_grpo_action_run(tiny_model_dir: Path, published: str, tmp_path: Path) -> None:
    assert_loads(train("action", published, str(tiny_model_dir), str(tmp_path / "action"), None, FAST))


def test_sft_run(tiny_model_dir: Path, published: str, tmp_path: Path) -> None:
    sft = "--max_steps 2 --per_device_train_batch_size 2 --save_strategy no".split()
    assert_loads(train("sft", published, str(tiny_model_dir), str(tmp_path / "sft"), None, sft))
