"""Train on a published actforge dataset with TRL: `act` (the critic), `action` (GRPO agent), `sft`
(imitation) and `dpo` (the preference pairs); TRL's config for each comes from `trainers.trl_config`:

    train("act", "out/demo", "smollm2", "runs/act", config="grpo.yaml",
          overrides=["--max_steps", "200", "--learning_rate=1e-6", "--beta", "0.04"])

The critic's answer protocol (`direct` or `reason`, see `pipelines.text.critic`) is chosen by measuring
the base model when `protocol="auto"`; the choice and its measurement are saved in
`output_dir/actforge.json`, which evaluation reads.

Models are the bundled `smollm2` or a local folder; nothing is downloaded and remote code never
runs. The trained model and its tokenizer are saved to `output_dir`, so a later run can start from
that folder, and with beta > 0 TRL reloads the reference model from it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from peft import PeftModel, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import DPOTrainer, GRPOTrainer, SFTTrainer, get_peft_config

from actforge.pipelines.policy.models import Policy, load_policy, model_folder
from actforge.pipelines.text.critic import PROTOCOLS
from actforge.schemas.vocab import ACT
from actforge.trainers.curve import CriticCurve
from actforge.trainers.data import (
    agent_dataset,
    critic_dataset,
    preference_dataset,
    published_splits,
    sft_dataset,
)
from actforge.trainers.evaluate import critic_rows
from actforge.trainers.exact import ExactCriticTrainer, tokenized_critic_dataset
from actforge.trainers.overrides import model_config
from actforge.trainers.protocol import choose_protocol, measure_protocol, reason_rollout
from actforge.trainers.rewards import action_reward, critic_rewards
from actforge.trainers.trl_config import parse_train_args, reasoning_budget, resolve_objective

TRAIN_SPLIT = "train"
PROTOCOL_PROBE_PAIRS = 8  # train pairs (x2 orders x4 samples) measured to choose a protocol
RUN_FILE = "actforge.json"
ADAPTER_DIR = "adapter"  # a LoRA run's adapter, beside the merged model


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
    """The TRL trainer for `kind`: SFT on expert actions, DPO on the preference pairs, the
    exact-expectation critic trainer, GRPO on the critic task (`act`, answering by protocol
    `chosen`), or GRPO on actions."""
    if kind == "dpo":
        return DPOTrainer(
            model=str(folder),
            args=args,
            train_dataset=preference_dataset(data, TRAIN_SPLIT),
            processing_class=tokenizer,
            peft_config=lora,
        )
    if kind == "sft":
        return SFTTrainer(
            model=str(folder),
            args=args,
            train_dataset=sft_dataset(data, TRAIN_SPLIT, tokenizer),
            processing_class=tokenizer,
            peft_config=lora,
        )
    if objective == "exact":
        return _exact_trainer(
            folder, args, tokenizer, critic_dataset(data, TRAIN_SPLIT, tokenizer, chosen, args.seed), lora
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


def _exact_trainer(folder: Path, args: Any, tokenizer: Any, dataset: Any, lora: Any) -> ExactCriticTrainer:
    """The critic trained on the exact expectation of GRPO's one-token reward (`trainers.exact`)."""
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
        train_dataset=tokenized_critic_dataset(dataset, tokenizer),
        processing_class=tokenizer,
        ref_model=reference,
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
