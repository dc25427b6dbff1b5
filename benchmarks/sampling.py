"""Measure K-sample decoding: K separate `generate` calls vs one shared prefill per state (what actforge
did before its batched decoder, `pipelines.policy.decoding`; kept here as the baseline that `fan_out.py`
measures it against).

Run: .venv/bin/python benchmarks/sampling.py [--policy smollm2] [--k 4] [--repeats 3]
Prints one markdown table row per setting: median seconds per state and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from actforge.pipelines.config import BuildConfig
from actforge.pipelines.policy.models import load_policy
from actforge.pipelines.policy.params import SamplingParams
from actforge.pipelines.text.prompts import agent_prompt
from actforge.schemas import State, Step

OBS = (
    "This room is called the kitchen. In it, you see: a fridge (closed), a table with a cup and a "
    "thermometer on it, a stove (turned off), a sink, a chair, a counter with a bowl of oranges. "
    "You also see: a door to the hallway (that is open), a door to the outside (that is closed)."
)
STATE = State(
    state_id="bench",
    trajectory_id="bench",
    source="bench",
    task="boil",
    environment="scienceworld",
    split="train",
    step_index=6,
    instruction="Your task is to boil water. For compounds without a boiling point, combusting the "
    "substance is also acceptable. First, focus on the substance. Then, take actions that will cause "
    "it to change its state of matter.",
    history=tuple(
        Step(OBS, a)
        for a in (
            "look around",
            "go to kitchen",
            "open fridge",
            "look at stove",
            "pick up metal pot",
            "move metal pot to sink",
        )
    ),  # fmt: skip
    observation=OBS,
    expert_action="activate sink",
)


def generate_k(policy, prompt_ids: list[int], params: SamplingParams, seed: int) -> list[str]:
    """K sampled continuations of one prompt, sharing a single prefill of its KV cache."""
    from transformers import DynamicCache

    model, tokenizer = policy.model, policy.tokenizer
    ids = torch.tensor([prompt_ids], dtype=torch.long)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    with torch.no_grad():
        cache = DynamicCache(config=model.config)
        model(input_ids=ids[:, :-1], cache=cache, use_cache=True)
        cache.batch_repeat_interleave(params.k)
        batch = ids.repeat(params.k, 1)
        torch.manual_seed(seed)
        out = model.generate(
            input_ids=batch,
            attention_mask=torch.ones_like(batch),
            cache=cache,
            do_sample=True,
            temperature=params.temperature,
            top_p=params.top_p,
            max_new_tokens=params.max_new_tokens,
            stop_strings=["\n"],
            tokenizer=tokenizer,
            pad_token_id=pad,
        )
    return [tokenizer.decode(row[ids.shape[1] :], skip_special_tokens=True) for row in out]


def _separate(policy, prompt: list[int], params: SamplingParams, seed: int) -> None:
    ids = torch.tensor([prompt])
    torch.manual_seed(seed)
    with torch.no_grad():
        for _ in range(params.k):
            policy.model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                do_sample=True,
                temperature=params.temperature,
                top_p=params.top_p,
                max_new_tokens=params.max_new_tokens,
                stop_strings=["\n"],
                tokenizer=policy.tokenizer,
                pad_token_id=policy.tokenizer.eos_token_id,
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--policy", default="smollm2")
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    policy = load_policy(args.policy)
    params = BuildConfig(k=args.k).sampling
    prompt = agent_prompt(STATE, policy.tokenizer, params.max_prompt_tokens)
    timings: dict[str, list[float]] = {"separate": [], "shared": []}
    for repeat in range(args.repeats + 1):
        for name, fn in (("separate", _separate), ("shared", generate_k)):
            start = time.perf_counter()
            fn(policy, prompt, params, repeat)
            if repeat:  # the first round warms up
                timings[name].append(time.perf_counter() - start)
    separate, shared = (statistics.median(timings[n]) for n in ("separate", "shared"))
    print("| policy | prompt tokens | K | K separate generate (s) | shared prefill (s) | ratio |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    ratio = separate / shared
    print(f"| {policy.name} | {len(prompt)} | {args.k} | {separate:.2f} | {shared:.2f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
