"""Sampling beside its floor: the demo's states sampled the build's way, and what they must cost.

The states are the ones a build of the project samples (its sources, `max_states`, in the build's
order and batches of `batch_size`), sampled by the bundled SmolLM2 with the project's K and seed:
  - with the prefix cache (the build's default) and without it (`PrefixCache(0)`: a batch shares
    only its own chunks); the two must sample the same texts, and the run fails if they do not;
  - the floor: FLOPs that no reuse can avoid, at this machine's measured matmul rates. Prompt
    tokens: for each prompt, those after its longest common prefix with any earlier prompt; decode:
    one token per generated token of every alternative (attention over its context included). Each
    token costs 2 x the weights it passes (lm head only at the positions that need logits) plus the
    attention's 4 x layers x context x width. Prefill runs at the rate of a 128-row matmul, decode
    at the rate of a (K x batch)-row one, both of the model's own shapes.
It also counts the forward passes and times one decode pass: on a CPU each pass reads every weight
from memory, a cost the FLOP floor leaves out.

    PYTHONPATH=. .venv/bin/python benchmarks/floor.py [--project actforge.yaml] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from actforge.pipelines import steps
from actforge.pipelines.policy.decoding import sample_prompts
from actforge.pipelines.policy.models import load_policy
from actforge.pipelines.policy.prefix_cache import PrefixCache
from actforge.pipelines.project import load_project
from actforge.pipelines.sources.base import Collected
from actforge.pipelines.sources.registry import collect
from actforge.pipelines.store.database import Store
from actforge.pipelines.store.states import load_states
from actforge.pipelines.text.prompts import agent_prompt
from actforge.schemas.ids import derive_seed

ROOT = Path(__file__).resolve().parents[1]


def project_prompts(
    project: Path, tokenizer, policy_name: str
) -> tuple[list[list[list[int]]], list[list[int]], object]:
    """The build's batches of prompts (token ids) and their seeds, and the sampling parameters."""
    config = load_project(project).build
    params = config.sampling
    collected = Collected()
    for spec in config.sources:
        collected.extend(collect(spec, fmt=config.format, progress=False))
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "floor.duckdb") as store:
        ids, _ = steps.record(store, collected)
        todo = steps.pending(store, steps.select(store, ids, config.max_states), policy_name, None, params)
        batches, seeds = [], []
        for start in range(0, len(todo), config.batch_size):
            states = load_states(store, ids, todo[start : start + config.batch_size], config.history_chars)
            batches.append([agent_prompt(state, tokenizer, params.max_prompt_tokens) for state in states])
            seeds.append([derive_seed(params.seed, state.state_id, policy_name) for state in states])
    return batches, seeds, params


def sample_all(policy, batches, seeds, params) -> tuple[float, list[list[str]]]:
    started, texts = time.perf_counter(), []
    for prompts, batch_seeds in zip(batches, seeds, strict=True):
        texts += sample_prompts(policy, prompts, params, batch_seeds)
    return time.perf_counter() - started, texts


def pass_seconds(model, rows: int = 4, context: int = 800) -> float:
    """One decode forward pass of `rows` rows over a `context`-token cache: mostly reading every
    weight from memory, which no FLOP count shows."""
    from transformers import DynamicCache

    with torch.no_grad():
        cache = DynamicCache(config=model.config)
        model(input_ids=torch.randint(100, 20000, (rows, context)), cache=cache, logits_to_keep=1)
        mask = torch.ones(rows, context + 1, dtype=torch.long)
        times = []
        for _ in range(5):
            started = time.perf_counter()
            token = torch.randint(100, 20000, (rows, 1))
            model(
                input_ids=token, attention_mask=mask, position_ids=torch.full((rows, 1), context), cache=cache
            )
            times.append(time.perf_counter() - started)
            cache.crop(-1)
    return min(times)


def matmul_rate(rows: int, config) -> float:
    """FLOP/s of the model's own projections (width -> MLP width and back) on `rows` rows."""
    torch.manual_seed(0)
    x = torch.randn(rows, config.hidden_size)
    up, down = (
        torch.randn(config.hidden_size, config.intermediate_size),
        torch.randn(config.intermediate_size, config.hidden_size),
    )
    for _ in range(3):
        (x @ up) @ down
    repeats, started = 200, time.perf_counter()
    for _ in range(repeats):
        (x @ up) @ down
    seconds = time.perf_counter() - started
    return repeats * 4 * rows * config.hidden_size * config.intermediate_size / seconds


