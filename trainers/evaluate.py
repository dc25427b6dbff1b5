"""Evaluate a model on a published ACT dataset: pairwise critic accuracy and next-action accuracy.

Both use greedy decoding, so a number is a property of the model and the data, not of a seed. The
critic score is the GRPO reward averaged over pairs (the completion's single <answer> names the
expert's slot), reported per slot too because a critic that always answers "1" scores about 0.5
overall but 1.0 and 0.0 by slot. Next-action accuracy asks the same model to act at the expert
states, prompted exactly as the sampler prompts the base policy, and compares normalised actions.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets
import torch
from tqdm.auto import tqdm
from transformers import GenerationConfig

from pipelines.actions import normalise, parse_action
from pipelines.critic import parse_answer
from pipelines.policy import Policy, load_policy
from pipelines.prompts import ACTION_PREFIX, agent_prompt, render_chat
from pipelines.sampling import SamplingParams
from schemas import State, state_from_row

# The sampler's prompt budget: next-action prompts then match the states the alternatives came from.
SAMPLER_PROMPT_TOKENS = SamplingParams().max_prompt_tokens


def score_critic(completions: Sequence[str], expert_slots: Sequence[int]) -> dict[str, Any]:
    """Accuracy, unparseable share and per-slot accuracy of critic completions."""
    if len(completions) != len(expert_slots):
        raise ValueError(f"{len(completions)} completions for {len(expert_slots)} expert slots")
    answers = [parse_answer(text) for text in completions]
    correct = [answer == slot for answer, slot in zip(answers, expert_slots, strict=True)]
    by_slot = {}
    for slot in (1, 2):
        hits = [ok for ok, s in zip(correct, expert_slots, strict=True) if s == slot]
        by_slot[f"slot_{slot}"] = {"accuracy": _share(sum(hits), len(hits)), "n": len(hits)}
    return {
        "accuracy": _share(sum(correct), len(correct)),
        "unparseable": _share(answers.count(None), len(answers)),
        "n": len(completions),
        **by_slot,
    }


def score_actions(
    completions: Sequence[str], expert_actions: Sequence[str], environments: Sequence[str]
) -> dict[str, Any]:
    """Accuracy and unparseable share of next-action completions (generated after "Action:")."""
    if not len(completions) == len(expert_actions) == len(environments):
        raise ValueError("completions, expert_actions and environments differ in length")
    actions = [parse_action(ACTION_PREFIX + text) for text in completions]
    correct = [
        action is not None and normalise(action, env) == normalise(expert, env)
        for action, expert, env in zip(actions, expert_actions, environments, strict=True)
    ]
    return {
        "accuracy": _share(sum(correct), len(correct)),
        "unparseable": _share(actions.count(None), len(actions)),
        "n": len(completions),
    }


def _share(count: int, total: int) -> float | None:
    """count / total, or None when there is nothing to count (0/0 is not an accuracy)."""
    return count / total if total else None


def critic_rows(data: str, split: str, max_pairs: int | None = None) -> list[dict[str, Any]]:
    """Rows of the "act" config for `split`, by pair_id, the first `max_pairs`."""
    rows = sorted(datasets.load_dataset(data, "act", split=split), key=lambda row: row["pair_id"])
    return rows[:max_pairs]


def expert_states(data: str, split: str, max_states: int | None = None) -> list[State]:
    """The distinct expert states of `split` in the default config, by state_id, the first `max_states`."""
    unique: dict[str, dict[str, Any]] = {}
    for row in datasets.load_dataset(data, split=split):
        unique.setdefault(row["state_id"], row)
    return [state_from_row(unique[key]) for key in sorted(unique)][:max_states]


def prompt_budget(policy: Policy, max_new_tokens: int) -> int:
    """Prompt tokens that leave room for `max_new_tokens` in the model's context."""
    config = policy.model.config
    context = getattr(config, "max_position_embeddings", None) or policy.tokenizer.model_max_length
    if context - max_new_tokens < 1:
        raise ValueError(f"max_new_tokens={max_new_tokens} leaves no room in a {context}-token context")
    return context - max_new_tokens


def critic_prompts(policy: Policy, rows: Sequence[dict[str, Any]], max_prompt_tokens: int) -> list[list[int]]:
    """Token ids of each row's critic prompt with the assistant turn opened, cut from the left."""
    tokenizer = policy.tokenizer
    prompts = []
    for row in rows:
        text = render_chat(tokenizer, row["prompt"])
        prompts.append(tokenizer(text, add_special_tokens=False).input_ids[-max_prompt_tokens:])
    return prompts


def action_prompts(policy: Policy, states: Sequence[State], max_prompt_tokens: int) -> list[list[int]]:
    """Token ids of the sampler's agent prompt for each state, ending with "Action:"."""
    budget = min(SAMPLER_PROMPT_TOKENS, max_prompt_tokens)
    return [agent_prompt(state, policy.tokenizer, budget) for state in states]


