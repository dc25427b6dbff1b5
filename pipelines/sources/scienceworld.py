"""Live expert trajectories: the ScienceWorld engine's own gold paths, replayed and kept only if they win.

Spec: `scienceworld:TASKS[@VARIATIONS]`
  TASKS       comma-separated engine task names, or `all`.
  VARIATIONS  comma-separated items: `N`, `N-M` (absolute variation ids, inclusive), or `train:N`,
              `dev:N`, `test:N` (the first N variations of that engine split). Default `train:1`.

Gold paths are replayed with the raw server step (10-50 ms) rather than `env.step`, which recomputes
the valid actions, look and inventory on every call (0.25-0.8 s). A gold path is stored only when its
replay reaches score 100.

Determinism: the engine seeds its own Random with the variation, but keeps room contents in hash
sets of objects hashed by JVM identity (its objects override `equals`, not `hashCode`), and HotSpot
draws identity hashes from a per-thread random stream. So the world's object order, each tick's
processing order and the gold agent's search changed from one load to the next (find-animal
variation 0 focused on the butterfly, the dove or the blue jay) and with what ran earlier in the
JVM. `start` launches the JVM with every identity hash the same constant: set order then follows
insertion order, and a (task, variation) always gives the same world, gold path and observations
(tests/flows/test_live_determinism.py).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import scienceworld.scienceworld as engine
from py4j.protocol import Py4JError
from scienceworld import ScienceWorldEnv
from scienceworld.constants import ID2TASK
from tqdm import tqdm

from actforge.pipelines.sources.base import SCIENCEWORLD, Collected, quarantine
from actforge.pipelines.sources.live import Episode, LiveEngine, Progress, scene_of
from actforge.pipelines.sources.selectors import Selector, parse_selectors, split_of, variation_ids
from actforge.schemas import Quarantined, Step, Trajectory
from actforge.schemas.ids import episode_id
from actforge.schemas.vocab import SCIENCEWORLD as SCIENCEWORLD_ENVIRONMENT

PREFIX = SCIENCEWORLD
ENVIRONMENT = SCIENCEWORLD_ENVIRONMENT
SIMPLIFICATION = "easy"  # the setting ETO and AgentGym used
DEFAULT_VARIATIONS = "train:1"
TASK_NAMES: tuple[str, ...] = tuple(ID2TASK.values())
# HotSpot's options for constant identity hashes (see the module docstring).
DETERMINISTIC_JAVA_OPTIONS = ("-XX:+UnlockExperimentalVMOptions", "-XX:hashCode=2")
_LAUNCH = threading.Lock()  # `start` swaps the engine module's launcher for the length of one launch


@dataclass(frozen=True)
class Request:
    """A parsed spec: which tasks, and which of each task's variations."""

    tasks: tuple[str, ...]
    selectors: tuple[Selector, ...]


def parse_spec(spec: str) -> Request:
    """Parse `scienceworld:TASKS[@VARIATIONS]`; a bad spec is a user error, so it raises ValueError."""
    if not spec.startswith(PREFIX):
        raise ValueError(f"not a ScienceWorld spec (expected {PREFIX}TASKS[@VARIATIONS]): {spec!r}")
    tasks_text, _, variations_text = spec[len(PREFIX) :].partition("@")
    return Request(_parse_tasks(tasks_text), parse_selectors(variations_text or DEFAULT_VARIATIONS))


def _parse_tasks(text: str) -> tuple[str, ...]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise ValueError(f"no ScienceWorld task named; valid names: all, {', '.join(TASK_NAMES)}")
    if "all" in names:
        return TASK_NAMES
    unknown = [name for name in names if name not in TASK_NAMES]
    if unknown:
        raise ValueError(f"unknown ScienceWorld task(s) {unknown}; valid names: all, {', '.join(TASK_NAMES)}")
    return tuple(dict.fromkeys(names))


