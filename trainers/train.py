"""Train on a published actforge dataset with TRL: `act` (GRPO critic), `action` (GRPO agent), `sft`.

Configuration is TRL's own: every field of `trl.GRPOConfig` (act, action) or `trl.SFTConfig` (sft)
can be set in a YAML file and overridden by command-line style strings, parsed by `trl.TrlParser`
(YAML values replace the parser's defaults, then the strings are parsed on top, so they win):

    train("act", "out/demo", "smollm2", "runs/act", config="grpo.yaml",
          overrides=["--max_steps", "200", "--learning_rate=1e-6", "--beta", "0.04"])

`output_dir` always comes from the argument. Where the user set none of them, defaults apply:
- all kinds: logging_steps 1, report_to none; without CUDA (or with use_cpu set): use_cpu, bf16
  off, activation checkpointing off. On a GPU TRL's defaults stay, and generation can move to vLLM
  with TRL's fields (`--use_vllm true --vllm_mode colocate`; TRL 1.16 supports vLLM 0.22-0.31).
- act with the exact objective (`trainers.exact`; the default for the direct protocol): no
  generations; PAIRS_PER_STEP pairs per step in both orders (8 prompts); learning_rate
  EXACT_LEARNING_RATE; beta EXACT_BETA (measured on CPU, docs/RESULTS.md: 1.00 consistent accuracy on
  easy held-out pairs in 10 steps, 0.018 -> 0.441 on real SmolLM2 pairs in 40).
- act with `objective="grpo"` (TRL's GRPOTrainer; always for reason): num_generations 4;
  PAIRS_PER_STEP pairs per optimiser step, each in both orders
  (per_device_train_batch_size = 2 x pairs x generations, dataset read unshuffled in whole pairs);
  learning_rate CRITIC_LEARNING_RATE; the `slot_balance` reward (weight in `trainers.rewards`);
  max_completion_length from the protocol; beta CRITIC_BETA, a KL anchor to the base model.
  Measured on CPU (docs/RESULTS.md): without the anchor, one prompt per step, and also 2 pairs per
  step at 2e-5 or 5e-5, walked onto one slot within 10 steps (the balance reward slowed that walk
  but did not stop it); with beta 0.5 the same 2e-5 run learnt instead (consistent accuracy 0.025
  -> 0.45 on held-out pairs in 8 steps). Watch `rewards/answers_slot_1/mean` all the same.
- action: num_generations 4, max_completion_length 24 (an action is one line), STATES_PER_STEP
  states per step.

The critic's answer protocol (`direct` or `reason`, see `pipelines.text.critic`) is chosen by measuring
the base model when `protocol="auto"`; the choice and its measurement are saved in
`output_dir/actforge.json`, which evaluation reads.

Models are the bundled `smollm2` or a local folder; nothing is downloaded and remote code never
runs. The trained model and its tokenizer are saved to `output_dir`, so a later run can start from
that folder, and with beta > 0 TRL reloads the reference model from it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
import yaml
from peft import PeftModel, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import GRPOConfig, GRPOTrainer, SFTConfig, SFTTrainer, get_peft_config

from actforge.pipelines.policy.models import Policy, load_policy, model_folder
from actforge.pipelines.text.critic import ANSWER_OPEN, OBJECTIVES, PROTOCOLS
from actforge.schemas.vocab import ACT
from actforge.trainers.curve import CriticCurve
from actforge.trainers.data import agent_dataset, critic_dataset, published_splits, sft_dataset
from actforge.trainers.evaluate import ACTION_TOKENS, critic_rows
from actforge.trainers.exact import ExactCriticTrainer, tokenized_critic_dataset
from actforge.trainers.overrides import TrlConfigParser, model_config
from actforge.trainers.protocol import REASON_TOKENS, choose_protocol, measure_protocol, reason_rollout
from actforge.trainers.rewards import action_reward, critic_rewards

KINDS = ("act", "action", "sft")
TRAIN_SPLIT = "train"
NUM_GENERATIONS = 4
PAIRS_PER_STEP = 4
STATES_PER_STEP = 4
CRITIC_LEARNING_RATE = 1e-5
CRITIC_BETA = 0.5
EXACT_LEARNING_RATE = 2e-5
EXACT_BETA = 0.0
PROTOCOL_PROBE_PAIRS = 8  # train pairs (x2 orders x4 samples) measured to choose a protocol
RUN_FILE = "actforge.json"
ADAPTER_DIR = "adapter"  # a LoRA run's adapter, beside the merged model
BATCH_FIELDS = {"per_device_train_batch_size", "generation_batch_size", "steps_per_generation"}
# A user's value for any field of a group keeps our default for that group out: the deprecated
# gradient_checkpointing alias counts as activation_checkpointing.
GROUPS = {"activation_checkpointing": {"activation_checkpointing", "gradient_checkpointing"}}


def config_class(kind: str) -> type[GRPOConfig] | type[SFTConfig]:
    """TRL's config class for a training kind."""
    if kind not in KINDS:
        raise ValueError(f"unknown training kind {kind!r}; expected one of {list(KINDS)}")
    return SFTConfig if kind == "sft" else GRPOConfig


