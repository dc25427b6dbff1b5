"""ACT's recipe in the paper's shape: critic stage, then agent training from it, against baselines.

Stage 2 trains the critic (`act`) from the base model. Stage 3 trains the agent, by imitation
(`sft`, "IL") and/or by action RL (`action`, "RL"), once from the base model and once from the
stage-2 checkpoint ("IL w/ ACT", "RL w/ ACT"), with the same stage-3 budget. DPO on the same
pairs (`dpo`, from the base model, with that budget) is the obvious alternative. Every model is
evaluated the same way (critic judgment in both orders, next-action accuracy, and with a play spec
the mean score and success rate of playing the live environment), into one table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from actforge.pipelines.policy.models import load_policy
from actforge.pipelines.sources.live import PLAY_STEPS
from actforge.schemas.vocab import TRAINING_KINDS
from actforge.trainers.evaluate import evaluate, format_table
from actforge.trainers.overrides import MODEL_FIELDS, field_of, split_overrides
from actforge.trainers.play import play
from actforge.trainers.train import pick_protocol, train
from actforge.trainers.trl_config import config_class, resolve_objective

STAGE3 = {"sft": ("sft",), "action": ("action",), "both": ("sft", "action")}
LABELS = {"sft": "IL", "action": "RL"}
RESULT_FILE = "recipe.json"


def overrides_for(kind: str, overrides: list[str]) -> list[str]:
    """The overrides whose field the kind's TRL config has (the recipe mixes GRPO, SFT and DPO stages)."""
    fields = set(config_class(kind).__dataclass_fields__) | MODEL_FIELDS
    unknown = [g[0] for g in split_overrides(overrides) if field_of(g[0]) not in fields | _stage_fields()]
    if unknown:
        raise ValueError(f"unknown TRL config field(s) {unknown}")
    return [t for g in split_overrides(overrides) if field_of(g[0]) in fields for t in g]


def check_overrides(stage3: str, overrides: list[str]) -> None:
    """Raise ValueError for an unknown stage 3 or an override no stage's TRL config has."""
    if stage3 not in STAGE3:
        raise ValueError(f"unknown stage3 {stage3!r}; expected one of {list(STAGE3)}")
    for kind in ("act", "dpo", *STAGE3[stage3]):
        overrides_for(kind, overrides)


def _stage_fields() -> set[str]:
    return {name for kind in TRAINING_KINDS for name in config_class(kind).__dataclass_fields__}


def _evaluated(
    data: str,
    folder: str,
    split: str,
    max_pairs: int | None,
    protocol: str,
    play_spec: str | None,
    play_steps: int,
) -> dict[str, Any]:
    """One model's row of the table: its critic and next-action scores, and its play when asked."""
    result = evaluate(data, folder, split, max_pairs, max_pairs, protocol)
    if play_spec:
        result["play"] = play(load_policy(folder), play_spec, play_steps)
    return result


def recipe(
    data: str,
    model: str,
    output_dir: str,
    stage3: str = "both",
    config: str | None = None,
    overrides: list[str] | None = None,
    protocol: str = "auto",
    objective: str = "auto",
    curve_every: int = 0,
    curve_max_pairs: int | None = None,
    play_spec: str | None = None,
    play_steps: int = PLAY_STEPS,
    eval_split: str = "test",
    eval_max_pairs: int | None = None,
    stage3_max_steps: int | None = None,
) -> dict[str, Any]:
    """Run stage 2 then stage 3 and the baselines; write DIR/recipe.json; return it.
    `stage3_max_steps` gives the agent runs (IL, RL and DPO, from the base and from ACT) their own
    step budget; without it every stage takes the overrides' `max_steps`."""
    overrides = list(overrides or [])
    check_overrides(stage3, overrides)  # fail on an unknown field before any training
    root = Path(output_dir)
    chosen, measured = pick_protocol(data, model, protocol)

    def stage(kind: str, start: str, name: str) -> str:
        curve = (curve_every, curve_max_pairs) if kind == "act" else (0, None)
        kind_overrides = overrides_for(kind, overrides)
        if kind != "act" and stage3_max_steps:
            kind_overrides += ["--max_steps", str(stage3_max_steps)]  # the last one given wins
        return str(
            train(kind, data, start, str(root / name), config, kind_overrides, chosen, objective, *curve)
        )

    models = {"base": model}
    models["ACT"] = stage("act", model, "act")
    models["DPO"] = stage("dpo", model, "dpo")  # the obvious alternative, on the same pairs
    for kind in STAGE3[stage3]:
        models[LABELS[kind]] = stage(kind, model, LABELS[kind].lower())
        models[f"{LABELS[kind]} w/ ACT"] = stage(kind, models["ACT"], f"{LABELS[kind].lower()}-act")
    rows = {
        name: _evaluated(data, folder, eval_split, eval_max_pairs, chosen, play_spec, play_steps)
        for name, folder in models.items()
    }
    summary = {
        "data": data,
        "base": model,
        "stage3": stage3,
        "protocol": chosen,
        "objective": resolve_objective(objective, chosen),
        "protocol_measurements": measured,
        "overrides": overrides,
        "stage3_max_steps": stage3_max_steps,
        "models": models,
        "results": rows,
        "table": format_table(list(rows.values()), list(rows)),
    }
    root.mkdir(parents=True, exist_ok=True)
    (root / RESULT_FILE).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return summary
