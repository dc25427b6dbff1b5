"""The recipe's routing of TRL overrides to its GRPO and SFT stages (the runs are in flows/test_build.py)."""

from __future__ import annotations

import pytest

from actforge.trainers.overrides import split_overrides
from actforge.trainers.recipe import check_overrides, overrides_for


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


def test_seed_summary_differences_are_paired_within_each_seed() -> None:
    from benchmarks.recipe_seeds import markdown, summarise

    def run(base: float, act: float, il: float, il_act: float) -> dict:
        results = {
            "base": {"critic": {"consistent_accuracy": base}},
            "ACT": {"critic": {"consistent_accuracy": act}},
            "IL": {"action": {"accuracy": il}},
            "IL w/ ACT": {"action": {"accuracy": il_act}},
        }
        return {"results": results}

    summary = summarise([run(0.0, 0.4, 0.2, 0.3), run(0.1, 0.3, 0.25, 0.2)])
    act = summary["differences"]["ACT - base"]["consistent"]
    assert act["values"] == pytest.approx([0.4, 0.2]) and act["mean"] == pytest.approx(0.3)
    il = summary["differences"]["IL w/ ACT - IL"]["action acc"]
    assert (il["min"], il["max"], il["mean"]) == pytest.approx((-0.05, 0.1, 0.025))
    assert "RL w/ ACT - RL" not in summary["differences"]  # no RL rows in these runs
    assert summary["rows"]["IL"]["consistent"] is None  # not measured, not zero
    assert "| IL w/ ACT - IL |" in markdown(summary) and "+0.025 [-0.050, +0.100]" in markdown(summary)
