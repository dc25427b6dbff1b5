"""The `build_and_train` flow: build the dataset, then run ACT's recipe on it (`trainers.recipe`)."""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from actforge.flows.build import build
from actforge.flows.runners import on_runner
from actforge.pipelines.config import BuildConfig
from actforge.trainers.recipe import recipe


@task(name="recipe", cache_policy=NO_CACHE)
def run_recipe(data: str, model: str, output_dir: str, recipe_args: dict[str, Any]) -> dict[str, Any]:
    return recipe(data, model, output_dir, **recipe_args)


@flow(name="build_and_train")
def build_and_train(
    config: BuildConfig, output_dir: str, recipe_args: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`build(config)`, then the recipe (critic, agent stages, baselines) from the build's policy."""
    built = on_runner(build, config)(config)
    return {"build": built, "recipe": run_recipe(built["out"], config.policy, output_dir, recipe_args or {})}
