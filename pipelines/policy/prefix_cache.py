"""Prefilled KV chunks kept across sampling batches, keyed by the token content of their prefix.

A trajectory's consecutive states share everything but the newest step, and every prompt of an
environment shares its instructions, but a batch holds only a few states. Prompts are prefilled in
fixed-size chunks, so a chunk's keys and values depend only on the tokens up to its end: kept under
a digest of those tokens, a chunk computed for one batch is reused by any later prompt that starts
the same way, and the result is the same tensors an uncached prefill makes. Least recently used
chunks leave first once the memory budget is spent.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

DEFAULT_CACHE_MB = 512  # about 90 chunks of 128 tokens of SmolLM2-135M: a batch's prompts, twice over


@dataclass
class Chunk:
    """One chunk's keys and values per layer (its tokens only) and the logits after its last token."""

    layers: list[tuple[torch.Tensor, torch.Tensor]]
    logits: torch.Tensor

    @property
    def nbytes(self) -> int:
        tensors = [t for pair in self.layers for t in pair] + [self.logits]
        return sum(t.numel() * t.element_size() for t in tensors)


def chunk_keys(prompt: list[int], ends: list[int]) -> list[bytes]:
    """For each chunk end, a digest of the prompt's tokens up to it (chained, so linear in length)."""
    keys, digest, start = [], b"", 0
    for end in ends:
        digest = hashlib.blake2b(digest + str(prompt[start:end]).encode(), digest_size=16).digest()
        keys.append(digest)
        start = end
    return keys


@dataclass
class PrefixCache:
    """Chunks by prefix digest, least recently used first out beyond `budget_mb` megabytes
    (0 keeps nothing past the batch that made it). Counts prompt tokens reused and computed."""

    budget_mb: float = DEFAULT_CACHE_MB
    chunks: OrderedDict[bytes, Chunk] = field(default_factory=OrderedDict)
    used: int = 0
    reused_tokens: int = 0
    computed_tokens: int = 0

    def get(self, key: bytes) -> Chunk | None:
        chunk = self.chunks.get(key)
        if chunk is not None:
            self.chunks.move_to_end(key)
        return chunk

    def put(self, key: bytes, chunk: Chunk) -> None:
        if key not in self.chunks:
            self.chunks[key] = chunk
            self.used += chunk.nbytes

    def trim(self) -> None:
        """Drop least recently used chunks until the budget holds (after each batch's prefill, so
        a batch always reuses its own shared chunks)."""
        while self.used > self.budget_mb * 2**20 and self.chunks:
            self.used -= self.chunks.popitem(last=False)[1].nbytes

    @property
    def hit_rate(self) -> float:
        """Share of prompt tokens served from the cache."""
        total = self.reused_tokens + self.computed_tokens
        return self.reused_tokens / total if total else 0.0
