"""The DuckDB store's dedup and "never sample twice" rule, and sampling on a real tiny Llama."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pipelines import steps
from pipelines.filters import FilterConfig
from pipelines.ids import trajectory_id
from pipelines.policy import Policy, load_policy, policy_name
from pipelines.prompts import agent_prompt
from pipelines.sampling import SamplingParams, generate_k, sample_states
from pipelines.sources import Collected, quarantine
from pipelines.states import build_states
from pipelines.store import Store
from schemas import PAIR_SCHEMA, Step, Trajectory


def _trajectory(name: str, split: str = "train") -> Trajectory:
    steps_ = (
        Step(f"{name}: you are in the hallway.", "go to kitchen"),
        Step(f"{name}: you are in the kitchen.", "open fridge"),
        Step(f"{name}: the fridge is open.", "pick up apple"),
    )
    tid = trajectory_id(name, "scienceworld", f"find the {name}", steps_)
    return Trajectory(tid, "test-source", name, "scienceworld", split, f"find the {name}", steps_)


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path) -> Policy:
    return load_policy(str(tiny_model_dir))


def _collected() -> Collected:
    bad = quarantine("test-source", "line 3", "invalid_json", "Expecting value", "{oops")
    return Collected([_trajectory("apple"), _trajectory("pear", "test")], [bad])


def test_records_dedup_across_runs(tmp_path: Path) -> None:
    db_path = tmp_path / "store.duckdb"
    with Store(db_path) as store:
        states, added = steps.record(store, _collected())
    assert added == {"trajectories_added": 2, "quarantined_added": 1, "states_added": 6}
    assert len(states) == 6
    with Store(db_path) as store:
        states_again, added_again = steps.record(store, _collected())
        assert added_again == {"trajectories_added": 0, "quarantined_added": 0, "states_added": 0}
        assert [s.state_id for s in states_again] == [s.state_id for s in states]
        counts = store.counts([t.trajectory_id for t in _collected().trajectories], ["test-source"])
    assert counts["trajectories"] == 2 and counts["states"] == 6
    assert counts["quarantined_by_reason"] == {"invalid_json": 1}


def test_never_sample_twice_and_pairs_dedup(tmp_path: Path, tiny: Policy) -> None:
    params, filters = SamplingParams(k=4, seed=3), FilterConfig()
    with Store(tmp_path / "s.duckdb") as store:
        states, _ = steps.record(store, _collected())
        todo = steps.pending(store, states, tiny.name, params)
        assert len(todo) == 6
        samples = sample_states(tiny, todo, params, filters)
        run = steps.store_batch(store, todo, samples)
        assert run["samples_added"] == 24
        assert run["pairs_added"] == sum(
            1 for s in store.samples_for([x.state_id for x in states]) if s.verdict == "accepted"
        )
        assert steps.pending(store, states, tiny.name, params) == []
        # Other sampling parameters are other samples: those states are pending again.
        assert len(steps.pending(store, states, tiny.name, SamplingParams(k=4, seed=4))) == 6
        # Sampling the same states again (a crashed run retried) adds nothing.
        again = steps.store_batch(store, todo, sample_states(tiny, todo, params, filters))
        assert again["samples_added"] == 0 and again["pairs_added"] == 0
        pairs = store.pairs_for([t.trajectory_id for t in _collected().trajectories])
    assert pairs.schema == PAIR_SCHEMA
    assert pairs.num_rows == run["pairs_added"]
    assert len(set(pairs.column("pair_id").to_pylist())) == pairs.num_rows


def test_failed_batch_writes_nothing(tmp_path: Path, tiny: Policy) -> None:
    with Store(tmp_path / "s.duckdb") as store:
        states, _ = steps.record(store, _collected())
        samples = sample_states(tiny, states[:2], SamplingParams(k=2), FilterConfig())
        with pytest.raises(RuntimeError), store.transaction():
            store.add_samples(samples)
            raise RuntimeError("interrupted")
        assert store.samples_for([s.state_id for s in states]) == []


def test_select_is_deterministic_subset() -> None:
    states = _collected().trajectories
    all_states = steps.select([s for t in states for s in build_states(t)], None)
    assert [s.state_id for s in all_states] == sorted(s.state_id for s in all_states)
    assert steps.select(all_states, 2) == all_states[:2]


def test_sampling_is_seeded(tiny: Policy) -> None:
    states = steps.select([s for t in _collected().trajectories for s in build_states(t)], 2)
    a = sample_states(tiny, states, SamplingParams(k=3, seed=1), FilterConfig())
    b = sample_states(tiny, list(reversed(states)), SamplingParams(k=3, seed=1), FilterConfig())
    assert sorted(a, key=lambda s: s.sample_id) == sorted(b, key=lambda s: s.sample_id)
    c = sample_states(tiny, states, SamplingParams(k=3, seed=2), FilterConfig())
    assert [s.raw_output for s in a] != [s.raw_output for s in c]
    assert all(s.raw_output.startswith("Action:") for s in a)
    assert {s.verdict for s in a} <= {"accepted", "rejected"}


def test_one_prefill_per_state_matches_plain_generate(tiny: Policy) -> None:
    state = [s for s in build_states(_trajectory("apple"))][2]
    params = SamplingParams(k=4, max_new_tokens=8)
    prompt = agent_prompt(state, tiny.tokenizer, params.max_prompt_tokens)
    lengths: list[int] = []
    hook = tiny.model.register_forward_pre_hook(
        lambda _m, args, kwargs: lengths.append(kwargs["input_ids"].shape[1]), with_kwargs=True
    )
    try:
        shared = generate_k(tiny, prompt, params, seed=11)
    finally:
        hook.remove()
    # One forward pass over the prompt, then one token per decode step for all K rows together.
    assert lengths[0] == len(prompt) - 1
    assert all(n == 1 for n in lengths[1:])
    torch.manual_seed(11)
    ids = torch.tensor([prompt])
    plain = tiny.model.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        do_sample=True,
        num_return_sequences=4,
        temperature=params.temperature,
        top_p=params.top_p,
        max_new_tokens=params.max_new_tokens,
        stop_strings=["\n"],
        tokenizer=tiny.tokenizer,
        pad_token_id=tiny.tokenizer.pad_token_id,
    )
    assert shared == [tiny.tokenizer.decode(r[len(prompt) :], skip_special_tokens=True) for r in plain]


def test_history_window_fits_the_prompt_budget(tiny: Policy) -> None:
    state = build_states(_trajectory("apple"))[2]
    full = agent_prompt(state, tiny.tokenizer, 10_000)
    short = agent_prompt(state, tiny.tokenizer, len(full) - 5)
    assert len(short) <= len(full) - 5
    text = tiny.tokenizer.decode(short)
    assert "apple: the fridge is open." in text  # the current observation is kept
    assert "earlier steps omitted" in text


def test_policy_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="never downloads"):
        policy_name(str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="never downloads"):
        load_policy("HuggingFaceTB/SmolLM2-135M-Instruct")
