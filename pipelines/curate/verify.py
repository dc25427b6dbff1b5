"""Verified alternatives: what a sampled action really does in the live engine, beside the expert's.

A pair says only that its alternative differs from the expert's action. For a live source the
engine can say more. Each action tried is taken in the pair's state, and its outcome is one of:

  invalid     the engine rejects it or does not understand it
  fails_task  the task is lost, or the score falls
  progresses  the score rises
  no_effect   valid, but nothing changed (the room and the inventory read the same)
  neutral     valid, changed something, no score change

The expert's own action in that state is verified the same way, as the reference.

Neither engine can copy or restore a game state: their gateways have no such call, their worlds
are not Serializable, and TextWorld Express's Python `clone()` starts a new JVM and replays every
action. An engine reaches a state only by a reset and the expert's earlier actions. So each
trajectory is walked once along its expert path: in each state the other actions are tried first,
then the expert's own, which is the walk's next step. An action that leaves the expert path sends
the engine back (reset and replay) unless the engine says it left the episode untouched
(`LiveEngine.unchanged`: ScienceWorld's parser refusals), so no action costs more than the reset
and replay each one took before (`verify_each`, kept as the reference). A pool of engines, each
its own JVM, walks other trajectories, or other parts of a long one, at the same time.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pyarrow as pa

from actforge.pipelines.sources.live import LiveEngine
from actforge.pipelines.sources.registry import engine_for
from actforge.schemas import VERIFICATION_SCHEMA
from actforge.schemas.ids import content_hash
from actforge.schemas.vocab import FAILS_TASK, INVALID, NEUTRAL, NO_EFFECT, PROGRESSES

POOL = 0  # more engines per batch: each a JVM that warms up on its own, worth it on idle cores only

Tried = tuple[str, int, str]  # (trajectory id, step index, action)


@dataclass(frozen=True)
class Effect:
    """What one action did, as the engine reports it (scores on the 0-1 scale)."""

    valid: bool
    failed: bool
    changed: bool
    score_before: float
    score_after: float
    observation: str

    @property
    def outcome(self) -> str:
        if not self.valid:
            return INVALID
        if self.failed or self.score_after < self.score_before:
            return FAILS_TASK
        if self.score_after > self.score_before:
            return PROGRESSES
        return NEUTRAL if self.changed else NO_EFFECT


@dataclass(frozen=True)
class Walk:
    """One engine's job: follow a trajectory's expert `path` and, in each state of `todo` (step
    index, actions; by step), try the actions listed there."""

    trajectory_id: str
    path: tuple[str, ...]
    todo: tuple[tuple[int, tuple[str, ...]], ...]

    @property
    def work(self) -> int:
        """About the steps replayed if every action left the path: what a cut balances."""
        return sum(index * len(actions) for index, actions in self.todo) + self.todo[-1][0]


def verification_id(state_id: str, action: str) -> str:
    return content_hash("verification", [state_id, action])


def take(engine: LiveEngine, action: str) -> Effect:
    """Take `action` in the engine's current state and say what it did."""
    before, scene = engine.progress(), engine.scene()
    answer = engine.step(action)
    after = engine.progress()
    return Effect(
        valid=engine.accepted(action, answer),
        failed=after.lost,
        changed=engine.scene() != scene,
        score_before=before.score,
        score_after=after.score,
        observation=answer,
    )


def effect(engine: LiveEngine, trajectory_id: str, prefix: Sequence[str], action: str) -> Effect:
    """Put the engine into the state after `prefix` of the episode, then take `action`."""
    engine.reset(trajectory_id)
    for step in prefix:
        engine.step(step)
    return take(engine, action)


def walk(engine: LiveEngine, job: Walk) -> dict[Tried, Effect]:
    """Each action of `job` tried in its state, on one engine that follows the expert path and goes
    back (reset and replay) only after an action that took it off the path."""
    found: dict[Tried, Effect] = {}
    position: int | None = None  # the state the engine is in; None: off the expert path
    for index, actions in job.todo:
        expert = job.path[index] if index < len(job.path) else None
        for action in sorted(actions, key=lambda a: a == expert):  # the expert's own action last
            position = _reach(engine, job, position, index)
            result = found[(job.trajectory_id, index, action)] = take(engine, action)
            if action == expert:
                position = index + 1
            elif not engine.unchanged(action, result.observation):
                position = None
    return found


