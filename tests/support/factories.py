"""Shared test factories: trajectories, collected sources, a store with pairs, a published dataset,
and the example project of the refresh tests.

A published dataset is built through the real code (sources' tables, the store's merge, pairs from
accepted samples, publish from the store); only the policy's samples are made up, so tests that
need a dataset do not run a model.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from actforge.pipelines import steps
from actforge.pipelines.config import BuildConfig
from actforge.pipelines.policy.params import SamplingParams
from actforge.pipelines.publish.dataset import publish
from actforge.pipelines.sources.base import Collected, quarantine
from actforge.pipelines.sources.registry import collect
from actforge.pipelines.store.database import Store
from actforge.pipelines.store.states import load_states
from actforge.schemas import Quarantined, Sample, State, Step, Trajectory
from actforge.schemas.ids import sample_id

ROOT = Path(__file__).resolve().parents[2]  # the repository, wherever a test module sits under tests/
EXAMPLES = ROOT / "data" / "examples"
LEGACY = ROOT / "tests" / "data" / "legacy-1.1"  # a store and dataset from before schema 2.0
HISTORY_CHARS = BuildConfig.history_chars  # the build's default budget

# --- trajectories ---------------------------------------------------------------------------------

# A spec of trajectories: name -> (split, number of steps). The name is also the trajectory id, so
# published rows come in name order. Here 20 train, 5 validation and 5 test states.
TRAJECTORIES = {"t0": ("train", 6), "t1": ("train", 7), "t2": ("train", 7), "t3": ("validation", 5)}
TRAJECTORIES |= {"t4": ("test", 3), "t5": ("test", 2)}
TrajectorySpec = Mapping[str, tuple[str, int]]


def numbered_steps(name: str, length: int, admissible: tuple[str, ...] | None = ("x",)) -> tuple[Step, ...]:
    return tuple(Step(f"{name} obs {i}", f"{name} act {i}", admissible) for i in range(length))


def make_trajectory(
    name: str,
    split: str,
    steps_: Sequence[Step],
    instruction: str | None = None,
    source: str = "scienceworld",
    task: str = "find-non-living-thing",
    environment: str = "scienceworld",
) -> Trajectory:
    """A trajectory whose id is `name` (readable, and it orders the published rows)."""
    return Trajectory(
        trajectory_id=name,
        source=source,
        task=task,
        environment=environment,
        split=split,
        instruction=f"do the {name} task" if instruction is None else instruction,
        steps=tuple(steps_),
    )


def trajectories_of(spec: TrajectorySpec | Sequence[Trajectory]) -> list[Trajectory]:
    """Trajectory records of a spec (numbered steps), or the records themselves."""
    if isinstance(spec, Mapping):
        return [make_trajectory(name, split, numbered_steps(name, n)) for name, (split, n) in spec.items()]
    return list(spec)


def trajectory_records(collected: Collected) -> list[Trajectory]:
    """The trajectories of a `Collected` as records again. Its steps table holds each trajectory's
    steps in order, one trajectory after the other (copies of one trajectory included)."""
    step_rows = collected.steps.to_pylist()
    records, start = [], 0
    for row in collected.trajectories.to_pylist():
        count = row.pop("num_steps")
        rows, start = step_rows[start : start + count], start + count
        assert [(r["trajectory_id"], r["step_index"]) for r in rows] == [
            (row["trajectory_id"], i) for i in range(count)
        ]
        steps_ = tuple(
            Step(r["observation"], r["action"], None if r["admissible"] is None else tuple(r["admissible"]))
            for r in rows
        )
        records.append(Trajectory(steps=steps_, **row))
    assert start == len(step_rows)
    return records


def quarantined_records(collected: Collected) -> list[Quarantined]:
    return [Quarantined(**row) for row in collected.quarantined.to_pylist()]


@dataclasses.dataclass(frozen=True)
class Records:
    """A `Collected` read back as records, for tests that check what sources parsed, record by record."""

    trajectories: list[Trajectory]
    quarantined: list[Quarantined]


def records_of(collected: Collected) -> Records:
    return Records(trajectory_records(collected), quarantined_records(collected))


# --- a store with pairs, and a published dataset ----------------------------------------------------


def other_action(state: State) -> list[str]:
    """One alternative per state, different from the expert's."""
    return [f"{state.trajectory_id} other {state.step_index}"]


def accepted_samples(
    states: Sequence[State], alternatives: Callable[[State], Sequence[str]] = other_action
) -> list[Sample]:
    """Accepted samples of these states, as a policy that wrote `alternatives(state)` would leave."""
    return [
        Sample(
            sample_id=sample_id(state.state_id, "policy", "params", index),
            state_id=state.state_id,
            policy="policy",
            params_hash="params",
            params="{}",
            seed=0,
            sample_index=index,
            raw_output=f"Action: {action}",
            action=action,
            verdict="accepted",
            reason="ok",
        )
        for state in states
        for index, action in enumerate(alternatives(state))
    ]


