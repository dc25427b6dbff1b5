"""Content-hash ids: the same content gives the same id on every machine and library version.

Ids are sha256 over canonical JSON (sorted keys, no whitespace, UTF-8), never Python's `hash()`
or a database's hash function, whose values change between versions.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from actforge.schemas.records import Step


def content_hash(kind: str, payload: Any) -> str:
    """sha256 hex of `kind` and `payload` as canonical JSON."""
    text = json.dumps([kind, payload], sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _steps(steps: Sequence[Step]) -> list[list[str]]:
    return [[s.observation, s.action] for s in steps]


def trajectory_id(task: str, environment: str, instruction: str, steps: Sequence[Step]) -> str:
    """Id of a trajectory by its content (not its file or position), so copies dedup."""
    return content_hash("trajectory", [environment, task, instruction, _steps(steps)])


def episode_id(environment: str, task: str, episode: dict[str, Any]) -> str:
    """Id of a live-environment episode by what defines it (task, variation, settings).

    A live engine's text can vary between runs (ScienceWorld lists room contents in another order,
    or picks another gold path), so hashing its output would make every re-collection look new;
    the first collected version of an episode is kept in the store and reused.
    """
    return content_hash("episode", [environment, task, episode])


def state_id(trajectory: str, step_index: int) -> str:
    return content_hash("state", [trajectory, step_index])


def params_hash(params: dict[str, Any]) -> str:
    return content_hash("sampling", params)


def sample_id(state: str, policy: str, params_digest: str, sample_index: int) -> str:
    return content_hash("sample", [state, policy, params_digest, sample_index])


def pair_id(state: str, expert_action: str, normalised_alternative: str) -> str:
    """Id of a critique pair; the alternative is normalised so spelling variants are one pair."""
    return content_hash("pair", [state, expert_action, normalised_alternative])


def derive_seed(seed: int, *parts: str) -> int:
    """A 63-bit seed for one unit of work, independent of batch order or concurrency."""
    return int(content_hash("seed", [seed, *parts])[:15], 16)


def split_for(trajectory: str, validation: float = 0.1, test: float = 0.1) -> str:
    """Stable split for sources that name none: a trajectory never moves between splits."""
    u = int(content_hash("split", trajectory)[:8], 16) / 0xFFFFFFFF
    if u < test:
        return "test"
    if u < test + validation:
        return "validation"
    return "train"
