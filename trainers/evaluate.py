"""Evaluate a model on a published ACT dataset: critic judgment by answer probabilities, next action.

The critic is scored without sampling noise: for each pair, asked in both orders, the model's
probabilities of writing "1" and "2" right after `<answer>` (renormalised over the two). A pair is
right in an order when the expert's slot is the likelier answer; *consistent* when right in both, so
a critic that always names one slot scores 0 consistent (and 1.0 / 0.0 by slot). P(expert) and the
margin P(expert) - P(alternative) say how sure it is. Under the `reason` protocol the model first
reasons greedily for the same budget as in training, then the harness opens the answer.

A secondary figure, with `free_text_tokens` > 0: how often the model, asked with no help, writes a
well-formed `<answer>N</answer>` itself (greedy).

Next-action accuracy renders each expert state with the one agent prompt and compares the greedy
action with the expert's after normalisation.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import torch
from tqdm.auto import tqdm
from transformers import GenerationConfig

from actforge.pipelines.policy.models import Policy, load_policy
from actforge.pipelines.text.actions import normalise, parse_action
from actforge.pipelines.text.critic import ANSWER_OPEN, SLOTS, critic_prompt_text, parse_tagged
from actforge.pipelines.text.prompts import ACTION_PREFIX, AGENT_PROMPT_TOKENS, agent_prompt, render_chat
from actforge.schemas import STATE_SCHEMA, State, states_from_table
from actforge.schemas.vocab import ACT, METRICS
from actforge.trainers.data import published_split, states_dataset
from actforge.trainers.protocol import REASON_TOKENS, id_list

ACTION_TOKENS = 24  # an action is one short line: the sampler's limit too


def answer_token_ids(tokenizer: Any) -> tuple[int, int]:
    """The single token ids of "1" and "2" (a critic must be able to write each as one token)."""
    ids = [tokenizer(str(slot), add_special_tokens=False).input_ids for slot in SLOTS]
    if any(len(i) != 1 for i in ids):
        raise ValueError(f"the tokenizer splits the answers 1 and 2 into several tokens ({ids})")
    return ids[0][0], ids[1][0]


def score_pairs(rows: Sequence[dict[str, Any]], p_slot_1: Sequence[float]) -> dict[str, Any]:
    """Critic metrics from each row's renormalised P("1"); rows are "act" rows (both orders per pair)."""
    if len(rows) != len(p_slot_1):
        raise ValueError(f"{len(p_slot_1)} probabilities for {len(rows)} rows")
    p_expert = [p if row["expert_slot"] == 1 else 1 - p for row, p in zip(rows, p_slot_1, strict=True)]
    right = [p > 0.5 for p in p_expert]
    by_pair: dict[str, list[bool]] = {}
    for row, ok in zip(rows, right, strict=True):
        by_pair.setdefault(row["pair_id"], []).append(ok)
    both = [oks for oks in by_pair.values() if len(oks) == 2]
    by_slot = {}
    for slot in SLOTS:
        hits = [ok for ok, row in zip(right, rows, strict=True) if row["expert_slot"] == slot]
        by_slot[f"slot_{slot}"] = {"accuracy": _share(sum(hits), len(hits)), "n": len(hits)}
    return {
        "accuracy": _share(sum(right), len(right)),
        "consistent_accuracy": _share(sum(all(oks) for oks in both), len(both)),
        "p_expert": _share(sum(p_expert), len(p_expert)),
        "margin": _share(sum(2 * p - 1 for p in p_expert), len(p_expert)),
        "answers_slot_1": _share(sum(p > 0.5 for p in p_slot_1), len(p_slot_1)),
        "pairs": len(both),
        "n": len(rows),
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


def _share(count: float, total: int) -> float | None:
    """count / total, or None when there is nothing to count (0/0 is not an accuracy)."""
    return count / total if total else None


def critic_rows(data: str, split: str, max_pairs: int | None = None) -> list[dict[str, Any]]:
    """Rows of the "act" config for `split` (both orders of each pair), the first `max_pairs` pairs by id."""
    rows = sorted(published_split(data, ACT, split), key=lambda r: (r["pair_id"], r["expert_slot"]))
    keep = sorted({row["pair_id"] for row in rows})[:max_pairs]
    chosen = set(keep)
    return [row for row in rows if row["pair_id"] in chosen]


def expert_states(data: str, split: str, max_states: int | None = None) -> list[State]:
    """The expert states of `split` (the "states" config), by state_id, the first `max_states`."""
    rows = sorted(states_dataset(data, split), key=lambda row: row["state_id"])
    return states_from_table(pa.Table.from_pylist(rows[:max_states], schema=STATE_SCHEMA))


def _batches(prompts: Sequence[list[int]], batch_size: int) -> list[list[int]]:
    """Prompt indexes grouped by length (little padding); results are put back in order."""
    order = sorted(range(len(prompts)), key=lambda i: (len(prompts[i]), i))
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def _left_padded(policy: Policy, prompts: Sequence[list[int]]) -> dict[str, torch.Tensor]:
    tokenizer = policy.tokenizer
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    padded = tokenizer.pad({"input_ids": list(prompts)}, return_tensors="pt")
    return {k: v.to(policy.model.device) for k, v in padded.items()}


@torch.no_grad()
def answer_probabilities(
    policy: Policy, prompts: Sequence[list[int]], batch_size: int = 8, progress: bool = True
) -> list[float]:
    """P("1") / (P("1") + P("2")) at the end of each prompt (which ends with an opened <answer>)."""
    one, two = answer_token_ids(policy.tokenizer)
    result = [0.0] * len(prompts)
    for batch in tqdm(_batches(prompts, batch_size), desc="critic", unit="batch", disable=not progress):
        inputs = _left_padded(policy, [prompts[i] for i in batch])
        logits = policy.model(**inputs).logits[:, -1, :].float()
        pair = torch.softmax(logits[:, [one, two]], dim=-1)[:, 0]
        for i, p in zip(batch, pair.tolist(), strict=True):
            result[i] = p
    return result


@torch.no_grad()
def generate_greedy(
    policy: Policy,
    prompts: Sequence[list[int]],
    batch_size: int = 8,
    max_new_tokens: int = 256,
    stop_strings: list[str] | None = None,
    desc: str = "generate",
    progress: bool = True,
) -> list[str]:
    """Greedy completions of token-id prompts, in their order, batched with left padding."""
    model, tokenizer = policy.model, policy.tokenizer
    inputs_eos = {tokenizer.eos_token_id, *id_list(model.generation_config.eos_token_id)} - {None}
    completions: list[str] = [""] * len(prompts)
    for batch in tqdm(_batches(prompts, batch_size), desc=desc, unit="batch", disable=not progress):
        inputs = _left_padded(policy, [prompts[i] for i in batch])
        # A fresh config: the model's own may carry sampling settings that greedy decoding must ignore.
        config = GenerationConfig(
            do_sample=False,
            max_new_tokens=max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=sorted(inputs_eos) or None,
            stop_strings=stop_strings,
        )
        out = model.generate(**inputs, generation_config=config, tokenizer=tokenizer)
        for i, row in zip(batch, out, strict=True):
            completions[i] = tokenizer.decode(row[inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    return completions


def critic_prompts(
    policy: Policy, rows: Sequence[dict[str, Any]], protocol: str, batch_size: int = 8
) -> list[list[int]]:
    """Token ids of each row's critic prompt up to and including the opened <answer>.

    `reason`: the model's greedy reasoning (at most REASON_TOKENS) is inserted before the tag.
    """
    tokenizer = policy.tokenizer

    def ids(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False).input_ids

    texts = [critic_prompt_text(tokenizer, row["prompt"], protocol) for row in rows]
    if protocol == "direct":
        return [ids(text) for text in texts]
    thoughts = generate_greedy(
        policy, [ids(t) for t in texts], batch_size, REASON_TOKENS, [ANSWER_OPEN], "reason"
    )
    return [
        ids(
            text + thought.rstrip()
            if thought.rstrip().lower().endswith(ANSWER_OPEN)
            else text + thought + ANSWER_OPEN
        )
        for text, thought in zip(texts, thoughts, strict=True)
    ]


def tag_rate(
    policy: Policy, rows: Sequence[dict[str, Any]], max_new_tokens: int, batch_size: int
) -> float | None:
    """Share of rows where the model, asked with no answer opened, writes one well-formed answer tag."""
    tokenizer = policy.tokenizer
    prompts = [
        tokenizer(render_chat(tokenizer, r["prompt"]), add_special_tokens=False).input_ids for r in rows
    ]
    texts = generate_greedy(policy, prompts, batch_size, max_new_tokens, desc="free text")
    return _share(sum(parse_tagged(text) is not None for text in texts), len(texts))


def action_prompts(policy: Policy, states: Sequence[State]) -> list[list[int]]:
    """Token ids of the one agent prompt for each state, ending with "Action:"."""
    return [agent_prompt(state, policy.tokenizer, AGENT_PROMPT_TOKENS) for state in states]


def evaluate(
    data: str,
    model: str,
    split: str = "test",
    max_pairs: int | None = None,
    max_states: int | None = None,
    protocol: str = "direct",
    batch_size: int = 8,
    free_text_tokens: int = 0,
) -> dict[str, Any]:
    """Critic and next-action metrics of `model` ("smollm2" or a local folder) on `split` of `data`."""
    policy = load_policy(model)
    policy.model.to("cuda" if torch.cuda.is_available() else "cpu")
    rows = critic_rows(data, split, max_pairs)
    critic = score_pairs(
        rows, answer_probabilities(policy, critic_prompts(policy, rows, protocol, batch_size))
    )
    if free_text_tokens:
        critic["tag_rate"] = tag_rate(policy, rows, free_text_tokens, batch_size)
    states = expert_states(data, split, max_states)
    actions = generate_greedy(
        policy, action_prompts(policy, states), batch_size, ACTION_TOKENS, ["\n"], "action"
    )
    return {
        "model": model,
        "policy": policy.name,
        "data": data,
        "split": split,
        "protocol": protocol,
        "critic": critic,
        "action": score_actions(actions, [s.expert_action for s in states], [s.environment for s in states]),
    }


def write_result(result: dict[str, Any], path: Path) -> None:
    """Write one evaluation result as stable JSON (sorted keys), creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, sort_keys=True, indent=2) + "\n", encoding="utf-8")


def metric_value(result: dict[str, Any], path: tuple[str, ...]) -> Any:
    """The value at a METRICS path of an evaluation result, or None where it was not measured."""
    for key in path:
        if not isinstance(result, dict) or key not in result:
            return None
        result = result[key]
    return result


def _number(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


def _table(header: list[str], rows: list[list[str]]) -> str:
    """Plain-text table: first column left-aligned, the others right-aligned."""
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        aligned = [cells[0].ljust(widths[0]), *rest]
        return "  ".join(aligned).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *map(line, rows)])


def format_table(results: Sequence[dict[str, Any]], names: Sequence[str] | None = None) -> str:
    """One row per evaluated model (named by `names` or the model), every metric."""
    header = ["model", "pairs", "states", *(label for label, _ in METRICS)]
    rows = [
        [name, _count(metric_value(r, ("critic", "pairs"))), _count(metric_value(r, ("action", "n")))]
        + [_number(metric_value(r, path)) for _, path in METRICS]
        for name, r in zip(names or [r["model"] for r in results], results, strict=True)
    ]
    return _table(header, rows)


def compare_table(before: dict[str, Any], after: dict[str, Any]) -> str:
    """Before/after/delta for each metric, e.g. the base model against its ACT-trained version."""
    rows = []
    for label, path in METRICS:
        old, new = metric_value(before, path), metric_value(after, path)
        delta = None if old is None or new is None else new - old
        rows.append([label, _number(old), _number(new), _number(delta, signed=True)])
    header = ["metric", f"before ({before['model']})", f"after ({after['model']})", "delta"]
    return _table(header, rows)
