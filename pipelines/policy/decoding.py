"""Batched local sampling: several states per forward pass, K continuations each, a prompt's leading
chunks prefilled once per build (`prefix_cache`).

A decode loop of our own rather than `generate`, because `generate` draws every row from torch's one
global RNG, so a state's samples would depend on which states share its batch. Here each state draws
from its own generator, seeded per state, and only while one of its rows still decodes: its samples
depend on that state alone. The sampling rule is `generate`'s: temperature, then nucleus (top-p)
filtering; a row ends with the token that emits a newline, at end of sequence, or at the token limit.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from actforge.pipelines.policy.prefix_cache import Chunk, PrefixCache, chunk_keys

if TYPE_CHECKING:  # torch loads with the model (see pipelines.policy.models)
    import torch
    from transformers import DynamicCache, PreTrainedModel, PreTrainedTokenizerBase

    from actforge.pipelines.policy.params import SamplingParams


class LocalModel(Protocol):
    """What decoding needs of a local policy (`policy.models.Policy`): the model, its tokenizer, the
    chunks its earlier prompts prefilled, and the tokens after which a prefill chunk ends."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    prefix_cache: PrefixCache
    opener: tuple[int, ...]


# One forward pass holds at most this many rows × (prompt + new) tokens: the build's default batch
# (8 states, K=4, full 1024-token prompts) in one pass.
DECODE_TOKENS = 8 * 4 * (1024 + 128)
PREFILL_CHUNK = 128  # a prefill chunk holds at most this many tokens (`chunk_ends`)
_STOPS: weakref.WeakKeyDictionary[object, torch.Tensor] = weakref.WeakKeyDictionary()


def token_batches(
    lengths: Sequence[int], k: int, max_new_tokens: int, budget: int = DECODE_TOKENS
) -> list[list[int]]:
    """Indices of prompts grouped so that a group's K rows per prompt, padded to its longest prompt
    plus the new tokens, fit the budget. Sorted by length first, so little is padding; a prompt too
    long for the budget on its own still gets a group."""
    groups: list[list[int]] = []
    for index in sorted(range(len(lengths)), key=lambda i: (lengths[i], i)):
        group = groups[-1] if groups else []
        if group and (len(group) + 1) * k * (lengths[index] + max_new_tokens) <= budget:
            group.append(index)
        else:
            groups.append([index])
    return groups


def sample_prompts(
    policy: LocalModel,
    prompts: Sequence[list[int]],
    params: SamplingParams,
    seeds: Sequence[int],
    budget: int = DECODE_TOKENS,
) -> list[list[str]]:
    """K sampled continuations per prompt, decoded in batches of at most `budget` tokens; prompt i
    draws from seeds[i] alone."""
    texts: list[list[str]] = [[] for _ in prompts]
    stops = _stop_tokens(policy)
    for group in token_batches([len(p) for p in prompts], params.k, params.max_new_tokens, budget):
        decoded = _decode(policy, [prompts[i] for i in group], params, [seeds[i] for i in group], stops)
        for index, rows in zip(group, decoded, strict=True):
            texts[index] = rows
    return texts


