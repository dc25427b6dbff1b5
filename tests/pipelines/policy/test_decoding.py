"""The batched local decoder on a real tiny Llama: a prompt's samples depend on the prompt and its
seed alone (not on its batch), shared leading chunks are prefilled once, and the sampling rule is
`generate`'s."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import torch
from transformers import TemperatureLogitsWarper, TopPLogitsWarper

from actforge.pipelines import steps
from actforge.pipelines.config import BuildConfig
from actforge.pipelines.policy.decoding import (
    PREFILL_CHUNK,
    chunk_ends,
    nucleus,
    sample_prompts,
    token_batches,
)
from actforge.pipelines.policy.models import Policy
from actforge.pipelines.policy.prefix_cache import Chunk, PrefixCache
from actforge.pipelines.sources.base import Collected
from actforge.pipelines.store.database import Store
from actforge.pipelines.store.states import load_states
from actforge.pipelines.text.prompts import agent_prompt
from tests.support.factories import make_trajectory, numbered_steps


def _prompts(tiny: Policy, lengths: list[int], seed: int = 0) -> list[list[int]]:
    """Random prompts of the given lengths, from printable tokens (no special ones)."""
    rng = random.Random(seed)
    vocab = [i for i in range(len(tiny.tokenizer)) if i not in tiny.tokenizer.all_special_ids]
    return [[rng.choice(vocab) for _ in range(n)] for n in lengths]


def _lengths_fed(tiny: Policy) -> tuple[list[int], torch.utils.hooks.RemovableHandle]:
    fed: list[int] = []
    hook = tiny.model.register_forward_pre_hook(
        lambda _m, args, kwargs: fed.append(kwargs["input_ids"].shape[1]), with_kwargs=True
    )
    return fed, hook


def test_samples_do_not_depend_on_the_batch(tiny: Policy) -> None:
    params = BuildConfig(k=3, seed=0, max_new_tokens=12).sampling
    prompts = _prompts(tiny, [40, 300, 130, 7, 260])
    seeds = [11, 12, 13, 14, 15]
    together = sample_prompts(tiny, prompts, params, seeds)
    alone = [sample_prompts(tiny, [p], params, [s])[0] for p, s in zip(prompts, seeds, strict=True)]
    assert together == alone
    backwards = sample_prompts(tiny, prompts[::-1], params, seeds[::-1])
    assert backwards[::-1] == together
    small = sample_prompts(tiny, prompts, params, seeds, budget=1)  # each prompt a pass of its own
    assert small == together
    assert all(len(rows) == 3 for rows in together)
    assert len({text for rows in together for text in rows}) > 5  # sampled, not one answer
    assert sample_prompts(tiny, prompts, params, [s + 1 for s in seeds]) != together


def test_a_row_ends_at_a_newline(tiny: Policy) -> None:
    params = BuildConfig(k=8, seed=0, max_new_tokens=40).sampling
    texts = [t for rows in sample_prompts(tiny, _prompts(tiny, [50, 90]), params, [1, 2]) for t in rows]
    assert any(t.endswith("\n") for t in texts)  # the tiny model's corpus has newlines
    assert all("\n" not in t[:-1] for t in texts)


def _uncached(tiny: Policy) -> Policy:
    """The same model with nothing kept across batches (a batch still shares its own chunks)."""
    return dataclasses.replace(tiny, prefix_cache=PrefixCache(0))


def test_leading_chunks_are_prefilled_once(tiny: Policy) -> None:
    """Two states of one trajectory: the later prompt starts with the earlier one's first chunks,
    in one batch, and in a later batch while the cache holds them."""
    params = BuildConfig(k=2, seed=0, max_new_tokens=4).sampling
    first, other = _prompts(tiny, [2 * PREFILL_CHUNK + 44, 100], seed=1)
    later = first[: 2 * PREFILL_CHUNK] + other
    fed, hook = _lengths_fed(tiny)
    try:
        together = sample_prompts(_uncached(tiny), [first, later], params, [5, 6])
        prefill = [n for n in fed if n > 1]
        fed.clear()
        alone = sample_prompts(_uncached(tiny), [later], params, [6])
        prefill_alone = [n for n in fed if n > 1]
        fed.clear()
        policy = dataclasses.replace(tiny, prefix_cache=PrefixCache())
        in_turn = [
            sample_prompts(policy, [prompt], params, [seed])[0] for prompt, seed in ((first, 5), (later, 6))
        ]
        prefill_in_turn = [n for n in fed if n > 1]
    finally:
        hook.remove()
    assert prefill == [PREFILL_CHUNK, PREFILL_CHUNK, 44, 100]  # the later prompt resumes at 256
    assert prefill_alone == [PREFILL_CHUNK, PREFILL_CHUNK, 100]
    assert prefill_in_turn == prefill  # the second batch resumes at 256 too
    assert policy.prefix_cache.reused_tokens == 2 * PREFILL_CHUNK
    assert together[1] == alone[0] == in_turn[1] and together[0] == in_turn[0]


def test_the_cache_never_changes_a_sample(tiny: Policy) -> None:
    """A trajectory's states sampled batch by batch: with chunks kept across batches (and a budget
    too small to keep them all) the texts equal an uncached run's, and most prompt tokens are reused."""
    params = BuildConfig(k=3, seed=0, max_new_tokens=8).sampling
    steps = _prompts(tiny, [20 + 37 * (i % 4) for i in range(12)], seed=3)
    prompts = [[token for step in steps[: i + 1] for token in step] for i in range(12)]
    seeds = list(range(100, 112))
    small = dataclasses.replace(tiny, prefix_cache=PrefixCache(0.2))  # three chunks: evicts as it goes
    kept, cold = dataclasses.replace(tiny, prefix_cache=PrefixCache()), _uncached(tiny)
    batches = [range(i, min(i + 3, 12)) for i in range(0, 12, 3)]
    texts = {policy: [] for policy in ("kept", "small", "cold")}
    for batch in batches:
        for name, policy in (("kept", kept), ("small", small), ("cold", cold)):
            texts[name] += sample_prompts(
                policy, [prompts[i] for i in batch], params, [seeds[i] for i in batch]
            )
    assert texts["kept"] == texts["cold"] == texts["small"]
    rates = [policy.prefix_cache.hit_rate for policy in (kept, small, cold)]
    assert rates[0] > rates[1] > rates[2] > 0  # a batch shares its own chunks even uncached
    assert small.prefix_cache.used <= 0.2 * 2**20 < kept.prefix_cache.used


