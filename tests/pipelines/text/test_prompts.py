"""The agent prompt: its history window fits the prompt budget, and steps left out are counted."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from actforge.pipelines import steps
from actforge.pipelines.policy.models import Policy
from actforge.pipelines.sources.base import Collected
from actforge.pipelines.store.database import Store
from actforge.pipelines.store.states import load_states
from actforge.pipelines.text.prompts import agent_prompt, agent_prompt_text
from actforge.schemas import State
from actforge.schemas.ids import state_id
from tests.support.kitchen import BUDGET, TRAJECTORIES


def _apple_state(tmp_path: Path, index: int) -> State:
    with Store(tmp_path / "s.duckdb") as store:
        ids, _ = steps.record(store, Collected.of([TRAJECTORIES[0]], []))
        [state] = load_states(store, ids, [state_id(ids[0], index)], BUDGET)
    return state


def test_history_window_fits_the_prompt_budget(tmp_path: Path, tiny: Policy) -> None:
    state = _apple_state(tmp_path, 2)
    full = agent_prompt(state, tiny.tokenizer, 10_000)
    short = agent_prompt(state, tiny.tokenizer, len(full) - 5)
    assert len(short) <= len(full) - 5
    text = tiny.tokenizer.decode(short)
    assert "apple: the fridge is open." in text  # the current observation is kept
    assert "earlier steps omitted" in text
    # Steps the published window already left out are counted in the prompt too.
    trimmed = dataclasses.replace(state, history=state.history[1:], history_omitted=1)
    assert "(1 earlier steps omitted)" in agent_prompt_text(trimmed, tiny.tokenizer, 10_000)