def _decode(
    policy: LocalModel,
    prompts: list[list[int]],
    params: SamplingParams,
    seeds: list[int],
    stops: torch.Tensor,
) -> list[list[str]]:
    """Prefill each prompt on its own (no compute spent on padding), join the caches left-padded,
    then decode all K rows of every prompt together; rows that ended leave the batch."""
    import torch

    model, tokenizer, k = policy.model, policy.tokenizer, params.k
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    rows = len(prompts) * k
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    owner = torch.arange(len(prompts)).repeat_interleave(k)  # the prompt each row samples for
    new = torch.full((rows, params.max_new_tokens), pad, dtype=torch.long)
    lengths = torch.full((rows,), params.max_new_tokens, dtype=torch.long)
    with torch.no_grad():
        cache, scores, mask = _prefill(model, prompts, policy.prefix_cache, policy.opener)
        cache.layers = [_growing_layer()(layer, k, params.max_new_tokens) for layer in cache.layers]
        scores, mask = scores.repeat_interleave(k, 0), mask.repeat_interleave(k, 0)
        position = torch.tensor([len(p) for p in prompts]).repeat_interleave(k)[:, None]
        active = torch.arange(rows)  # rows in the batch (ended ones leave it once they are a quarter)
        live = torch.ones(rows, dtype=torch.bool)  # of those, the rows still decoding
        for step in range(params.max_new_tokens):
            token = torch.full((len(active),), pad, dtype=torch.long)
            token[live] = _draw(scores[live], params, generators, owner[active[live]])
            new[active[live], step] = token[live]
            ending = live & stops[token]
            lengths[active[ending]] = step + 1
            live &= ~ending
            if not bool(live.any()) or step + 1 == params.max_new_tokens:
                break
            if 4 * int((~live).sum()) >= len(active):
                keep = live.nonzero().squeeze(1)
                cache.batch_select_indices(keep)
                active, live, token = active[keep], live[keep], token[keep]
                mask, position = mask[keep], position[keep]
            mask = torch.cat([mask, torch.ones((len(active), 1), dtype=mask.dtype)], dim=1)
            out = model(input_ids=token[:, None], attention_mask=mask, position_ids=position, cache=cache)
            position = position + 1
            scores = out.logits[:, -1]
    decoded = [tokenizer.decode(new[row, : lengths[row]], skip_special_tokens=True) for row in range(rows)]
    return [decoded[start : start + k] for start in range(0, rows, k)]


def _prefill(
    model: PreTrainedModel, prompts: list[list[int]], chunks: PrefixCache, opener: tuple[int, ...]
) -> tuple[DynamicCache, torch.Tensor, torch.Tensor]:
    """Each prompt's cache, built chunk by chunk; the caches joined left-padded, the last
    position's logits, and the attention mask that hides the padding.

    A prompt is always cut into chunks the same way (`chunk_ends`), so a chunk's result depends on
    the prompt's tokens up to its end alone: the leading chunks any earlier prompt computed (in this
    batch or an earlier one: `chunks`) are copied, not computed again.
    """
    import torch
    from transformers import DynamicCache

    caches, logits = [], []
    for prompt in prompts:
        ends = chunk_ends(prompt, opener)
        keys = chunk_keys(prompt, ends)
        found = []
        for key in keys:
            if (chunk := chunks.get(key)) is None:
                break
            found.append(chunk)
        cache, start = DynamicCache(config=model.config), ends[len(found) - 1] if found else 0
        if found:
            for index in range(len(found[0].layers)):
                keys_ = torch.cat([chunk.layers[index][0] for chunk in found], dim=-2)
                values = torch.cat([chunk.layers[index][1] for chunk in found], dim=-2)
                cache.update(keys_, values, index)
        last = found[-1].logits if found else None
        chunks.reused_tokens += start
        chunks.computed_tokens += len(prompt) - start
        for end, key in zip(ends[len(found) :], keys[len(found) :], strict=True):
            out = model(input_ids=torch.tensor([prompt[start:end]]), cache=cache, logits_to_keep=1)
            last = out.logits[:, -1]
            layers = [
                (layer.keys[..., start:end, :].clone(), layer.values[..., start:end, :].clone())
                for layer in cache.layers
            ]
            chunks.put(key, Chunk(layers, last))
            start = end
        caches.append(cache)
        logits.append(last)
    chunks.trim()
    width = max(len(p) for p in prompts)
    joined = DynamicCache(config=model.config)
    for index in range(len(caches[0].layers)):
        layers = [c.layers[index] for c in caches]
        keys = torch.cat([_left_pad(layer.keys, width) for layer in layers])
        values = torch.cat([_left_pad(layer.values, width) for layer in layers])
        joined.update(keys, values, index)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        mask[row, width - len(prompt) :] = 1
    return joined, torch.cat(logits), mask


def chunk_ends(prompt: list[int], opener: tuple[int, ...] = ()) -> list[int]:
    """Where a prompt's prefill chunks end: after each `opener` (the agent turn's opening tokens, so
    a trajectory's next prompt reuses every chunk of the last one, which ends with its opener), at
    most PREFILL_CHUNK tokens after the last end, and at the end. A function of the prompt alone, so
    cached and uncached prefills compute the same chunks."""
    ends, start, width = [], 0, len(opener)
    for index in range(1, len(prompt)):
        if index - start == PREFILL_CHUNK or (
            width and index >= width and tuple(prompt[index - width : index]) == opener
        ):
            ends.append(index)
            start = index
    return [*ends, len(prompt)]