@torch.no_grad()
def generate_greedy(
    policy: Policy,
    prompts: Sequence[list[int]],
    batch_size: int = 8,
    max_new_tokens: int = 256,
    stop_strings: list[str] | None = None,
    desc: str = "generate",
) -> list[str]:
    """Greedy completions of token-id prompts, in their order, batched with left padding.

    Prompts are batched by length so little compute goes to padding; the order of the result does
    not depend on it.
    """
    model, tokenizer = policy.model, policy.tokenizer
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    eos = {tokenizer.eos_token_id, *_ids(model.generation_config.eos_token_id)} - {None}
    # A fresh config: the model's own may carry sampling settings that greedy decoding must ignore.
    config = GenerationConfig(
        do_sample=False,
        max_new_tokens=max_new_tokens,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=sorted(eos) or None,
        stop_strings=stop_strings,
    )
    order = sorted(range(len(prompts)), key=lambda i: (len(prompts[i]), i))
    completions: list[str] = [""] * len(prompts)
    with tqdm(total=len(prompts), desc=desc, unit="prompt") as bar:
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            padded = tokenizer.pad({"input_ids": [prompts[i] for i in batch]}, return_tensors="pt")
            input_ids = padded["input_ids"].to(model.device)
            out = model.generate(
                input_ids=input_ids,
                attention_mask=padded["attention_mask"].to(model.device),
                generation_config=config,
                tokenizer=tokenizer,
            )
            for i, row in zip(batch, out, strict=True):
                completions[i] = tokenizer.decode(row[input_ids.shape[1] :], skip_special_tokens=True)
            bar.update(len(batch))
    return completions


def _ids(value: int | list[int] | None) -> list[int]:
    """A generation config's eos_token_id (one id, a list or None) as a list."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def evaluate(
    data: str,
    model: str,
    split: str = "test",
    max_pairs: int | None = None,
    max_states: int | None = None,
    batch_size: int = 8,
    max_new_tokens: int = 256,
) -> dict[str, Any]:
    """Critic and next-action accuracy of `model` ("smollm2" or a local folder) on `split` of `data`."""
    policy = load_policy(model)
    policy.model.to("cuda" if torch.cuda.is_available() else "cpu")
    budget = prompt_budget(policy, max_new_tokens)

    rows = critic_rows(data, split, max_pairs)
    critic_out = generate_greedy(
        policy, critic_prompts(policy, rows, budget), batch_size, max_new_tokens, desc="critic"
    )
    states = expert_states(data, split, max_states)
    # An action is one line (the sampler stops there too); stopping saves decoding the rest.
    action_out = generate_greedy(
        policy, action_prompts(policy, states, budget), batch_size, max_new_tokens, ["\n"], desc="action"
    )
    return {
        "model": model,
        "policy": policy.name,
        "data": data,
        "split": split,
        "max_new_tokens": max_new_tokens,
        "critic": score_critic(critic_out, [row["expert_slot"] for row in rows]),
        "action": score_actions(
            action_out, [s.expert_action for s in states], [s.environment for s in states]
        ),
    }


def write_result(result: dict[str, Any], path: Path) -> None:
    """Write one evaluation result as stable JSON (sorted keys), creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, sort_keys=True, indent=2) + "\n", encoding="utf-8")


# (label, path into a result) for every reported metric, in table order.
METRICS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("critic acc", ("critic", "accuracy")),
    ("unparseable", ("critic", "unparseable")),
    ("slot-1 acc", ("critic", "slot_1", "accuracy")),
    ("slot-2 acc", ("critic", "slot_2", "accuracy")),
    ("action acc", ("action", "accuracy")),
    ("action unparseable", ("action", "unparseable")),
)


def _get(result: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        result = result[key]
    return result


def _number(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    """Plain-text table: first column left-aligned, the others right-aligned."""
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        aligned = [cells[0].ljust(widths[0]), *rest]
        return "  ".join(aligned).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *map(line, rows)])


def format_table(results: Sequence[dict[str, Any]]) -> str:
    """One row per evaluated model: where it was evaluated, how many items, every metric."""
    header = ["model", "split", "pairs", "states", *(label for label, _ in METRICS)]
    rows = [
        [r["model"], r["split"], str(r["critic"]["n"]), str(r["action"]["n"])]
        + [_number(_get(r, path)) for _, path in METRICS]
        for r in results
    ]
    return _table(header, rows)


def compare_table(before: dict[str, Any], after: dict[str, Any]) -> str:
    """Before/after/delta for each metric, e.g. the base model against its ACT-trained version."""
    rows = []
    for label, path in METRICS:
        old, new = _get(before, path), _get(after, path)
        delta = None if old is None or new is None else new - old
        rows.append([label, _number(old), _number(new), _number(delta, signed=True)])
    header = ["metric", f"before ({before['model']})", f"after ({after['model']})", "delta"]
    return _table(header, rows)
