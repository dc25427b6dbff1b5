"""TRL's config for each training kind, with actforge's defaults underneath.

Configuration is TRL's own: every field of `trl.GRPOConfig` (act, action), `trl.SFTConfig` (sft) or
`trl.DPOConfig` (dpo) can be set in a YAML file and overridden by command-line style strings, parsed
by `trl.TrlParser` (YAML values replace the parser's defaults, then the strings are parsed on top,
so they win (`trainers.train` shows a call). `output_dir` always comes from the argument. Where
the user set none of them, defaults apply:
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
- sft and dpo: TRL's own defaults.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
import yaml
from trl import DPOConfig, GRPOConfig, SFTConfig

from actforge.pipelines.text.critic import ANSWER_OPEN, OBJECTIVES
from actforge.schemas.vocab import TRAINING_KINDS
from actforge.trainers.evaluate import ACTION_TOKENS
from actforge.trainers.overrides import TrlConfigParser
from actforge.trainers.protocol import REASON_TOKENS
from actforge.trainers.rewards import critic_rewards

NUM_GENERATIONS = 4
PAIRS_PER_STEP = 4
STATES_PER_STEP = 4
CRITIC_LEARNING_RATE = 1e-5
CRITIC_BETA = 0.5
EXACT_LEARNING_RATE = 2e-5
EXACT_BETA = 0.0
BATCH_FIELDS = {"per_device_train_batch_size", "generation_batch_size", "steps_per_generation"}
# A user's value for any field of a group keeps our default for that group out: the deprecated
# gradient_checkpointing alias counts as activation_checkpointing.
GROUPS = {"activation_checkpointing": {"activation_checkpointing", "gradient_checkpointing"}}


def config_class(kind: str) -> type[GRPOConfig] | type[SFTConfig] | type[DPOConfig]:
    """TRL's config class for a training kind."""
    if kind not in TRAINING_KINDS:
        raise ValueError(f"unknown training kind {kind!r}; expected one of {list(TRAINING_KINDS)}")
    return {"sft": SFTConfig, "dpo": DPOConfig}.get(kind, GRPOConfig)


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
