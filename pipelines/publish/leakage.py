"""Split hygiene: prompts that appear in more than one split.

Splits are assigned per trajectory, but trajectories of one task often share states (the same
instruction and first observation), so a held-out pair can repeat a train pair's prompt word for
word. A state's prompt is its instruction, observation and published history window; a pair's is
that with its expert action and alternative. Both are counted; with `--leakage drop` the repeated
states (and so their pairs) leave validation and test, and stay in the store.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa

from actforge.pipelines.store.database import Store
from actforge.schemas.ids import content_hash
from actforge.schemas.vocab import TRAIN


@dataclass(frozen=True)
class Leakage:
    """Rows whose prompt appears in more than one split, and the held-out states that repeat one."""

    states: int
    pairs: int
    held_out_states: frozenset[str]
    held_out_pairs: int

    def stats(self, dropped: bool) -> dict[str, int]:
        counts = {"states_in_several_splits": self.states, "pairs_in_several_splits": self.pairs}
        if dropped:
            counts |= {"states_dropped": len(self.held_out_states), "pairs_dropped": self.held_out_pairs}
        return counts


def _state_key(row: dict) -> str:
    return content_hash("prompt", [row["instruction"], row["observation"], row["history"]])


def _repeated(keys: Iterable[tuple[str, str]]) -> set[str]:
    """The keys seen in more than one split."""
    splits: dict[str, set[str]] = {}
    for key, split in keys:
        splits.setdefault(key, set()).add(split)
    return {key for key, seen in splits.items() if len(seen) > 1}


def find_leakage(store: Store, trajectory_ids: list[str], history_chars: int) -> Leakage:
    """Count repeated prompts among the published states and pairs of these trajectories."""
    columns = ["state_id", "split", "instruction", "observation", "history"]
    states = store.published("states", trajectory_ids, None, history_chars).read_all().select(columns)
    state_rows = states.to_pylist()
    state_keys = {row["state_id"]: _state_key(row) for row in state_rows}
    leaked = _repeated((state_keys[row["state_id"]], row["split"]) for row in state_rows)
    pairs = store.published("pairs", trajectory_ids, None, history_chars).read_all()
    pair_rows = pairs.select(["state_id", "split", "expert_action", "alternative_action"]).to_pylist()

    def pair_key(row: dict) -> str:
        return content_hash(
            "pair-prompt", [state_keys[row["state_id"]], row["expert_action"], row["alternative_action"]]
        )

    repeated_pairs = _repeated((pair_key(row), row["split"]) for row in pair_rows)
    held_out = frozenset(
        row["state_id"]
        for row in state_rows
        if row["split"] != TRAIN and state_keys[row["state_id"]] in leaked
    )
    return Leakage(
        states=sum(state_keys[row["state_id"]] in leaked for row in state_rows),
        pairs=sum(pair_key(row) in repeated_pairs for row in pair_rows),
        held_out_states=held_out,
        held_out_pairs=sum(row["state_id"] in held_out for row in pair_rows),
    )


def without(batch: pa.RecordBatch, state_ids: frozenset[str]) -> pa.RecordBatch:
    """The batch less the rows of these states."""
    if not state_ids:
        return batch
    keep = pa.array([state not in state_ids for state in batch["state_id"].to_pylist()])
    return batch.filter(keep)
