"""The agent prompt: its history window fits the prompt budget, slides in blocks, and steps left
out are counted."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from actforge.pipelines import steps
from actforge.pipelines.policy.models import Policy
from actforge.pipelines.sources.base import Collected
from actforge.pipelines.store.database import Store
from actforge.pipelines.store.states import load_states
from actforge.pipelines.text.prompts import agent_prompt, agent_prompt_text, block_window
from actforge.schemas import State, Step
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


def test_block_window_starts_at_a_block_boundary() -> None:
    assert block_window(10, 10) == 10  # everything fits
    assert block_window(20, 17) == 16  # B = 4: the window starts at step 4, not 3
    assert block_window(21, 17) == 17 and block_window(22, 17) == 14  # 4, then 8
    assert block_window(9, 3) == 3  # B = 1 below 8 fitting steps: one step at a time
    assert block_window(40, 0) == 0


def test_consecutive_states_share_their_window_until_a_block_goes(tmp_path: Path, tiny: Policy) -> None:
    """A 40-step trajectory under a budget that fits about 12 steps: each state's window starts at a
    multiple of its block, the start never moves back, and it moves in jumps, so most consecutive
    prompts begin with the same steps."""
    base = _apple_state(tmp_path, 0)
    history = tuple(
        Step(f"room {i}: a table, a lamp and door {i}.", f"open door {i}", None) for i in range(40)
    )
    starts = []
    for index in range(16, 40):
        state = dataclasses.replace(base, history=history[:index], observation=f"room {index}.")
        text = agent_prompt_text(state, tiny.tokenizer, 900)
        assert len(tiny.tokenizer(text).input_ids) <= 900
        omitted = re.search(r"\((\d+) earlier steps omitted\)", text)
        assert omitted is not None
        start = int(omitted.group(1))
        assert f"room {start}: a table" in text and f"room {start - 1}: a table" not in text
        starts.append(start)
    assert starts == sorted(starts) and all(start % 2 == 0 for start in starts)
    jumps = sum(1 for a, b in zip(starts, starts[1:], strict=False) if a != b)
    assert 0 < jumps <= len(starts) // 2
