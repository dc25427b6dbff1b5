"""`actforge publish`: push a built dataset to the Hugging Face Hub as one commit."""

from __future__ import annotations

import argparse
from typing import Any

from actforge.flows import arguments
from actforge.flows.commands.common import print_push, push


def make_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "publish", help="push a built dataset to the Hugging Face Hub as one commit"
    )
    parser.add_argument("data", metavar="DATA", help="a dataset folder written by `actforge build`")
    parser.add_argument("--repo-id", required=True, metavar="NAME/DATASET")
    parser.add_argument("--revision", help="branch to commit to (default main)")
    parser.add_argument("--private", action="store_true", help="create the repo private if it does not exist")
    parser.set_defaults(execute=run)
    return parser


def run(args: argparse.Namespace, trl: list[str]) -> int:
    arguments.reject_trl_settings(trl, "publish")
    arguments.dataset(args.data, "DATA")
    arguments.repo_id(args.repo_id)
    print_push(push(args.data, args.repo_id, args.revision, args.private))
    return 0
