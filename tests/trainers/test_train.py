"""trainers/: reward truth tables, TRL config parsing, and real 2-step TRL runs on the tiny model (CPU)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import datasets
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl.trainer.utils import RepeatSampler

from actforge.pipelines.policy.models import load_policy
from actforge.pipelines.text.critic import ANSWER_OPEN, PROTOCOLS, parse_answer
from actforge.pipelines.text.prompts import agent_prompt, agent_prompt_text
from actforge.schemas import STATE_SCHEMA, State, Step, states_from_table
from actforge.trainers.curve import slot_gap
from actforge.trainers.data import agent_dataset, critic_dataset, sft_dataset, states_dataset
from actforge.trainers.evaluate import evaluate, expert_states
from actforge.trainers.protocol import choose_protocol, generate_answers
from actforge.trainers.recipe import recipe
from actforge.trainers.rewards import BALANCE_WEIGHT, action_reward, critic_rewards
from actforge.trainers.train import run_protocol, train
from actforge.trainers.trl_config import (
    CRITIC_BETA,
    EXACT_BETA,
    PAIRS_PER_STEP,
    parse_train_args,
    resolve_objective,
)
from tests.support.factories import make_trajectory, publish_pairs

pytestmark = pytest.mark.usefixtures("hf_offline")

# Tiny and fast: 2 steps, 2 generations, short completions, one prompt per step.
FAST = "--max_steps 2 --num_generations 2 --max_completion_length 16 --save_strategy no".split()


def assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def _publish(
    tmp_path_factory: pytest.TempPathFactory,
    shapes: tuple[tuple[str, str, int], ...],
    instruction: str,
    alternatives: Callable[[State], list[str]],
) -> str:
    """A published OUT folder of trajectories given as (name, split, steps)."""
    trajectories = [
        make_trajectory(
            name,
            split,
            tuple(Step(f"{name} obs {i}", f"go to room {i}", None) for i in range(length)),
            instruction.format(name=name),
            "test",
        )
        for name, split, length in shapes
    ]
    out = tmp_path_factory.mktemp("published") / "ds"
    publish_pairs(out, trajectories, {"sources": ["test"], "seed": 0}, alternatives)
    return str(out)


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A published OUT folder: 2 train trajectories (3 states, 2 alternatives each) and 1 test one."""
    return _publish(
        tmp_path_factory,
        (("a", "train", 2), ("b", "train", 1), ("c", "test", 1)),
        "do task {name}",
        lambda state: [f"look at thing {state.step_index}", f"open door {state.step_index}"],
    )