def collect_scienceworld(spec: str, progress: bool = True) -> Collected:
    """Replay the gold path of every requested (task, variation) in one JVM; keep the winning ones."""
    request = parse_spec(spec)
    trajectories: list[Trajectory] = []
    quarantined: list[Quarantined] = []
    env = start()
    try:
        units = _units(env, spec, request, quarantined)
        bar = tqdm(units, desc="scienceworld", unit="variation", disable=not progress)
        for task, variation, splits in bar:
            record = _collect_unit(env, spec, task, variation, split_of(variation, splits))
            (trajectories if isinstance(record, Trajectory) else quarantined).append(record)
            bar.set_postfix(kept=len(trajectories), quarantined=len(quarantined))
    finally:
        env.close()
    return Collected.of(trajectories, quarantined)


def start() -> ScienceWorldEnv:
    """One engine (one JVM) whose worlds and gold paths depend only on (task, variation).

    `ScienceWorldEnv` takes no JVM options, so its module's `launch_gateway` is wrapped for the one
    launch; a JVM that is not HotSpot ignores the options, which the check below turns into an error.
    """
    with _LAUNCH:
        launch = engine.launch_gateway

        def deterministic_launch(*args: Any, **kwargs: Any) -> Any:
            options = [*(kwargs.pop("javaopts", None) or []), *DETERMINISTIC_JAVA_OPTIONS]
            return launch(*args, javaopts=options, **kwargs)

        engine.launch_gateway = deterministic_launch
        try:
            env = ScienceWorldEnv()
        finally:
            engine.launch_gateway = launch
    system = env._gateway.jvm.java.lang.System
    objects = env._gateway.jvm.java.lang.Object(), env._gateway.jvm.java.lang.Object()
    if {system.identityHashCode(o) for o in objects} != {1}:
        env.close()
        raise RuntimeError(
            f"the JVM ignored {' '.join(DETERMINISTIC_JAVA_OPTIONS)} (not HotSpot?): ScienceWorld's gold "
            "paths would change from one load to the next; use an OpenJDK (HotSpot) Java 17+"
        )
    return env


def _units(
    env: ScienceWorldEnv, spec: str, request: Request, quarantined: list[Quarantined]
) -> list[tuple[str, int, Mapping[str, Sequence[int]]]]:
    """(task, variation, the task's split lists) of every episode the spec names."""
    units: list[tuple[str, int, Mapping[str, Sequence[int]]]] = []
    for task in request.tasks:
        splits = _task_splits(env, spec, task)
        if isinstance(splits, Quarantined):
            quarantined.append(splits)
        else:
            units.extend((task, v, splits) for v in variation_ids(request.selectors, splits))
    return units


class ScienceWorldEngine(LiveEngine):
    """ScienceWorld through its raw server step (as collection replays gold paths)."""

    environment = ENVIRONMENT
    REFUSED = "No known action matches that input"  # answered before the world is touched
    REJECTIONS = (REFUSED, "Ambiguous request")

    def __init__(self, spec: str) -> None:
        super().__init__(spec)
        self.env = start()
        units = _units(self.env, spec, parse_spec(spec), self.unloadable)
        self._episodes = {
            _episode_id(task, v): Episode(_episode_id(task, v), task, v, split_of(v, splits))
            for task, v, splits in units
        }
        self._loaded: Episode | None = None
        self._instruction = ""

    def episodes(self) -> list[Episode]:
        return list(self._episodes.values())

    def reset(self, trajectory_id: str) -> tuple[str, str]:
        """As `env.reset` does (its first observation is `look around`); a task loads only when the
        episode changes."""
        episode = self._episodes[trajectory_id]
        if self._loaded != episode:
            self.env.load(episode.task, episode.variation, SIMPLIFICATION)
            self._instruction = self.env.get_task_description()
            self._loaded = episode
        self.env.server.reset()
        return self._instruction, self.env.server.step("look around")

    def step(self, action: str) -> str:
        return self.env.server.step(action)

    def progress(self) -> Progress:
        """A failed task scores -1.0 and completion means every subgoal reached; an engine error
        state reports -1.0 and completed together, so a negative score is a loss whatever the flag."""
        score, completed = self.env.server.getScore(), bool(self.env.server.getCompleted())
        return Progress(score=score, won=completed and score >= 0, lost=score < 0)

    def scene(self) -> tuple[str, ...]:
        return scene_of(self.env.look(), self.env.inventory())

    def accepted(self, action: str, answer: str) -> bool:
        return not answer.startswith(self.REJECTIONS)

    def unchanged(self, action: str, answer: str) -> bool:
        """The parser's "no known action" answer comes before the agent acts or the world ticks
        (scienceworld 1.2.3: `InputParser.parse` returns it, `AgentInterface.step` then returns
        early); "Ambiguous request" does change the state: the engine waits for a choice."""
        return answer.startswith(self.REFUSED)

    def close(self) -> None:
        self.env.close()