@functools.cache
def _growing_layer() -> type:
    """A cache layer with room for the new tokens (transformers loads only with a model): a decode
    step writes its position in place, where `DynamicLayer` copies the whole cache to append one."""
    from transformers.cache_utils import DynamicLayer

    class GrowingLayer(DynamicLayer):
        def __init__(self, layer: DynamicLayer, repeats: int, room: int) -> None:
            super().__init__()
            self.device, self.is_initialized, self.length = layer.keys.device, True, layer.keys.shape[-2]
            self.buffers = [_with_room(t, repeats, room) for t in (layer.keys, layer.values)]
            self._view()

        def _view(self) -> None:
            self.keys, self.values = (buffer[..., : self.length, :] for buffer in self.buffers)

        def update(
            self, key_states: torch.Tensor, value_states: torch.Tensor, *args: object, **kwargs: object
        ):
            end = self.length + key_states.shape[-2]
            for buffer, states in zip(self.buffers, (key_states, value_states), strict=True):
                buffer[..., self.length : end, :] = states
            self.length = end
            self._view()
            return self.keys, self.values

        def get_seq_length(self) -> int:
            return self.length

        def batch_select_indices(self, indices: torch.Tensor) -> None:
            self.buffers = [buffer[indices, ...] for buffer in self.buffers]
            self._view()

    return GrowingLayer


def _with_room(tensor: torch.Tensor, repeats: int, room: int) -> torch.Tensor:
    """Each row `repeats` times in a row (as `repeat_interleave`), with `room` more positions; no
    repeated copy made on the way."""
    rows, heads, length, width = tensor.shape
    buffer = tensor.new_empty((rows * repeats, heads, length + room, width))
    buffer.view(rows, repeats, heads, length + room, width)[..., :length, :] = tensor[:, None]
    return buffer


def _left_pad(tensor: torch.Tensor, width: int) -> torch.Tensor:
    import torch.nn.functional as F

    return F.pad(tensor, (0, 0, width - tensor.shape[-2], 0))


def nucleus(scores: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """Sampling probabilities as `generate` makes them: temperature, then top-p (the smallest set of
    likeliest tokens whose mass reaches top_p; the likeliest token always stays)."""
    scores = scores / temperature
    ascending, order = scores.sort(descending=False)
    remove = ascending.softmax(dim=-1).cumsum(dim=-1) <= 1 - top_p
    remove[:, -1] = False
    return scores.masked_fill(remove.scatter(1, order, remove), float("-inf")).softmax(dim=-1)


def _draw(
    scores: torch.Tensor, params: SamplingParams, generators: list[torch.Generator], owner: torch.Tensor
) -> torch.Tensor:
    """One token per row, drawn from the generator of the row's prompt (so a prompt's draws never
    depend on the other rows in the batch)."""
    import torch

    probs = nucleus(scores, params.temperature, params.top_p)
    token = torch.empty(scores.shape[0], dtype=torch.long)
    for prompt in owner.unique().tolist():
        rows = (owner == prompt).nonzero().squeeze(1)
        token[rows] = torch.multinomial(probs[rows], 1, generator=generators[prompt]).squeeze(1)
    return token


def _stop_tokens(policy: LocalModel) -> torch.Tensor:
    """A mask over the vocabulary: tokens that end a sample (any that emits a newline, and EOS).
    Decoding the whole vocabulary takes most of a second, so it is done once per model."""
    import torch

    if policy.model in _STOPS:
        return _STOPS[policy.model]

    tokenizer = policy.tokenizer
    vocab = policy.model.get_output_embeddings().weight.shape[0]
    texts = tokenizer.batch_decode([[i] for i in range(vocab)])
    stops = torch.tensor(["\n" in text for text in texts], dtype=torch.bool)
    ends = policy.model.generation_config.eos_token_id
    for end in [tokenizer.eos_token_id, *(ends if isinstance(ends, list) else [ends])]:
        if end is not None:
            stops[end] = True
    _STOPS[policy.model] = stops
    return stops