@pytest.fixture(scope="module")
def published_with_validation(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Two train, one validation and one test trajectory of two steps, one alternative per state."""
    return _publish(
        tmp_path_factory,
        (("a", "train", 2), ("b", "train", 2), ("v", "validation", 2), ("t", "test", 2)),
        "do {name}",
        lambda state: [f"look at {state.step_index}"],
    )


@pytest.mark.parametrize(
    ("completion", "slot", "direct", "reason"),
    [
        ("1", 1, 1.0, 0.0),
        ("2", 1, 0.0, 0.0),
        (" 2</answer>", 2, 1.0, 0.0),
        ("12", 1, 0.0, 0.0),
        ("", 2, 0.0, 0.0),
        ("Action 1 heats the pot.\n<answer>1", 1, 0.0, 1.0),
        ("Action 1 heats the pot.\n<answer>1", 2, 0.0, 0.0),
        ("I pick 2", 2, 0.0, 0.0),
    ],
)
def test_critic_rewards(completion: str, slot: int, direct: float, reason: float) -> None:
    for protocol, expected in (("direct", direct), ("reason", reason)):
        funcs, weights = critic_rewards(protocol)
        critic, _, answers_1, answers_2 = funcs
        assert weights == [1.0, BALANCE_WEIGHT, 0.0, 0.0]  # the answer shares only log
        assert critic([completion], expert_slot=[slot]) == [expected]
        assert critic([assistant(completion)], expert_slot=[slot], trainer_state=None) == [expected]
        answer = parse_answer(completion, protocol)
        assert answers_1([completion]) == [float(answer == 1)] and answers_2([completion]) == [
            float(answer == 2)
        ]
        assert [f.__name__ for f in funcs] == ["critic", "slot_balance", "answers_slot_1", "answers_slot_2"]


def test_slot_balance_pushes_against_the_majority_slot() -> None:
    funcs, weights = critic_rewards("direct")
    balance = funcs[1]
    # 3 of 4 answers name slot 1: those lose 0.25, the one naming slot 2 gains 0.25, no answer -0.5.
    assert balance(["1", "1", "1", "2"]) == [-0.25, -0.25, -0.25, 0.25]
    assert balance(["1", "2", "1", "2"]) == [0.0] * 4
    assert balance(["1", "x"]) == [0.0, -0.5]
    # Being right always outweighs balance: weighted, two answers differ by at most BALANCE_WEIGHT < 1.
    assert max(balance(["1"] * 99 + ["2"])) - min(balance(["1"] * 99 + ["2"])) <= 1.0
    assert weights[1] * 1.0 < weights[0]


@pytest.mark.parametrize(
    ("text", "expert", "reward"),
    [
        (" examine the thermometer", "look at thermometer", 1.0),
        (" Go Kitchen.", "go to kitchen", 1.0),
        (" go to hallway\nObservation: x", "go to kitchen", 0.0),
        (" look around\nmore text", "look around", 1.0),
        ("", "look around", 0.0),
    ],
)
def test_action_reward(text: str, expert: str, reward: float) -> None:
    envs = ["scienceworld"]
    assert action_reward([text], expert_action=[expert], environment=envs) == [reward]
    assert action_reward([assistant(text)], expert_action=[expert], environment=envs) == [reward]


def test_datasets_render_the_one_prompt(published: str, tiny_model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    states = states_dataset(published, "train")
    assert states.column_names == STATE_SCHEMA.names and len(states) == 3  # 6 pairs, 3 states
    agent = agent_dataset(published, "train", tokenizer)
    assert agent.column_names == ["prompt", "expert_action", "environment"]
    assert list(agent["expert_action"]) == ["go to room 0", "go to room 1", "go to room 0"]
    # Prompt identity: training renders exactly what sampling and evaluation tokenise.
    for state, prompt in zip(states_from_table(states.with_format("arrow")[:]), agent["prompt"], strict=True):
        assert prompt == agent_prompt_text(state, tokenizer)
        assert tokenizer(prompt, add_special_tokens=False).input_ids == agent_prompt(state, tokenizer)
    assert agent[1]["prompt"].endswith("Observation: a obs 1<|im_end|>\n<|im_start|>assistant\nAction:")
    sft = sft_dataset(published, "train", tokenizer)
    assert sft.column_names == ["prompt", "completion"] and sft[1]["completion"] == " go to room 1"

    critic = critic_dataset(published, "train", tokenizer, "direct", seed=0)
    assert critic.column_names == ["prompt", "expert_slot", "pair_id"] and len(critic) == 12
    ids, slots = critic["pair_id"], critic["expert_slot"]
    assert all(ids[i] == ids[i + 1] and (slots[i], slots[i + 1]) == (1, 2) for i in range(0, 12, 2))
    assert all(p.endswith("<|im_start|>assistant\n<answer>") for p in critic["prompt"])
    assert critic_dataset(published, "train", tokenizer, "direct", seed=1)["pair_id"] != ids  # seeded order
    assert critic_dataset(published, "train", tokenizer, "direct", seed=0)["pair_id"] == ids


def test_states_keep_the_published_history_window(tmp_path: Path, tiny_model_dir: Path) -> None:
    """Rows published with a small history budget: training and evaluation see what was left out."""
    steps = tuple(Step(f"room {i} " * 5, f"go to room {i}") for i in range(4))  # 45 characters a step
    out = tmp_path / "ds"
    publish_pairs(out, [make_trajectory("w", "test", steps)], history_chars=50)
    states = sorted(expert_states(str(out), "test"), key=lambda s: s.step_index)
    assert [(len(s.history), s.history_omitted) for s in states] == [(0, 0), (1, 0), (1, 1), (1, 2)]
    assert states[3].history == (Step(steps[2].observation, steps[2].action),)
    prompts = agent_dataset(str(out), "test", AutoTokenizer.from_pretrained(tiny_model_dir))["prompt"]
    assert "(2 earlier steps omitted)" in prompts[3] and "earlier steps omitted" not in prompts[1]
    assert prompts == [agent_prompt_text(s, AutoTokenizer.from_pretrained(tiny_model_dir)) for s in states]


def test_both_orders_of_a_pair_share_an_optimiser_step(published: str, tiny_model_dir: Path) -> None:
    """TRL's own sampler, configured as `train act` configures it, never splits a pair across steps."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    dataset = critic_dataset(published, "train", tokenizer, "direct")
    args = parse_train_args("act", None, [], protocol="direct")
    assert args.per_device_train_batch_size == 2 * PAIRS_PER_STEP * args.num_generations
    assert not args.shuffle_dataset and args.max_completion_length == 1 and args.beta == CRITIC_BETA
    sampler = RepeatSampler(
        dataset,
        mini_repeat_count=args.num_generations,
        batch_size=args.generation_batch_size // args.num_generations,
        repeat_count=args.steps_per_generation,
        shuffle=args.shuffle_dataset,
        seed=args.seed,
    )
    indexes = list(sampler)
    steps = [
        indexes[i : i + args.per_device_train_batch_size]
        for i in range(0, len(indexes), args.per_device_train_batch_size)
    ]
    for step in steps:
        pairs = [dataset[i]["pair_id"] for i in step]
        slots = {(dataset[i]["pair_id"], dataset[i]["expert_slot"]) for i in step}
        assert all((pair, 1) in slots and (pair, 2) in slots for pair in pairs)
        assert len(set(pairs)) == min(PAIRS_PER_STEP, len(set(dataset["pair_id"])))


def test_yaml_and_overrides_land_in_trl_config(tmp_path: Path) -> None:
    config = tmp_path / "grpo.yaml"
    config.write_text("learning_rate: 3.0e-5\nmax_steps: 50\nbeta: 0.02\nreward_weights: [1.0, 0.1]\n")
    args = parse_train_args("act", config, ["--max_steps", "2", "--temperature=0.7"], tmp_path / "run")
    assert args.learning_rate == 3e-5  # from YAML
    assert args.max_steps == 2  # override wins over YAML
    assert args.temperature == 0.7 and args.beta == 0.02 and args.reward_weights == [1.0, 0.1]
    assert args.output_dir == str(tmp_path / "run")
    assert args.num_generations == 4 and args.max_completion_length == 1 and args.logging_steps == 1
    assert args.generation_batch_size % args.num_generations == 0
    assert parse_train_args("act", None, [], protocol="reason").max_completion_length > 64
    if not torch.cuda.is_available():
        assert args.use_cpu and not args.bf16 and not args.activation_checkpointing

    action = parse_train_args("action", None, ["--num_generations", "3"])
    assert action.max_completion_length == 24 and action.generation_batch_size % 3 == 0

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


@pytest.mark.slow  # trains with TRL
def test_grpo_act_run_then_reference_model_from_saved_folder(
    tiny_model_dir: Path, published: str, tmp_path: Path
) -> None:
    act = train("act", published, str(tiny_model_dir), str(tmp_path / "act"), None, FAST, objective="grpo")
    assert_loads(act)
    run = json.loads((act / "actforge.json").read_text())
    # The tiny random model writes no digit under either protocol, so auto falls back to direct.
    assert run["protocol"] == "direct" and {m["protocol"] for m in run["protocol_measurements"]} == set(
        PROTOCOLS
    )
    assert run_protocol(str(act)) == "direct"
    # Start from the saved folder with beta > 0: TRL reloads the reference model from that path.
    ref = train(
        "act",
        published,
        str(act),
        str(tmp_path / "act-ref"),
        None,
        [*FAST, "--beta", "0.1"],
        objective="grpo",
    )
    assert_loads(ref)


@pytest.mark.slow  # trains with transformers' Trainer
def test_exact_act_run_logs_its_curve_and_keeps_the_best_validation_step(
    tiny_model_dir: Path, published_with_validation: str, tmp_path: Path
) -> None:
    overrides = ["--max_steps", "4", "--save_strategy", "no", "--beta", "0.1", "--learning_rate", "1e-3"]
    act = train(
        "act", published_with_validation, str(tiny_model_dir), str(tmp_path / "x"), None, overrides,
        protocol="direct", curve_every=2,
    )  # fmt: skip
    assert_loads(act)
    run = json.loads((act / "actforge.json").read_text())
    assert run["objective"] == "exact"  # auto, for the direct protocol
    assert [point["step"] for point in run["curve"]] == [0, 2, 4]
    assert all({"validation", "test"} <= point.keys() for point in run["curve"])
    best = max(
        run["curve"], key=lambda p: (p["validation"]["consistent_accuracy"], -slot_gap(p["validation"]))
    )
    assert run["kept_step"] == best["step"]
    # The saved weights are the kept step's: scoring them again gives that step's validation figures.
    again = evaluate(published_with_validation, str(act), "validation", max_states=0)["critic"]
    assert again["p_expert"] == pytest.approx(best["validation"]["p_expert"], abs=1e-5)
    state = json.loads((act / "trainer_state.json").read_text())
    logged = {key for row in state["log_history"] for key in row}
    assert {"loss", "p_expert", "kl", "rewards/answers_slot_1/mean", "curve/validation/p_expert"} <= logged


def test_exact_objective_needs_the_direct_protocol() -> None:
    assert resolve_objective("auto", "direct") == "exact"
    assert resolve_objective("auto", "reason") == "grpo"
    with pytest.raises(ValueError, match="needs the direct protocol"):
        resolve_objective("exact", "reason")
    with pytest.raises(ValueError, match="unknown critic objective"):
        resolve_objective("sampled", "direct")
    args = parse_train_args("act", None, [], protocol="direct", objective="exact")
    assert (args.per_device_train_batch_size, args.beta) == (2 * PAIRS_PER_STEP, EXACT_BETA)


@pytest.mark.slow  # trains with TRL
def test_grpo_act_reason_protocol_run(tiny_model_dir: Path, published: str, tmp_path: Path) -> None:
    """The two-phase protocol through TRL's rollout_func: reasoning, harness tag (masked), digit."""
    overrides = [*FAST, "--max_completion_length", "32"]
    act = train(
        "act", published, str(tiny_model_dir), str(tmp_path / "r"), None, overrides, protocol="reason",
        curve_every=2,
    )  # fmt: skip
    assert_loads(act)
    assert run_protocol(str(act)) == "reason"
    run = json.loads((act / "actforge.json").read_text())
    # Scored with the live model's own reasoning; no validation split, so the last step is kept.
    assert [p["step"] for p in run["curve"]] == [0, 2] and run["kept_step"] is None
    assert json.loads((act / "actforge.json").read_text())["objective"] == "grpo"  # auto, for reason


def test_reason_generation_masks_the_harness_tag(tiny_model_dir: Path) -> None:
    policy = load_policy(str(tiny_model_dir))
    tokenizer = policy.tokenizer
    prompt = tokenizer("Task: find a thing.", add_special_tokens=False).input_ids
    tag = tokenizer(ANSWER_OPEN, add_special_tokens=False).input_ids
    torch.manual_seed(0)
    completions, masks = generate_answers(
        policy.model, tokenizer, [prompt, prompt], "reason", reason_tokens=6
    )
    for ids, mask in zip(completions, masks, strict=True):
        assert len(ids) == len(mask) and mask[-1] == 1  # the digit is the model's
        assert ids[-1 - len(tag) : -1] == tag and mask[-1 - len(tag) : -1] == [0] * len(tag)
        assert len(ids) <= 6 + len(tag) + 1
    direct, direct_mask = generate_answers(policy.model, tokenizer, [prompt], "direct")
    assert len(direct[0]) == 1 and direct_mask == [[1]]


@pytest.mark.slow  # trains with TRL
def test_grpo_action_run(tiny_model_dir: Path, published: str, tmp_path: Path) -> None:
    assert_loads(train("action", published, str(tiny_model_dir), str(tmp_path / "action"), None, FAST))


@pytest.mark.slow  # trains with TRL
def test_sft_run(tiny_model_dir: Path, published: str, tmp_path: Path) -> None:
    sft = "--max_steps 2 --per_device_train_batch_size 2 --save_strategy no".split()
    assert_loads(train("sft", published, str(tiny_model_dir), str(tmp_path / "sft"), None, sft))


@pytest.mark.slow  # trains with TRL
def test_the_preference_config_feeds_dpo_and_reward_training(
    tiny_model_dir: Path, published: str, tmp_path: Path
) -> None:
    """`load_dataset(OUT, "preference")` as TRL's DPOTrainer (through `actforge train dpo`) and
    RewardTrainer (TRL's own, as a user calls it) take it: one optimiser step each."""
    from trl import RewardConfig, RewardTrainer

    prefs = datasets.load_dataset(published, "preference", split="train")
    row = prefs[0]
    [chosen], [rejected] = row["chosen"], row["rejected"]
    assert chosen["role"] == rejected["role"] == "assistant" and chosen["content"].startswith("Action: ")
    assert row["prompt"][0]["role"] == "system" and row["prompt"][-1]["role"] == "user"
    assert chosen != rejected
    dpo = "--max_steps 1 --per_device_train_batch_size 2 --save_strategy no".split()
    folder = train("dpo", published, str(tiny_model_dir), str(tmp_path / "dpo"), None, dpo)
    assert_loads(folder)
    assert json.loads((folder / "trainer_state.json").read_text())["global_step"] == 1
    args = RewardConfig(
        output_dir=str(tmp_path / "reward"),
        max_steps=1,
        per_device_train_batch_size=2,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
    )
    reward = RewardTrainer(model=str(tiny_model_dir), args=args, train_dataset=prefs)
    reward.train()
    assert reward.state.global_step == 1 and math.isfinite(reward.state.log_history[-1]["train_loss"])


def test_choose_protocol_by_well_formed_rate_then_groups_with_signal() -> None:
    def m(protocol: str, well_formed: float, groups: float) -> dict:
        return {"protocol": protocol, "well_formed": well_formed, "nonconstant_groups": groups}

    # The measured SmolLM2 numbers: reason misses the 95% bar.
    assert choose_protocol([m("direct", 0.96, 0.93), m("reason", 0.92, 0.82)]) == "direct"
    assert choose_protocol([m("direct", 0.99, 0.50), m("reason", 0.97, 0.80)]) == "reason"
    assert (
        choose_protocol([m("direct", 0.99, 0.80), m("reason", 0.97, 0.80)]) == "reason"
    )  # ACT's shape on a tie
    assert choose_protocol([m("direct", 0.10, 0.0), m("reason", 0.20, 0.1)]) == "direct"  # none usable


LORA = [
    "--use_peft",
    "true",
    "--lora_r",
    "4",
    "--lora_alpha",
    "8",
    "--lora_target_modules",
    "q_proj",
    "v_proj",
]


@pytest.mark.slow  # trains with TRL and transformers
@pytest.mark.parametrize(
    ("kind", "objective", "extra"),
    [
        ("act", "exact", ["--beta", "0.1"]),  # the reference is the base with the adapter off
        ("act", "grpo", ["--beta", "0.1"]),
        ("action", "auto", []),
        ("sft", "auto", []),
    ],
)
def test_lora_runs_save_the_adapter_and_a_merged_model(
    tiny_model_dir: Path, published: str, tmp_path: Path, kind: str, objective: str, extra: list[str]
) -> None:
    overrides = ["--max_steps", "2", "--save_strategy", "no", "--learning_rate", "1e-2", *LORA, *extra]
    if kind != "sft":
        overrides += ["--num_generations", "2", "--max_completion_length", "8"] * (objective != "exact")
    out = train(
        kind, published, str(tiny_model_dir), str(tmp_path / kind), None, overrides, "direct", objective
    )
    assert_loads(out)  # the merged model: any --model, --policy or next stage takes it
    assert (out / "adapter" / "adapter_config.json").is_file()
    adapter = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert (adapter["r"], adapter["lora_alpha"], sorted(adapter["target_modules"])) == (
        4,
        8,
        ["q_proj", "v_proj"],
    )
    run = json.loads((out / "actforge.json").read_text())
    assert run["lora"] == {"r": 4, "alpha": 8, "adapter": "adapter"}
    # Only the adapter trained: the merged weights differ from the base only where LoRA sits (and do
    # differ where the loss has a gradient; sampled GRPO on the tiny model earns no reward to follow).
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, local_files_only=True).state_dict()
    merged = AutoModelForCausalLM.from_pretrained(out, local_files_only=True).state_dict()
    changed = {name for name in base if not torch.equal(base[name], merged[name])}
    assert all(name.endswith(("q_proj.weight", "v_proj.weight")) for name in changed)
    assert changed or objective == "grpo" or kind == "action"


@pytest.mark.slow  # trains four models
def test_a_recipe_whose_stage_3_starts_from_a_lora_critic(
    tiny_model_dir: Path, published: str, tmp_path: Path
) -> None:
    overrides = ["--max_steps", "1", "--save_strategy", "no", "--learning_rate", "1e-2", *LORA]
    result = recipe(
        published, str(tiny_model_dir), str(tmp_path / "r"), stage3="sft", overrides=overrides,
        protocol="direct", eval_max_pairs=2,
    )  # fmt: skip
    act, il_act = Path(result["models"]["ACT"]), Path(result["models"]["IL w/ ACT"])
    assert (act / "adapter" / "adapter_config.json").is_file() and result["objective"] == "exact"
    # Stage 3 started from the merged critic: its adapter sits on the ACT folder, not on the base.
    adapter = json.loads((il_act / "adapter" / "adapter_config.json").read_text())
    assert Path(adapter["base_model_name_or_path"]) == act
    assert set(result["results"]) == {"base", "ACT", "DPO", "IL", "IL w/ ACT"}
