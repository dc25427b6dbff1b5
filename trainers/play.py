"""Play ScienceWorld with a model: greedy actions in the real engine, scored per task (ACT Table 1).

Next-action accuracy only asks a model to act at expert states; playing asks it to finish a task
from its start, on its own actions, which is the mean score and success rate the ACT paper reports.
Each episode starts as an expert replay does (`pipelines.sources.scienceworld._replay`), is prompted
with the sampler's agent prompt, and acts through the raw server step (10-50 ms, where `env.step`
takes 0.25-0.8 s recomputing valid actions nobody reads here).

Scores are the engine's own 0-100 integers at the end of the episode. They start above 0 on some
tasks (8 on the find-* tasks after the opening look around), so an idle model need not score 0. The
engine scores a failed task (e.g. focusing on the wrong object) -100, and means include that as
is: papers that count a failure as 0 can be recomputed from the episodes. An episode ends at
success, at failure or after `max_steps` actions. Decoding is greedy, so a result depends only on
the model and the spec.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import chain
from statistics import fmean
from typing import Any

from scienceworld import ScienceWorldEnv
from tqdm.auto import tqdm

from actforge.pipelines.policy.models import Policy
from actforge.pipelines.sources.scienceworld import (
    ENVIRONMENT,
    SIMPLIFICATION,
    Request,
    _task_splits,
    parse_spec,
    start,
)
from actforge.pipelines.sources.selectors import split_of, variation_ids
from actforge.pipelines.text.actions import parse_action
from actforge.pipelines.text.prompts import ACTION_PREFIX, AGENT_PROMPT_TOKENS, agent_prompt
from actforge.schemas import Quarantined, State, Step
from actforge.trainers.evaluate import ACTION_TOKENS, generate_greedy

DEFAULT_MAX_STEPS = 30


def play(
    policy: Policy,
    spec: str,
    max_steps: int = DEFAULT_MAX_STEPS,
    max_prompt_tokens: int = AGENT_PROMPT_TOKENS,
    progress: bool = True,
) -> dict[str, Any]:
    """Play every (task, variation) of a `scienceworld:TASKS@VARIATIONS` spec in one JVM.

    The model stays on the device the caller put it on. Raises ValueError for a spec that is not
    ScienceWorld's or names a variation the engine does not have, before any episode is played.
    """
    if max_steps < 1:
        raise ValueError(f"max_steps must be at least 1, got {max_steps}")
    request = parse_spec(spec)
    env = start()
    try:
        units = _units(env, spec, request)
        bar = tqdm(units, desc="play", unit="episode", disable=not progress)
        episodes = [
            _episode(env, policy, spec, task, variation, split, max_steps, max_prompt_tokens)
            for task, variation, split in bar
        ]
    finally:
        env.close()
    return {"spec": spec, "max_steps": max_steps, "episodes": episodes, **summarise(episodes)}


def _units(env: ScienceWorldEnv, spec: str, request: Request) -> list[tuple[str, int, str]]:
    """(task, variation, dataset split) of every episode, all checked before the first one plays."""
    units = []
    for task in request.tasks:
        splits = _task_splits(env, spec, task)
        if isinstance(splits, Quarantined):
            raise RuntimeError(f"the ScienceWorld engine could not load {task}: {splits.detail}")
        valid = sorted(chain.from_iterable(splits.values()))
        for variation in variation_ids(request.selectors, splits):
            split = split_of(variation, splits)
            if split is None:
                raise ValueError(
                    f"{task} has no variation {variation}: the engine has {len(valid)} "
                    f"(ids {valid[0]}-{valid[-1]})"
                )
            units.append((task, variation, split))
    return units


def _episode(
    env: ScienceWorldEnv,
    policy: Policy,
    spec: str,
    task: str,
    variation: int,
    split: str,
    max_steps: int,
    max_prompt_tokens: int,
) -> dict[str, Any]:
    """One greedy episode from the task's start.

    Output with no readable action is sent as its stripped raw text (empty when the model said
    nothing): the engine answers "No known action matches that input." and the step is spent, as a
    wrong action's would be; nothing is substituted for the model's choice.
    """
    env.load(task, variation, SIMPLIFICATION)
    instruction = env.get_task_description()
    env.server.reset()
    observation = env.server.step("look around")
    episode_id = f"play:{task}@{variation}"
    history: list[Step] = []
    score, completed = _progress(env)
    while len(history) < max_steps and not completed and score >= 0:
        state = State(
            state_id=f"{episode_id}#{len(history)}",
            trajectory_id=episode_id,
            source=spec,
            task=task,
            environment=ENVIRONMENT,
            split=split,
            step_index=len(history),
            instruction=instruction,
            history=tuple(history),
            observation=observation,
            expert_action="",
        )
        prompt = agent_prompt(state, policy.tokenizer, max_prompt_tokens)
        (text,) = generate_greedy(policy, [prompt], 1, ACTION_TOKENS, stop_strings=["\n"], progress=False)
        action = parse_action(ACTION_PREFIX + text) or text.strip()
        history.append(Step(observation=observation, action=action))
        observation = env.server.step(action)
        score, completed = _progress(env)
    return {
        "task": task,
        "variation": variation,
        "split": split,
        "score": score,
        "success": completed and score >= 0,
        "steps": len(history),
        "actions": [step.action for step in history],
    }


def _progress(env: ScienceWorldEnv) -> tuple[int, bool]:
    """The engine's 0-100 score and whether every subgoal is done.

    In the engine's goal sequence a failed task scores -1.0 (so -100 here) and completion means all
    subgoals reached (score 1.0); an engine error state reports -1.0 and completed together, so a
    negative score ends an episode as a failure whatever the completed flag says.
    """
    return int(round(100 * env.server.getScore())), bool(env.server.getCompleted())


def summarise(episodes: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean score and success rate per task and over all episodes (at least one), each weighing the same."""
    by_task: dict[str, list[Mapping[str, Any]]] = {}
    for episode in episodes:
        by_task.setdefault(episode["task"], []).append(episode)
    tasks = {task: {"episodes": len(group), **_means(group)} for task, group in by_task.items()}
    return {"tasks": tasks, **_means(episodes)}


def _means(episodes: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    return {
        "mean_score": fmean(episode["score"] for episode in episodes),
        "success_rate": fmean(float(episode["success"]) for episode in episodes),
    }
