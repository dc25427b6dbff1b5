"""`actforge stats`: the counts of a built dataset, from its manifest."""

from __future__ import annotations

import argparse
import json
from typing import Any

from actforge.flows import arguments
from actforge.flows.commands.common import stats_table


def make_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("stats", help="print the counts of a built dataset")
    parser.add_argument("data", metavar="DATA", help="a dataset folder written by `actforge build`")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    parser.set_defaults(execute=run)
    return parser


def run(args: argparse.Namespace, trl: list[str]) -> int:
    arguments.reject_trl_settings(trl, "stats")
    stats = arguments.dataset(args.data, "DATA")["stats"]
    print(json.dumps(stats, sort_keys=True) if args.json else stats_table(stats))
    return 0
