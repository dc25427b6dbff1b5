"""Play a live environment with a model: greedy actions in the real engine, scored per task (ACT Table 1).

Next-action accuracy only asks a model to act at expert states; playing asks it to finish a task
from its start, on its own actions, which is the mean score and success rate the ACT paper reports.
Each episode starts as an expert replay does (the engine's `LiveEngine.reset`, the same one
`--verify` uses), is prompted with the sampler's agent prompt, and acts through the engine's step.

Scores are the engine's own at the end of the episode, times 100 and rounded (0-100 integers). They
start above 0 on some tasks (8 on ScienceWorld's find-* tasks after the opening look around), so an
idle model need not score 0. ScienceWorld scores a failed task (e.g. focusing on the wrong object)
-100, and means include that as is: papers that count a failure as 0 can be recomputed from the
episodes. An episode ends when it is won or lost, or after `max_steps` actions. Decoding is greedy,
so a result depends only on the model and the spec.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from statistics import fmean
from typing import Any

from tqdm.auto import tqdm

from actforge.pipelines.policy.models import Policy
from actforge.pipelines.sources.live import PLAY_STEPS, Episode, LiveEngine
from actforge.pipelines.sources.registry import engine_for
from actforge.pipelines.text.actions import parse_action
from actforge.pipelines.text.prompts import ACTION_PREFIX, AGENT_PROMPT_TOKENS, agent_prompt
from actforge.schemas import State, Step
from actforge.trainers.evaluate import ACTION_TOKENS, generate_greedy


def play(
    policy: Policy,
    spec: str,
    max_steps: int = PLAY_STEPS,
    max_prompt_tokens: int = AGENT_PROMPT_TOKENS,
    progress: bool = True,
) -> dict[str, Any]:
    """Play every episode of a live spec (`scienceworld:TASKS@VARIATIONS`, `twx:GAMES@SEEDS`) in one JVM.

    The model stays on the device the caller put it on. Raises ValueError for a spec that is not
    live or names a variation the engine does not have, before any episode is played.
    """
    if max_steps < 1:
        raise ValueError(f"max_steps must be at least 1, got {max_steps}")
    with engine_for(spec) as engine:
        episodes = _checked(engine)
        bar = tqdm(episodes, desc="play", unit="episode", disable=not progress)
        played = [_episode(engine, policy, episode, max_steps, max_prompt_tokens) for episode in bar]
    return {"spec": spec, "max_steps": max_steps, "episodes": played, **summarise(played)}


def _checked(engine: LiveEngine) -> list[Episode]:
    """Every episode of the spec, all checked before the first one plays."""
    if engine.unloadable:
        first = engine.unloadable[0]
        raise RuntimeError(f"the {engine.environment} engine could not load {first.position}: {first.detail}")
    episodes = engine.episodes()
    missing = [episode for episode in episodes if episode.split is None]
    if missing:
        raise ValueError(
            f"{missing[0].task} has no variation {missing[0].variation} in the engine's split lists"
        )
    return episodes


def _episode(
    engine: LiveEngine, policy: Policy, episode: Episode, max_steps: int, max_prompt_tokens: int
) -> dict[str, Any]:
    """One greedy episode from the task's start.

    Output with no readable action is sent as its stripped raw text (empty when the model said
    nothing): the engine refuses it and the step is spent, as a wrong action's would be; nothing is
    substituted for the model's choice.
    """
    instruction, observation = engine.reset(episode.trajectory_id)
    play_id = f"play:{episode.task}@{episode.variation}"
    history: list[Step] = []
    now = engine.progress()
    while len(history) < max_steps and not (now.won or now.lost):
        state = State(
            state_id=f"{play_id}#{len(history)}",
            trajectory_id=play_id,
            source=engine.spec,
            task=episode.task,
            environment=engine.environment,
            split=episode.split or "",
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
        observation = engine.step(action)
        now = engine.progress()
    return {
        "task": episode.task,
        "variation": episode.variation,
        "split": episode.split,
        "score": int(round(100 * now.score)),
        "success": now.won,
        "steps": len(history),
        "actions": [step.action for step in history],
    }


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