def _episode_id(task: str, variation: int) -> str:
    return episode_id(ENVIRONMENT, task, {"variation": variation, "simplification": SIMPLIFICATION})


def _task_splits(env: ScienceWorldEnv, spec: str, task: str) -> dict[str, tuple[int, ...]] | Quarantined:
    """The engine's train/dev/test variation lists, which it serves only for the loaded task.

    Their union is every valid variation id; the engine itself loads an out-of-range id silently
    (as task "unknown"), so these lists are also what rejects such ids.
    """
    try:
        env.load(task, 0, SIMPLIFICATION)
        return {
            "train": tuple(env.get_variations_train()),
            "dev": tuple(env.get_variations_dev()),
            "test": tuple(env.get_variations_test()),
        }
    except Py4JError as exc:
        return quarantine(spec, task, "engine_error", _describe(exc), json.dumps({"task": task}))


def _collect_unit(
    env: ScienceWorldEnv, spec: str, task: str, variation: int, split: str | None
) -> Trajectory | Quarantined:
    position = f"{task}@{variation}"
    if split is None:
        detail = f"variation {variation} is in none of the engine's split lists for {task}"
        return quarantine(spec, position, "no_such_variation", detail, _raw(task, variation))
    gold: list[str] = []
    try:
        env.load(task, variation, SIMPLIFICATION, generateGoldPath=True)
        instruction = env.get_task_description()
        gold = env.get_gold_action_sequence()
        steps, final_observation, score = _replay(env, gold)
    except Py4JError as exc:
        return quarantine(spec, position, "engine_error", _describe(exc), _raw(task, variation, gold))
    if score != 100:
        detail = f"gold path of {len(gold)} actions ended at score {score}, not 100"
        return quarantine(spec, position, "replay_failed", detail, _raw(task, variation, gold))
    return Trajectory(
        trajectory_id=_episode_id(task, variation),
        source=spec,
        task=task,
        environment=ENVIRONMENT,
        split=split,
        instruction=instruction,
        steps=steps,
        final_observation=final_observation,
        success=True,
        reward=score / 100,
    )


def _replay(env: ScienceWorldEnv, actions: Sequence[str]) -> tuple[tuple[Step, ...], str, int]:
    """Reset as `env.reset` does (its first observation is `look around`) and replay via the raw step.

    Returns the steps (observation before each action), the last observation and the 0-100 score.
    """
    env.server.reset()
    observation = env.server.step("look around")
    steps: list[Step] = []
    for action in actions:
        steps.append(Step(observation=observation, action=action))
        observation = env.server.step(action)
    return tuple(steps), observation, int(round(100 * env.server.getScore()))


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


def _raw(task: str, variation: int, gold: Sequence[str] = ()) -> str:
    return json.dumps({"task": task, "variation": variation, "gold": list(gold)}, ensure_ascii=False)
