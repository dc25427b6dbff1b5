"""`actforge build`: collect, sample, curate, store and publish; with `--train`, then the ACT recipe."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from actforge.flows.arguments import existing_file, reject_trl_settings, repo_id
from actforge.flows.commands.common import print_build, print_push, push, recipe_args, training_arguments
from actforge.flows.settings import prefect_api
from actforge.pipelines.config import BuildConfig
from actforge.pipelines.project import Project, load_project
from actforge.pipelines.steps import unchanged


def make_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("build", help="build a critique dataset from expert trajectories")
    parser.add_argument(
        "--project",
        metavar="FILE",
        help="take the settings of a project file (YAML or TOML, as `refresh` reads); options given "
        "here replace its values",
    )
    config_arguments(parser)
    parser.add_argument("--repo-id", metavar="NAME/DATASET", help="push the published version to the Hub")
    parser.add_argument("--train", action="store_true", help="then run the ACT recipe on the built dataset")
    parser.add_argument("--train-out", help="with --train: where the recipe's models go (default OUT-recipe)")
    training_arguments(parser)
    parser.set_defaults(execute=run)
    return parser


def config_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per `BuildConfig` field, with its help and choices. An option left out leaves no
    attribute (argparse.SUPPRESS), so `build_config` tells a given value from the field's default."""
    for f in dataclasses.fields(BuildConfig):
        flag = f.metadata.get("flag", "--" + f.name.replace("_", "-"))
        extra: dict[str, Any] = {"help": f.metadata["help"], "dest": f.name, "default": argparse.SUPPRESS}
        if f.name == "sources":
            extra |= {"action": "append", "metavar": "SPEC"}
        elif f.type == "tuple[str, ...]":
            extra |= {"action": "append", "choices": f.metadata.get("choices")}
        elif f.type == "bool":
            extra |= {"action": "store_true"}
        else:
            kind = {"int": int, "int | None": int, "float": float}.get(f.type, str)
            extra |= {"type": kind, "choices": f.metadata.get("choices")}
            if f.default is not None and f.name != "out":
                extra["help"] += f" (default: {f.default})"
        parser.add_argument(flag, **extra)


def build_config(args: argparse.Namespace, project: Project | None = None) -> BuildConfig:
    """The options given, over the project file's settings, over `BuildConfig`'s defaults."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(BuildConfig) if hasattr(args, f.name)}
    if project is not None:
        return dataclasses.replace(project.build, **given)
    missing = [flag for flag, name in (("--source", "sources"), ("--out", "out")) if name not in given]
    if missing:
        raise ValueError(f"build needs {' and '.join(missing)} (or --project FILE)")
    return BuildConfig(**given)


def run(args: argparse.Namespace, trl: list[str]) -> int:
    if not args.train:
        reject_trl_settings(trl, "build without --train")
    existing_file(args.project, "--project")
    project = load_project(args.project) if args.project else None
    config = build_config(args, project)
    config.check_ready()  # sources and paths before any work (and before Prefect starts)
    hub = project or Project(config)
    repo, revision, private = args.repo_id or hub.push_to_hub, hub.revision, hub.private
    if repo is not None:
        repo_id(repo)
    if args.train:
        from actforge.trainers.recipe import check_overrides

        check_overrides(args.stage3, trl)  # fail on a bad TRL setting before building
    if not args.train and not repo and (result := unchanged(config)) is not None:
        print_build(result)  # nothing to do: said without starting Prefect
        return 0
    with prefect_api(args.verbose):
        if not args.train:
            from actforge.flows.build import build
            from actforge.flows.runners import on_runner

            result = on_runner(build, config)(config)
            print_build(result)
            if repo:
                print_push(push(result["out"], repo, revision, private))
            return 0
        from actforge.flows.train import build_and_train

        result = build_and_train(
            config=config,
            output_dir=args.train_out or f"{config.out.rstrip('/')}-recipe",
            recipe_args=recipe_args(args, trl),
        )
    print_build(result["build"])
    print(result["recipe"]["table"])
    return 0
