"""Train on a published actforge dataset with TRL: `act` (GRPO critic), `action` (GRPO agent), `sft`.

Configuration is TRL's own: every field of `trl.GRPOConfig` (act, action) or `trl.SFTConfig` (sft)
can be set in a YAML file and overridden by command-line style strings, parsed by `trl.TrlParser`
(YAML values replace the parser's defaults, then the strings are parsed on top, so they win):

    train("act", "out/demo", "smollm2", "runs/act", config="grpo.yaml",
          overrides=["--max_steps", "200", "--learning_rate=1e-6", "--beta", "0.04"])

`output_dir` always comes from the argument. Where the user set none of them, small-machine
defaults apply: logging_steps 1, report_to none; for GRPO num_generations 4, max_completion_length
128 (act) or 32 (action), and per_device_train_batch_size = num_generations, so the generation batch
holds whole groups. Without CUDA (or with use_cpu set): use_cpu, bf16 off, activation checkpointing
off. On a GPU TRL's defaults stay (bf16 and activation checkpointing on), and generation can move
to vLLM with TRL's fields, e.g. `--use_vllm true --vllm_mode colocate` (or `server` with
`trl vllm-serve`); TRL 1.16 supports vLLM 0.22-0.31, which is not installed by actforge.

Models are the bundled `smollm2` or a local folder; nothing is downloaded and remote code never
runs. The trained model and its tokenizer are saved to `output_dir`, so a later run can start from
that folder, and with beta > 0 TRL reloads the reference model from it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
import yaml
from transformers import AutoTokenizer
from trl import GRPOConfig, GRPOTrainer, SFTConfig, SFTTrainer, TrlParser

from pipelines.policy import model_folder
from trainers.data import act_dataset, sft_dataset, states_dataset
from trainers.rewards import action_reward, critic_reward, format_reward

KINDS = ("act", "action", "sft")
TRAIN_SPLIT = "train"
NUM_GENERATIONS = 4
COMPLETION_LENGTH = {"act": 128, "action": 32}
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
    probe = TrlParser(cls)
    for action in probe._actions:
        action.default = argparse.SUPPRESS
        action.required = False
    given, _ = probe.parse_known_args(overrides)
    return vars(given)


def _defaults(kind: str, given: dict[str, Any]) -> dict[str, Any]:
    """Our defaults for the fields the user left unset."""
    defaults: dict[str, Any] = {"logging_steps": 1, "report_to": "none"}
    if kind in COMPLETION_LENGTH:
        defaults |= {"num_generations": NUM_GENERATIONS, "max_completion_length": COMPLETION_LENGTH[kind]}
        if not given.keys() & BATCH_FIELDS:
            defaults["per_device_train_batch_size"] = int(given.get("num_generations", NUM_GENERATIONS))
    if not torch.cuda.is_available() or given.get("use_cpu"):
        defaults |= {"use_cpu": True, "bf16": False, "activation_checkpointing": False}
    return {k: v for k, v in defaults.items() if not given.keys() & GROUPS.get(k, {k})}


def parse_train_args(
    kind: str,
    config: str | Path | None = None,
    overrides: list[str] | None = None,
    output_dir: str | Path | None = None,
) -> GRPOConfig | SFTConfig:
    """TRL's config for `kind` from a YAML file and override strings, with our defaults underneath.

    Raises ValueError for unknown fields, invalid combinations (TRL's own checks) and remote code.
    """
    cls = config_class(kind)
    overrides = list(overrides or [])
    given = _yaml_fields(config) | _cli_fields(cls, overrides)
    parser = TrlParser(cls)
    parser.set_defaults_with_config(**_defaults(kind, given))
    args = ["--config", str(config)] if config is not None else []
    args += overrides + (["--output_dir", str(output_dir)] if output_dir is not None else [])
    (parsed,) = parser.parse_args_and_config(args)
    if parsed.trust_remote_code or (parsed.model_init_kwargs or {}).get("trust_remote_code"):
        raise ValueError("actforge trainers never run remote code: leave trust_remote_code off")
    return parsed


def train(
    kind: str,
    data: str,
    model: str,
    output_dir: str,
    config: str | None = None,
    overrides: list[str] | None = None,
) -> Path:
    """Train `model` on the train split of the published dataset `data`; returns the saved folder."""
    args = parse_train_args(kind, config, overrides, output_dir)
    folder = model_folder(model)
    if kind == "sft":
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        trainer = SFTTrainer(
            model=str(folder),
            args=args,
            train_dataset=sft_dataset(data, TRAIN_SPLIT),
            processing_class=tokenizer,
        )
    else:
        # Left padding and truncation, as TRL sets when it loads the tokenizer itself.
        tokenizer = AutoTokenizer.from_pretrained(
            folder, local_files_only=True, padding_side="left", truncation_side="left"
        )
        if kind == "act":
            rewards, dataset = [critic_reward, format_reward], act_dataset(data, TRAIN_SPLIT)
        else:
            rewards, dataset = [action_reward], states_dataset(data, TRAIN_SPLIT)
        trainer = GRPOTrainer(
            model=str(folder),
            reward_funcs=rewards,
            args=args,
            train_dataset=dataset,
            processing_class=tokenizer,
        )
    trainer.train()
    trainer.save_model(args.output_dir)
    tokenizer.save_pretrained(args.output_dir)
    return Path(args.output_dir)
