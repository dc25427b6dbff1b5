"""`actforge build`: collect, sample, curate, store and publish; with `--train`, then the ACT recipe."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from actforge.flows.arguments import reject_trl_settings, repo_id
from actforge.flows.commands.common import print_build, print_push, push, recipe_args, training_arguments
from actforge.flows.settings import prefect_api
from actforge.pipelines.config import BuildConfig


def make_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("build", help="build a critique dataset from expert trajectories")
    config_arguments(parser)
    parser.add_argument("--repo-id", metavar="NAME/DATASET", help="push the published version to the Hub")
    parser.add_argument("--train", action="store_true", help="then run the ACT recipe on the built dataset")
    parser.add_argument("--train-out", help="with --train: where the recipe's models go (default OUT-recipe)")
    training_arguments(parser)
    parser.set_defaults(execute=run)
    return parser


def config_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per `BuildConfig` field, with its default, help and choices."""
    for f in dataclasses.fields(BuildConfig):
        flag = f.metadata.get("flag", "--" + f.name.replace("_", "-"))
        extra: dict[str, Any] = {"help": f.metadata["help"], "dest": f.name}
        if f.name == "sources":
            extra |= {"action": "append", "required": True, "metavar": "SPEC"}
        elif f.type == "tuple[str, ...]":
            extra |= {"action": "append", "default": [], "choices": f.metadata.get("choices")}
        elif f.type == "bool":
            extra |= {"action": "store_true"}
        else:
            kind = {"int": int, "int | None": int, "float": float}.get(f.type, str)
            extra |= {"type": kind, "default": f.default, "choices": f.metadata.get("choices")}
            extra["required"] = f.name == "out"
            if f.default is not None and f.name != "out":
                extra["help"] += f" (default: {f.default})"
        parser.add_argument(flag, **extra)


def build_config(args: argparse.Namespace) -> BuildConfig:
    return BuildConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(BuildConfig)})


def run(args: argparse.Namespace, trl: list[str]) -> int:
    if not args.train:
        reject_trl_settings(trl, "build without --train")
    config = build_config(args)
    config.check_ready()  # sources and paths before any work (and before Prefect starts)
    if args.repo_id is not None:
        repo_id(args.repo_id)
    if args.train:
        from actforge.trainers.recipe import check_overrides

        check_overrides(args.stage3, trl)  # fail on a bad TRL setting before building
    with prefect_api(args.verbose):
        if not args.train:
            from actforge.flows.build import build
            from actforge.flows.runners import on_runner

            result = on_runner(build, config)(config)
            print_build(result)
            if args.repo_id:
                print_push(push(result["out"], args.repo_id, None, False))
            return 0
        from actforge.flows.train import build_and_train

        result = build_and_train(
            config=config,
            output_dir=args.train_out or f"{args.out.rstrip('/')}-recipe",
            recipe_args=recipe_args(args, trl),
        )
    print_build(result["build"])
    print(result["recipe"]["table"])
    return 0