def span_flops(model, start: int, end: int, logits: int) -> float:
    """FLOPs of the tokens at positions start..end-1 (each attends to the positions before it and
    itself), `logits` of them through the lm head."""
    config = model.config
    embed = model.get_input_embeddings().weight.numel()
    weights = sum(p.numel() for p in model.parameters()) - embed  # the tied lm head: `logits` below
    contexts = (start + 1 + end) * (end - start) / 2
    return (
        2 * weights * (end - start)
        + 4 * config.num_hidden_layers * config.hidden_size * contexts
        + 2 * embed * logits
    )


def floor(model, batches, texts, tokenizer, k: int) -> dict[str, float]:
    """Seconds no reuse can save: unshared prompt tokens and generated tokens, at measured rates."""
    prompts = [p for batch in batches for p in batch]
    prefill_flops, new_tokens = 0.0, 0
    for index, prompt in enumerate(prompts):
        shared = max((_common(prompt, other) for other in prompts[:index]), default=0)
        shared = min(shared, len(prompt) - 1)  # the last token is fed for its logits
        new_tokens += len(prompt) - shared
        prefill_flops += span_flops(model, shared, len(prompt), logits=1)
    decode_flops, generated = 0.0, 0
    for prompt, rows in zip(prompts, texts, strict=True):
        for text in rows:
            n = max(1, len(tokenizer(text, add_special_tokens=False).input_ids))
            generated += n
            decode_flops += span_flops(model, len(prompt), len(prompt) + n - 1, logits=n - 1)
    rows = k * max(len(batch) for batch in batches)
    prefill_rate, decode_rate = matmul_rate(128, model.config), matmul_rate(rows, model.config)
    return {
        "prompt tokens": sum(len(p) for p in prompts),
        "unshared prompt tokens": new_tokens,
        "generated tokens": generated,
        "prefill GFLOP": prefill_flops / 1e9,
        "decode GFLOP": decode_flops / 1e9,
        "matmul GFLOP/s, 128 rows": prefill_rate / 1e9,
        f"matmul GFLOP/s, {rows} rows": decode_rate / 1e9,
        "floor s": prefill_flops / prefill_rate + decode_flops / decode_rate,
    }


def _common(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=ROOT / "actforge.yaml")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/floor.json")
    args = parser.parse_args()
    policy = load_policy()
    batches, seeds, params = project_prompts(args.project, policy.tokenizer, policy.name)
    states = sum(len(b) for b in batches)
    warm = replace(policy, prefix_cache=PrefixCache(0))
    sample_prompts(warm, batches[0][:1], params, seeds[0][:1])  # first-call costs (stop tokens, kernels)
    cached = replace(policy, prefix_cache=PrefixCache())
    passes: list[tuple[int, int]] = []  # (rows, tokens) of each forward pass
    hook = policy.model.register_forward_pre_hook(
        lambda _m, _a, kwargs: passes.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True
    )
    cached_s, cached_texts = sample_all(cached, batches, seeds, params)
    hook.remove()
    cold = replace(policy, prefix_cache=PrefixCache(0))
    cold_s, cold_texts = sample_all(cold, batches, seeds, params)
    if cached_texts != cold_texts:
        raise SystemExit("the prefix cache changed a sample")
    bound = floor(policy.model, batches, cached_texts, policy.tokenizer, params.k)
    result = {
        "command": f"PYTHONPATH=. .venv/bin/python benchmarks/floor.py --project {args.project.name}",
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
        "torch": torch.__version__,
        "states": states,
        "k": params.k,
        "cached s/state": cached_s / states,
        "uncached s/state": cold_s / states,
        "cache hit rate (prompt tokens)": cached.prefix_cache.hit_rate,
        "uncached hit rate (within a batch)": cold.prefix_cache.hit_rate,
        "same texts cached and uncached": True,
        **bound,
        "floor s/state": bound["floor s"] / states,
        "cached / floor": cached_s / bound["floor s"],
        "prefill passes": sum(1 for rows, tokens in passes if tokens > 1),
        "prefill tokens computed": sum(tokens for rows, tokens in passes if tokens > 1),
        "decode passes": sum(1 for rows, tokens in passes if tokens == 1),
        "decode row-steps": sum(rows for rows, tokens in passes if tokens == 1),
        "one decode pass, 4 rows at 800 tokens (s)": pass_seconds(policy.model),
    }
    print(json.dumps(result, indent=2))
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