def test_chunks_end_after_each_turn_opener() -> None:
    opener = (7, 8)
    prompt = [1, 2, 7, 8, 3, 4, 5, 7, 8] + [6] * 300 + [7, 8]
    assert chunk_ends(prompt, opener) == [4, 9, 9 + PREFILL_CHUNK, 9 + 2 * PREFILL_CHUNK, len(prompt)]
    assert chunk_ends(prompt) == [PREFILL_CHUNK, 2 * PREFILL_CHUNK, len(prompt)]  # no opener: a grid


def test_a_trajectorys_next_prompt_prefills_only_its_new_step(tmp_path: Path, tiny: Policy) -> None:
    """Real agent prompts of one trajectory: each ends with the turn opener, and the next prompt
    starts with the whole of it, so its prefill computes only the tokens after it."""
    trajectory = make_trajectory("long", "train", numbered_steps("long", 6))
    with Store(tmp_path / "s.duckdb") as store:
        ids, _ = steps.record(store, Collected.of([trajectory], []))
        states = load_states(store, ids, store.state_ids(ids), 16_000)
    prompts = [agent_prompt(state, tiny.tokenizer) for state in states]
    assert tiny.opener and all(tuple(p[-len(tiny.opener) :]) == tiny.opener for p in prompts)
    assert all(later[: len(earlier)] == earlier for earlier, later in zip(prompts, prompts[1:], strict=False))
    params = BuildConfig(k=2, seed=0, max_new_tokens=3).sampling
    policy = dataclasses.replace(tiny, prefix_cache=PrefixCache())
    sample_prompts(policy, prompts[:4], params, [1, 2, 3, 4])
    fed, hook = _lengths_fed(tiny)
    try:
        sample_prompts(policy, prompts[4:5], params, [5])
    finally:
        hook.remove()
    assert [n for n in fed if n > 1] == [len(prompts[4]) - len(prompts[3])]


def test_least_recently_used_chunks_leave_first() -> None:
    cache = PrefixCache(budget_mb=1)
    chunk = Chunk([(torch.zeros(2**16), torch.zeros(2**16))], torch.zeros(0))  # 0.5 MB
    cache.put(b"a", chunk)
    cache.put(b"b", chunk)
    assert cache.get(b"a") is chunk  # a is now the most recent
    cache.put(b"c", chunk)
    cache.trim()
    assert list(cache.chunks) == [b"a", b"c"] and cache.used == 2**20
    assert cache.get(b"b") is None


def test_nucleus_is_generates_rule() -> None:
    torch.manual_seed(0)
    scores = torch.randn(6, 50) * 3
    for temperature, top_p in ((1.0, 0.95), (0.7, 0.5), (1.3, 1.0), (1.0, 0.01)):
        warped = TopPLogitsWarper(top_p)(None, TemperatureLogitsWarper(temperature)(None, scores))
        assert torch.allclose(nucleus(scores, temperature, top_p), warped.softmax(dim=-1))


def test_token_batches_fit_the_budget() -> None:
    lengths = [900, 100, 500, 120, 3000, 480]
    groups = token_batches(lengths, k=4, max_new_tokens=24, budget=8192)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    assert groups[-1] == [4]  # too long for the budget on its own: a pass of its own
    for group in groups[:-1]:
        assert len(group) * 4 * (max(lengths[i] for i in group) + 24) <= 8192
    assert [lengths[i] for g in groups for i in g] == sorted(lengths)  # by length: little padding
