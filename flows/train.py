"""The `build_and_train` flow: build the dataset, evaluate the base model, train ACT, evaluate again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.build import build
from trainers.evaluate import evaluate, write_result
from trainers.train import train


@task(name="evaluate", cache_policy=NO_CACHE)
def evaluate_model(data: str, model: str, split: str, max_pairs: int | None, path: Path) -> dict[str, Any]:
    result = evaluate(data, model, split=split, max_pairs=max_pairs, max_states=max_pairs)
    write_result(result, path)
    return result


@task(name="train", cache_policy=NO_CACHE)
def train_model(
    kind: str, data: str, model: str, output_dir: str, config: str | None, overrides: list[str]
) -> str:
    return str(train(kind, data, model, output_dir, config=config, overrides=overrides))


@flow(name="build_and_train")
def build_and_train(
    build_args: dict[str, Any],
    output_dir: str,
    config: str | None = None,
    overrides: list[str] | None = None,
    eval_split: str = "test",
    eval_max_pairs: int | None = None,
) -> dict[str, Any]:
    """`build(**build_args)`, then ACT on its pairs from the build's policy, with before/after evaluation."""
    built = build(**build_args)
    data, base = built["out"], build_args.get("policy", "smollm2")
    results = Path(output_dir)
    before = evaluate_model(data, base, eval_split, eval_max_pairs, results / "eval_before.json")
    trained = train_model("act", data, base, output_dir, config, list(overrides or []))
    after = evaluate_model(data, trained, eval_split, eval_max_pairs, results / "eval_after.json")
    return {"build": built, "before": before, "after": after, "model": trained}
