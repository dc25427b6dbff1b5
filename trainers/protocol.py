"""Critic answer protocols at generation time: sampling each protocol, measuring it, choosing one.

`direct` samples one token after the prompt's `<answer>`. `reason` samples up to `reason_tokens` of
reasoning (stopping early if the model opens `<answer>` itself), appends `<answer>` where the model
did not, then samples the digit; the appended tokens are marked 0 in `env_mask` so GRPO does not
train on them. The same code serves TRL's `rollout_func` and the measurement that picks a protocol.

A protocol is usable when the base model answers well-formed at temperature 1 at least
`MIN_WELL_FORMED` of the time; among usable ones, the one whose GRPO groups most often disagree
(rewards not all equal, so there is a gradient) wins, ACT's `reason` on a tie.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch

from actforge.pipelines.text.critic import ANSWER_OPEN, check_protocol, critic_prompt_text, parse_answer

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

REASON_TOKENS = 64
MIN_WELL_FORMED = 0.95
DIRECT_TOKENS = 1


def _padded(tokenizer: PreTrainedTokenizerBase, prompts: Sequence[list[int]], device: torch.device) -> dict:
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt) :] = torch.tensor(prompt)
        mask[row, width - len(prompt) :] = 1
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "pad_token_id": pad}


@torch.no_grad()
def _sample(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[list[int]],
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    stop_strings: list[str] | None = None,
) -> list[list[int]]:
    """Sampled continuations of token-id prompts, without padding and without end-of-turn tokens."""
    inputs = _padded(tokenizer, prompts, model.device)
    out = model.generate(
        **inputs,
        do_sample=True,
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
        stop_strings=stop_strings,
        tokenizer=tokenizer,
    )
    ends = {inputs["pad_token_id"], tokenizer.eos_token_id, *id_list(model.generation_config.eos_token_id)}
    result = []
    for row in out[:, inputs["input_ids"].shape[1] :].tolist():
        while row and row[-1] in ends:
            row.pop()
        result.append(row)
    return result


def id_list(value: int | list[int] | None) -> list[int]:
    """A generation config's eos_token_id (one id, a list or None) as a list."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def generate_answers(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[list[int]],
    protocol: str,
    temperature: float = 1.0,
    top_p: float = 1.0,
    reason_tokens: int = REASON_TOKENS,
) -> tuple[list[list[int]], list[list[int]]]:
    """(completion ids, env_mask) per prompt, sampled under `protocol`; mask 0 marks harness tokens."""
    if check_protocol(protocol) == "direct":
        completions = _sample(model, tokenizer, prompts, DIRECT_TOKENS, temperature, top_p)
        return completions, [[1] * len(c) for c in completions]
    reasoning = _sample(model, tokenizer, prompts, reason_tokens, temperature, top_p, [ANSWER_OPEN])
    tag = tokenizer(ANSWER_OPEN, add_special_tokens=False).input_ids
    heads, masks = [], []
    for ids in reasoning:
        opened = tokenizer.decode(ids).rstrip().lower().endswith(ANSWER_OPEN)
        heads.append(ids if opened else ids + tag)
        masks.append([1] * len(ids) + ([] if opened else [0] * len(tag)))
    digits = _sample(
        model, tokenizer, [p + h for p, h in zip(prompts, heads, strict=True)], 1, temperature, top_p
    )
    completions = [h + d for h, d in zip(heads, digits, strict=True)]
    return completions, [m + [1] * len(d) for m, d in zip(masks, digits, strict=True)]


def reason_rollout(reason_tokens: int = REASON_TOKENS) -> Callable[[list[str], Any], dict[str, Any]]:
    """TRL `rollout_func` for the `reason` protocol: one completion per prompt it is given.

    TRL's sampler has already repeated each prompt `num_generations` times, so each gets one sample.
    """

    def rollout(prompts: list[str], trainer: Any) -> dict[str, Any]:
        tokenizer = trainer.processing_class
        model = trainer.accelerator.unwrap_model(trainer.model)
        prompt_ids = [tokenizer(p, add_special_tokens=False).input_ids for p in prompts]
        was_training = model.training
        model.eval()
        try:
            completions, mask = generate_answers(
                model,
                tokenizer,
                prompt_ids,
                "reason",
                trainer.args.temperature,
                trainer.args.top_p or 1.0,
                reason_tokens,
            )
        finally:
            model.train(was_training)
        return {"prompt_ids": prompt_ids, "completion_ids": completions, "logprobs": None, "env_mask": mask}

    return rollout


def measure_protocol(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    rows: Sequence[dict[str, Any]],
    protocol: str,
    samples: int = 4,
    reason_tokens: int = REASON_TOKENS,
    batch_size: int = 16,
) -> dict[str, Any]:
    """Well-formed rate, accuracy, answer shares and non-constant-group share at temperature 1.

    `rows` are "act" rows (conversational `prompt`, `expert_slot`); each is sampled `samples` times,
    a GRPO group. Seeded, so a measurement repeats.
    """
    torch.manual_seed(0)
    prompts = [
        tokenizer(critic_prompt_text(tokenizer, row["prompt"], protocol), add_special_tokens=False).input_ids
        for row in rows
    ]
    if protocol == "direct":
        completions = _direct_samples(model, tokenizer, prompts, samples, batch_size)
    else:
        repeated = [p for p in prompts for _ in range(samples)]
        completions = []
        for start in range(0, len(repeated), batch_size):
            batch = repeated[start : start + batch_size]
            completions += generate_answers(model, tokenizer, batch, protocol, reason_tokens=reason_tokens)[0]
    answers = [parse_answer(tokenizer.decode(c), protocol) for c in completions]
    groups = [answers[i * samples : (i + 1) * samples] for i in range(len(rows))]
    rewards = [[a == row["expert_slot"] for a in group] for group, row in zip(groups, rows, strict=True)]
    total = len(answers)
    return {
        "protocol": protocol,
        "prompts": len(rows),
        "samples": samples,
        "well_formed": sum(a is not None for a in answers) / total,
        "accuracy": sum(map(sum, rewards)) / total,
        "answers_slot_1": answers.count(1) / total,
        "answers_slot_2": answers.count(2) / total,
        "nonconstant_groups": sum(len(set(r)) > 1 for r in rewards) / len(rows),
    }


@torch.no_grad()
def _direct_samples(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[list[int]],
    samples: int,
    batch_size: int,
) -> list[list[int]]:
    """`samples` one-token draws per prompt from one forward pass: the full softmax at temperature 1.

    The same distribution `generate` samples a one-token completion from, at a quarter of the cost
    for four samples (the prompt is read once, not once per sample).
    """
    draws = []
    for start in range(0, len(prompts), batch_size):
        inputs = _padded(tokenizer, prompts[start : start + batch_size], model.device)
        logits = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits[:, -1]
        tokens = torch.multinomial(torch.softmax(logits.float(), dim=-1), samples, replacement=True)
        draws += [[token] for row in tokens.tolist() for token in row]
    return draws


def choose_protocol(measurements: Sequence[dict[str, Any]]) -> str:
    """The usable protocol (well-formed >= MIN_WELL_FORMED) with the most non-constant groups."""
    usable = [m for m in measurements if m["well_formed"] >= MIN_WELL_FORMED]
    if not usable:
        return "direct"  # the prompt opens the answer: the format cannot fail, only the digit can
    best = max(usable, key=lambda m: (m["nonconstant_groups"], m["protocol"] == "reason"))
    return best["protocol"]
