"""The variation grammar live sources share: which episodes of an engine's train/dev/test lists.

Items, comma-separated: `N`, `N-M` (absolute ids, inclusive), or `train:N`, `dev:N`, `test:N` (the
first N ids of that engine split). ScienceWorld calls them variations, TextWorld Express seeds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# Engine split name -> dataset split.
SPLIT_NAMES: dict[str, str] = {"train": "train", "dev": "validation", "test": "test"}


@dataclass(frozen=True)
class IdRange:
    """Absolute variation ids `first`..`last`, inclusive."""

    first: int
    last: int


@dataclass(frozen=True)
class SplitHead:
    """The first `count` variations of an engine split (`train`, `dev` or `test`)."""

    split: str
    count: int


Selector = IdRange | SplitHead


def parse_selectors(text: str) -> tuple[Selector, ...]:
    return tuple(_parse_selector(item.strip()) for item in text.split(","))


def _parse_selector(item: str) -> Selector:
    split, colon, count = item.partition(":")
    if colon:
        if split not in SPLIT_NAMES:
            raise ValueError(f"unknown split {split!r} in {item!r}; use train, dev or test")
        return SplitHead(split, _positive(count, item))
    first, dash, last = item.partition("-")
    if not dash:
        return IdRange(_id(item, item), _id(item, item))
    selector = IdRange(_id(first, item), _id(last, item))
    if selector.last < selector.first:
        raise ValueError(f"empty variation range {item!r}")
    return selector


def _id(text: str, item: str) -> int:
    if not text.strip().isdigit():
        raise ValueError(f"malformed variation item {item!r}: expected N, N-M or train:N/dev:N/test:N")
    return int(text)


def _positive(text: str, item: str) -> int:
    count = _id(text, item)
    if count == 0:
        raise ValueError(f"split selector {item!r} asks for no variations")
    return count


def variation_ids(selectors: Sequence[Selector], splits: Mapping[str, Sequence[int]]) -> list[int]:
    """The variation ids the selectors name for one task, in spec order, each once."""
    ids: list[int] = []
    for selector in selectors:
        if isinstance(selector, SplitHead):
            ids.extend(splits[selector.split][: selector.count])
        else:
            ids.extend(range(selector.first, selector.last + 1))
    return list(dict.fromkeys(ids))


def split_of(variation: int, splits: Mapping[str, Sequence[int]]) -> str | None:
    """Dataset split of a variation by the engine's own lists; None when no list holds it."""
    for engine_split, members in splits.items():
        if variation in members:
            return SPLIT_NAMES[engine_split]
    return None
