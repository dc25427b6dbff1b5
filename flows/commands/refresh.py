"""`actforge refresh`: rebuild a project incrementally; a new version only when the content changed."""

from __future__ import annotations

import argparse
from typing import Any

from actforge.flows import arguments
from actforge.flows.commands.common import print_build, print_push
from actforge.flows.settings import prefect_api


def make_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "refresh", help="rebuild a project incrementally; new version only on change"
    )
    parser.add_argument("--project", required=True, help="project file (YAML or TOML)")
    parser.add_argument(
        "--repo-id", metavar="NAME/DATASET", help="push a new version here (overrides the file)"
    )
    parser.add_argument(
        "--with-report", action="store_true", help="add the report's plots to OUT and its card"
    )
    parser.set_defaults(execute=run)
    return parser


def run(args: argparse.Namespace, trl: list[str]) -> int:
    from actforge.pipelines.project import load_project
    from actforge.pipelines.steps import unchanged

    arguments.reject_trl_settings(trl, "refresh")
    arguments.existing_file(args.project, "--project")
    if args.repo_id is not None:
        arguments.repo_id(args.repo_id)
    project = load_project(args.project)
    project.build.check_ready()  # the project's sources and paths before any work
    settings = project.refresh_settings(args.with_report)
    if not (args.repo_id or project.push_to_hub) and (result := unchanged(settings)) is not None:
        print_build(result)  # nothing to do: said without starting Prefect
        print(f"version: {result['version']}")
        return 0
    with prefect_api(args.verbose):
        from actforge.flows.refresh import refresh
        from actforge.flows.runners import on_runner

        result = on_runner(refresh, project.build)(args.project, args.repo_id, args.with_report)
    print_build(result)
    print(f"version: {result['version']}")
    if "hub" in result:
        print_push(result["hub"])
    return 0
