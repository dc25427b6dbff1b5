"""`actforge serve`: the refresh flow on a schedule, served by Prefect."""

from __future__ import annotations

import argparse
import os
import signal
from pathlib import Path
from typing import Any

from actforge.flows import arguments
from actforge.flows.arguments import positive_int
from actforge.flows.settings import configure_prefect


def make_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "serve", help="serve the refresh flow on a schedule (needs a Prefect server)"
    )
    parser.add_argument("--project", required=True, help="project file (YAML or TOML)")
    when = parser.add_mutually_exclusive_group(required=True)
    when.add_argument("--cron", help='cron schedule, e.g. "0 3 * * *"')
    when.add_argument("--interval", type=positive_int, help="run every N seconds")
    parser.set_defaults(execute=run)
    return parser


def run(args: argparse.Namespace, trl: list[str]) -> int:
    arguments.reject_trl_settings(trl, "serve")
    arguments.existing_file(args.project, "--project")
    configure_prefect(verbose=True)  # served runs keep their logs in the UI
    from actforge.flows.refresh import refresh
    from actforge.pipelines.project import load_project

    load_project(args.project)  # fail now on a bad project file, not at the first scheduled run
    name = f"refresh-{Path(args.project).stem}"
    # One run at a time: runs share one DuckDB store, which only one process may hold.
    parameters = {"config": str(Path(args.project).resolve())}
    # Ctrl-C stops the runner the way SIGTERM does (its own graceful stop: no new runs, in-flight runs
    # ended, then `serve` returns). Left to asyncio, SIGINT only cancels the runner's main task, and
    # that cancellation was seen lost: 30 s after the signal serve's loop still waited and a child
    # process had started 27 s after it (tests/flows/test_schedule.py, on a fresh clone).
    signal.signal(signal.SIGINT, lambda _signum, _frame: os.kill(os.getpid(), signal.SIGTERM))
    refresh.serve(name=name, cron=args.cron, interval=args.interval, parameters=parameters, limit=1)
    return 0