def add_pairs(
    store: Store,
    trajectories: TrajectorySpec | Sequence[Trajectory],
    alternatives: Callable[[State], Sequence[str]] = other_action,
    quarantined: Sequence[Quarantined] = (),
) -> list[str]:
    """Record the trajectories, give every state accepted samples and merge; returns the stored ids."""
    ids, _ = steps.record(store, Collected.of(trajectories_of(trajectories), quarantined))
    states = load_states(store, ids, steps.select(store, ids, None), HISTORY_CHARS)
    steps.store_batch(store, states, accepted_samples(states, alternatives))
    steps.finish(store)
    return ids


PROVENANCE = {
    "sources": ["scienceworld"],
    "policy": "SmolLM2-135M-Instruct",
    "k": 4,
    "seed": 7,
    "sampling": SamplingParams(k=4, temperature=1.0, top_p=0.95, max_new_tokens=16, seed=7).as_dict(),
    "filters": {"drop_equal_to_expert": True, "min_length": 2},
    "history_chars": HISTORY_CHARS,
    "license": "apache-2.0",
}
BAD_RECORD = quarantine("scienceworld", "line 3", "invalid_json", "Expecting value", "{oops")


def publish_pairs(
    out: Path,
    trajectories: TrajectorySpec | Sequence[Trajectory] = TRAJECTORIES,
    provenance: dict[str, Any] = PROVENANCE,
    alternatives: Callable[[State], Sequence[str]] = other_action,
    quarantined: Sequence[Quarantined] = (),
    history_chars: int = HISTORY_CHARS,
    **kwargs: Any,
) -> dict[str, Any]:
    """Publish these trajectories' pairs to `out` from a fresh store, with the store's counts as stats."""
    records = trajectories_of(trajectories)
    sources = {t.source for t in records} | {q.source for q in quarantined}
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "store.duckdb") as store:
        ids = add_pairs(store, records, alternatives, quarantined)
        stats = store.counts(ids, sources)
        return publish(store, out, ids, provenance, stats, history_chars, **kwargs)


def states_per_split(trajectories: TrajectorySpec) -> dict[str, int]:
    counts: dict[str, int] = {}
    for split, length in trajectories.values():
        counts[split] = counts.get(split, 0) + length
    return counts


# A small dataset for the commands that read one (eval, report): trajectory -> (split, steps,
# alternatives per state), 8 test pairs over 5 states and 3 train pairs. conftest's `dataset`.
SMALL_DATASET = {"t0": ("test", 3, 2), "t1": ("test", 2, 1), "t2": ("train", 3, 1)}


def publish_small_dataset(out: Path) -> Path:
    """SMALL_DATASET published to `out` (all configs), as ScienceWorld-like pairs."""
    trajectories = [
        make_trajectory(
            name,
            split,
            tuple(Step(f"This room is called room {i}.", f"go to room {i + 1}") for i in range(length)),
            f"Your task is to find a non-living thing ({name}).",
        )
        for name, (split, length, _k) in SMALL_DATASET.items()
    ]

    def alternatives(state: State) -> list[str]:
        return [f"look at thing {j}" for j in range(SMALL_DATASET[state.trajectory_id][2])]

    publish_pairs(out, trajectories, {"seed": 0}, alternatives)
    return out


# --- the refresh tests' project -------------------------------------------------------------------

# A trajectory appended to the project's native.jsonl: exactly 3 new states.
NEW = {
    "task": "heat",
    "environment": "scienceworld",
    "instruction": "Your task is to heat the soup.",
    "steps": [
        {
            "observation": "You are in the kitchen. You see a pot of soup and a stove.",
            "action": "move pot to stove",
        },
        {"observation": "The pot is on the stove.", "action": "activate stove"},
        {"observation": "The stove is on.", "action": "wait1"},
    ],
}


def make_project(tmp_path: Path, tiny_model_dir: Path) -> Path:
    """A project file: the example native and ETO files in `experts/`, the tiny model, k 3, seed 5."""
    experts = tmp_path / "experts"
    experts.mkdir()
    (experts / "native.jsonl").write_bytes((EXAMPLES / "native.jsonl").read_bytes())
    (experts / "eto.json").write_bytes((EXAMPLES / "eto_alfworld.json").read_bytes())
    config = tmp_path / "actforge.yaml"
    config.write_text(
        f"sources: [experts]\nout: out/ds\nstore: out/ds.duckdb\npolicy: {tiny_model_dir}\nk: 3\nseed: 5\n",
        encoding="utf-8",
    )
    return config


def append_new_trajectory(tmp_path: Path) -> None:
    with (tmp_path / "experts" / "native.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(NEW) + "\n")


def files_of(out: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under `out` with its bytes and modification time."""
    return {
        str(p.relative_to(out)): (p.read_bytes(), p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()
    }


def expert_paths(spec: str) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """A source's collected steps, by trajectory and step, and each trajectory's expert actions (the
    prefixes `--verify` replays)."""
    rows = sorted(
        collect(spec, progress=False).steps.to_pylist(), key=lambda s: (s["trajectory_id"], s["step_index"])
    )
    prefixes: dict[str, list[str]] = {}
    for row in rows:
        prefixes.setdefault(row["trajectory_id"], []).append(row["action"])
    return rows, prefixes