def _yaml_fields(config: str | Path | None) -> dict[str, Any]:
    """Fields a YAML config sets (its `env` block sets environment variables, not fields)."""
    if config is None:
        return {}
    loaded = yaml.safe_load(Path(config).read_text(encoding="utf-8"))
    return {k: v for k, v in loaded.items() if k != "env"} if isinstance(loaded, dict) else {}


def _cli_fields(cls: type, overrides: list[str]) -> dict[str, Any]:
    """Fields the override strings set: TRL's own parser with every default suppressed."""
    probe = TrlConfigParser(cls)
    for action in probe._actions:
        action.default = argparse.SUPPRESS
        action.required = False
    given, _ = probe.parse_known_args(overrides)
    return vars(given)


def completion_length(protocol: str, reason_tokens: int = REASON_TOKENS) -> int:
    """Completion tokens a critic protocol needs: the digit, or reasoning + tag + digit."""
    return 1 if protocol == "direct" else reason_tokens + len(ANSWER_OPEN) + 1


def reasoning_budget(max_completion_length: int) -> int:
    """Reasoning tokens that leave room for the tag and the digit within the completion length."""
    return max(1, max_completion_length - len(ANSWER_OPEN) - 1)


def resolve_objective(objective: str, protocol: str) -> str:
    """The critic objective: `exact` needs the one-token `direct` answer; `auto` takes it there."""
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown critic objective {objective!r}; expected one of {list(OBJECTIVES)}")
    if objective == "auto":
        return "exact" if protocol == "direct" else "grpo"
    if objective == "exact" and protocol != "direct":
        raise ValueError(
            f"the exact objective needs the direct protocol (one-token answer), not {protocol!r}"
        )
    return objective


def _defaults(kind: str, given: dict[str, Any], protocol: str, objective: str = "grpo") -> dict[str, Any]:
    """Our defaults for the fields the user left unset."""
    defaults: dict[str, Any] = {"logging_steps": 1, "report_to": "none"}
    generations = int(given.get("num_generations", NUM_GENERATIONS))
    if kind == "act" and objective == "exact":
        # Nothing is generated: num_generations only has to divide the batch, of whole pairs.
        defaults |= {
            "learning_rate": EXACT_LEARNING_RATE,
            "beta": EXACT_BETA,
            "max_completion_length": 1,
            "num_generations": 2,
        }
        if not given.keys() & BATCH_FIELDS:
            defaults["per_device_train_batch_size"] = 2 * PAIRS_PER_STEP
    elif kind == "act":
        defaults |= {
            "num_generations": NUM_GENERATIONS,
            "max_completion_length": completion_length(protocol),
            "learning_rate": CRITIC_LEARNING_RATE,
            "beta": CRITIC_BETA,
            "shuffle_dataset": False,  # critic_dataset orders whole pairs, seeded
            "reward_weights": critic_rewards(protocol)[1],
        }
        if not given.keys() & BATCH_FIELDS:
            defaults["per_device_train_batch_size"] = 2 * PAIRS_PER_STEP * generations
    if kind == "action":
        defaults |= {"num_generations": NUM_GENERATIONS, "max_completion_length": ACTION_TOKENS}
        if not given.keys() & BATCH_FIELDS:
            defaults["per_device_train_batch_size"] = STATES_PER_STEP * generations
    if not torch.cuda.is_available() or given.get("use_cpu"):
        defaults |= {"use_cpu": True, "bf16": False, "activation_checkpointing": False}
    return {k: v for k, v in defaults.items() if not given.keys() & GROUPS.get(k, {k})}


