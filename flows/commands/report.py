"""`actforge report`: plots and one HTML page of a built dataset and its training runs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from actforge.flows import arguments


def make_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "report", help="plots and one HTML page of a built dataset and its training runs"
    )
    parser.add_argument("data", metavar="DATA", help="a dataset folder written by `actforge build`")
    parser.add_argument(
        "--run", action="append", default=[], metavar="DIR", help="a training run folder; repeatable"
    )
    parser.add_argument("--out", help="where the plots and report.html go (default: DATA.report beside DATA)")
    parser.set_defaults(execute=run)
    return parser


def run(args: argparse.Namespace, trl: list[str]) -> int:
    from actforge.pipelines.publish.report import write_report

    arguments.reject_trl_settings(trl, "report")
    arguments.dataset(args.data, "DATA")
    for folder in args.run:
        if not Path(folder).is_dir():
            raise ValueError(f"--run {folder}: no such folder")
    if args.out is not None:
        arguments.output_dir(args.out, "--out")
    data = Path(args.data)
    target = Path(args.out) if args.out else data.parent / f"{data.name}.report"
    written = write_report(data, [Path(r) for r in args.run], target)
    print(f"report: {len(written) - 1} plots and {written[-1]} (open it in a browser)")
    return 0
