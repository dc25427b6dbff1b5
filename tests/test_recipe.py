"""The recipe's routing of TRL overrides to its GRPO and SFT stages (the runs are in test_build_flow)."""

from __future__ import annotations

import pytest

from trainers.overrides import split_overrides
from trainers.recipe import check_overrides, overrides_for


def test_split_overrides_groups_flags_with_their_values() -> None:
    tokens = ["--max_steps", "2", "--learning_rate=1e-5", "--reward_weights", "1.0", "0.0", "0.0"]
    assert split_overrides(tokens) == [["--max_steps", "2"], ["--learning_rate=1e-5"], tokens[3:]]
    with pytest.raises(ValueError, match="does not follow"):
        split_overrides(["2", "--max_steps"])


def test_each_stage_gets_the_fields_its_config_has() -> None:
    tokens = ["--max_steps", "2", "--num_generations", "2", "--packing=true"]
    assert overrides_for("act", tokens) == ["--max_steps", "2", "--num_generations", "2"]
    assert overrides_for("action", tokens) == ["--max_steps", "2", "--num_generations", "2"]
    assert overrides_for("sft", tokens) == ["--max_steps", "2", "--packing=true"]


def test_unknown_fields_and_stages_fail_before_training() -> None:
    with pytest.raises(ValueError, match="no_such_field"):
        check_overrides("both", ["--no_such_field", "1"])
    with pytest.raises(ValueError, match="stage3"):
        check_overrides("dpo", [])
    check_overrides("sft", ["--max_steps", "2"])


def test_lora_fields_reach_every_stage() -> None:
    tokens = ["--use_peft", "true", "--lora_r", "4", "--lora_target_modules", "q_proj", "v_proj"]
    for kind in ("act", "action", "sft"):
        assert overrides_for(kind, tokens) == tokens