def parse_train_args(
    kind: str,
    config: str | Path | None = None,
    overrides: list[str] | None = None,
    output_dir: str | Path | None = None,
    protocol: str = "direct",
    objective: str = "grpo",
) -> GRPOConfig | SFTConfig:
    """TRL's config for `kind` from a YAML file and override strings, with our defaults underneath.

    Raises ValueError for unknown fields, invalid combinations (TRL's own checks) and remote code.
    """
    cls = config_class(kind)
    overrides = list(overrides or [])
    given = _yaml_fields(config) | _cli_fields(cls, overrides)
    parser = TrlConfigParser(cls)
    parser.set_defaults_with_config(**_defaults(kind, given, protocol, objective))
    args = ["--config", str(config)] if config is not None else []
    args += overrides + (["--output_dir", str(output_dir)] if output_dir is not None else [])
    (parsed,) = parser.parse_args_and_config(args)
    if parsed.trust_remote_code or (parsed.model_init_kwargs or {}).get("trust_remote_code"):
        raise ValueError("actforge trainers never run remote code: leave trust_remote_code off")
    return parsed


def pick_protocol(data: str, model: str, protocol: str) -> tuple[str, list[dict[str, Any]]]:
    """`protocol`, or for "auto" the measured choice on a few train pairs, with its measurements."""
    if protocol != "auto":
        if protocol not in PROTOCOLS:
            raise ValueError(
                f"unknown critic protocol {protocol!r}; expected auto or one of {list(PROTOCOLS)}"
            )
        return protocol, []
    policy = load_policy(model)
    rows = critic_rows(data, TRAIN_SPLIT, PROTOCOL_PROBE_PAIRS)
    measured = [measure_protocol(policy.model, policy.tokenizer, rows, p) for p in PROTOCOLS]
    return choose_protocol(measured), measured


def train(
    kind: str,
    data: str,
    model: str,
    output_dir: str,
    config: str | None = None,
    overrides: list[str] | None = None,
    protocol: str = "auto",
    objective: str = "auto",
    curve_every: int = 0,
    curve_max_pairs: int | None = None,
) -> Path:
    """Train `model` on the train split of the published dataset `data`; returns the saved folder.

    For the critic (`act`), `curve_every` > 0 scores the live model on the validation and test pairs
    (at most `curve_max_pairs` each) every that many steps (`trainers.curve`) and keeps the weights
    of the best step on validation.
    """
    folder = model_folder(model)
    chosen, measured = pick_protocol(data, model, protocol) if kind == "act" else ("direct", [])
    objective = resolve_objective(objective, chosen) if kind == "act" else "grpo"
    model_args, overrides = model_config(list(overrides or []))
    args = parse_train_args(kind, config, overrides, output_dir, chosen, objective)
    if model_args.dtype is not None:
        args.model_init_kwargs = {**(args.model_init_kwargs or {}), "dtype": model_args.dtype}
    lora = get_peft_config(model_args)  # None unless --use_peft
    # Left padding and truncation, as TRL sets when it loads the tokenizer itself.
    tokenizer = AutoTokenizer.from_pretrained(
        folder, local_files_only=True, padding_side="left", truncation_side="left"
    )
    trainer = _trainer(kind, objective, chosen, folder, args, tokenizer, data, lora)
    curve = None
    if kind == "act" and curve_every:
        rows = {split: critic_rows(data, split, curve_max_pairs) for split in held_out_splits(data)}
        curve = CriticCurve(Policy(model, trainer.model, tokenizer), rows, curve_every, chosen)
        trainer.add_callback(curve)
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started - (curve.seconds if curve else 0.0)
    _save(trainer, Path(args.output_dir))
    trainer.save_state()  # trainer_state.json: the logged curves `actforge report` draws
    tokenizer.save_pretrained(args.output_dir)
    run = {
        "kind": kind,
        "base": model,
        "data": data,
        "protocol": chosen,
        "protocol_measurements": measured,
        "objective": objective,
        "lora": None if lora is None else {"r": lora.r, "alpha": lora.lora_alpha, "adapter": ADAPTER_DIR},
        "train_seconds": seconds,
    }
    if curve:
        run |= {"curve": curve.points, "kept_step": curve.kept_step, "curve_seconds": curve.seconds}
    (Path(args.output_dir) / RUN_FILE).write_text(json.dumps(run, indent=2, sort_keys=True) + "\n", "utf-8")
    return Path(args.output_dir)