def _reach(engine: LiveEngine, job: Walk, position: int | None, index: int) -> int:
    """Bring the engine into state `index`: on along the path, or reset and replay when it is off
    the path or past that state."""
    if position is None or position > index:
        engine.reset(job.trajectory_id)
        position = 0
    for action in job.path[position:index]:
        engine.step(action)
    return index


def plan(items: Iterable[Tried], prefixes: dict[str, list[str]], engines: int = 1) -> list[Walk]:
    """One walk per trajectory; while there are fewer walks than `engines`, the one with the most
    work is cut in two (the second half starts with a replay). Longest first."""
    states: dict[str, dict[int, list[str]]] = {}
    for trajectory_id, index, action in sorted(set(items)):
        states.setdefault(trajectory_id, {}).setdefault(index, []).append(action)
    jobs = [
        Walk(t, tuple(prefixes[t]), tuple((i, tuple(actions)) for i, actions in todo.items()))
        for t, todo in states.items()
    ]
    while 0 < len(jobs) < engines:
        longest = max(jobs, key=lambda job: job.work)
        if len(longest.todo) < 2:
            break
        jobs.remove(longest)
        jobs += _halves(longest)
    return sorted(jobs, key=lambda job: job.work, reverse=True)


def _halves(job: Walk) -> list[Walk]:
    """`job` cut after the state where half of its work is done."""
    done, cut = 0, 1
    while cut < len(job.todo) - 1:
        index, actions = job.todo[cut - 1]
        done += index * len(actions)
        if 2 * done >= job.work:
            break
        cut += 1
    return [Walk(job.trajectory_id, job.path, part) for part in (job.todo[:cut], job.todo[cut:])]


def run(spec: str, jobs: list[Walk], engines: int) -> dict[Tried, Effect]:
    """Do `jobs` in order on up to `engines` engines of `spec`, each in its own thread (its JVM steps
    while Python waits on the socket); the first failure stops the others and is raised."""
    queue, lock = deque(jobs), threading.Lock()
    found: dict[Tried, Effect] = {}

    def next_job() -> Walk | None:
        with lock:
            return queue.popleft() if queue else None

    def work() -> None:
        try:
            with engine_for(spec) as engine:
                while job := next_job():
                    found.update(walk(engine, job))
        except BaseException:
            with lock:
                queue.clear()
            raise

    count = max(1, min(engines, len(jobs)))
    with ThreadPoolExecutor(count, thread_name_prefix="verify") as pool:
        for future in [pool.submit(work) for _ in range(count)]:
            future.result()
    return found


def verify(spec: str, items: pa.Table, prefixes: dict[str, list[str]], pool: int = POOL) -> pa.Table:
    """VERIFICATION_SCHEMA rows for `items` (state_id, trajectory_id, step_index, action) of one
    source, in their order; `prefixes` holds each trajectory's expert actions; up to `pool` engines
    beside the first share the walks."""
    rows = items.to_pylist()
    tried = [(row["trajectory_id"], row["step_index"], row["action"]) for row in rows]
    found = run(spec, plan(tried, prefixes, 1 + pool), 1 + pool) if rows else {}
    return _table(rows, [found[key] for key in tried])


def verify_each(spec: str, items: pa.Table, prefixes: dict[str, list[str]]) -> pa.Table:
    """The reference `verify`: one engine, a reset and a replay of the expert prefix per item (how
    every item was verified before the walks); the tests and `benchmarks/verify.py` compare."""
    rows = items.to_pylist()
    with engine_for(spec) as engine:
        results = [
            effect(
                engine,
                row["trajectory_id"],
                prefixes[row["trajectory_id"]][: row["step_index"]],
                row["action"],
            )
            for row in rows
        ]
    return _table(rows, results)


def _table(items: list[dict], results: list[Effect]) -> pa.Table:
    rows = [
        {
            "verification_id": verification_id(item["state_id"], item["action"]),
            "state_id": item["state_id"],
            "action": item["action"],
            "outcome": result.outcome,
            "score_delta": round(result.score_after - result.score_before, 6),
            "outcome_observation": result.observation,
        }
        for item, result in zip(items, results, strict=True)
    ]
    return pa.Table.from_pylist(rows, schema=VERIFICATION_SCHEMA)