def _trainer(
    kind: str,
    objective: str,
    chosen: str,
    folder: Path,
    args: Any,
    tokenizer: Any,
    data: str,
    lora: Any,
) -> Any:
    """The TRL trainer for `kind`: SFT on expert actions, the exact-expectation critic trainer,
    GRPO on the critic task (`act`, answering by protocol `chosen`), or GRPO on actions."""
    if kind == "sft":
        return SFTTrainer(
            model=str(folder),
            args=args,
            train_dataset=sft_dataset(data, TRAIN_SPLIT, tokenizer),
            processing_class=tokenizer,
            peft_config=lora,
        )
    if objective == "exact":
        init = {"dtype": "auto"} | (args.model_init_kwargs or {})  # as TRL loads a model by path
        critic = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, **init)
        reference = None  # none without a KL term; with LoRA, the base is the model with its adapter off
        if lora is not None:
            critic = get_peft_model(critic, lora)
        elif args.beta:
            reference = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, **init)
        return ExactCriticTrainer(
            model=critic,
            args=args,
            train_dataset=tokenized_critic_dataset(
                critic_dataset(data, TRAIN_SPLIT, tokenizer, chosen, args.seed), tokenizer
            ),
            processing_class=tokenizer,
            ref_model=reference,
        )
    if kind == "act":
        rewards, _ = critic_rewards(chosen)
        return GRPOTrainer(
            model=str(folder),
            reward_funcs=rewards,
            args=args,
            train_dataset=critic_dataset(data, TRAIN_SPLIT, tokenizer, chosen, args.seed),
            processing_class=tokenizer,
            rollout_func=reason_rollout(reasoning_budget(args.max_completion_length))
            if chosen == "reason"
            else None,
            peft_config=lora,
        )
    return GRPOTrainer(
        model=str(folder),
        reward_funcs=[action_reward],
        args=args,
        train_dataset=agent_dataset(data, TRAIN_SPLIT, tokenizer),
        processing_class=tokenizer,
        peft_config=lora,
    )


def _save(trainer: Any, output_dir: Path) -> None:
    """The trained model in `output_dir`. A LoRA run saves its adapter in `output_dir/adapter` and the
    base with the adapter merged in `output_dir`, so `--model`, `--policy` and a recipe's next stage
    take the folder as they take any model."""
    model = trainer.accelerator.unwrap_model(trainer.model)
    if isinstance(model, PeftModel):
        model.save_pretrained(output_dir / ADAPTER_DIR)
        model.merge_and_unload().save_pretrained(output_dir)
    else:
        trainer.save_model(str(output_dir))


def held_out_splits(data: str) -> list[str]:
    """The dataset's held-out splits: validation (which picks the step kept) and test."""
    splits = published_splits(data, ACT)
    return [split for split in ("validation", "test") if split in splits]


def run_protocol(model: str) -> str | None:
    """The critic protocol a model folder was trained with (its actforge.json), if any."""
    path = Path(model) / RUN_FILE
    return json.loads(path.read_text(encoding="utf-8")).get("protocol") if path.is_file() else None
