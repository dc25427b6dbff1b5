"""The `actforge` command line: `build` runs the Prefect flow, `stats` reads a built dataset."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from flows.settings import configure_prefect
from pipelines.sources import FILE_FORMATS

SUMMARY_KEYS = ("trajectories", "states", "samples", "pairs", "quarantined")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="actforge", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build a critique dataset from expert trajectories")
    b.add_argument(
        "--source",
        action="append",
        required=True,
        metavar="SPEC",
        help="scienceworld:TASKS@VARIATIONS or [FORMAT:]PATH; repeatable",
    )
    b.add_argument("--out", required=True, help="output folder (Hugging Face dataset layout)")
    b.add_argument("--store", help="DuckDB store (default: OUT.duckdb beside OUT)")
    b.add_argument("--policy", default="smollm2", help="'smollm2' (bundled) or a local model folder")
    b.add_argument("--k", type=int, default=4, help="alternatives sampled per state")
    b.add_argument("--max-states", type=int, help="sample at most this many states (chosen by id)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--format", choices=FILE_FORMATS, help="force the format of file sources")
    b.add_argument(
        "--admissible",
        choices=("off", "map", "require"),
        default="off",
        help="map outputs to, or require, the source's admissible actions",
    )
    b.add_argument("--trust-remote-code", action="store_true", help="allow a model folder's own code")
    s = sub.add_parser("stats", help="print the counts of a built dataset")
    s.add_argument("out", help="a folder written by `actforge build`")
    s.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    return parser


def _table(stats: dict[str, Any]) -> str:
    lines = [f"{key:<14}{stats[key]:>8}" for key in SUMMARY_KEYS]
    for key in ("samples_by_verdict", "samples_by_reason", "pairs_by_split", "quarantined_by_reason"):
        for name, count in sorted(stats.get(key, {}).items()):
            lines.append(f"  {key.replace('_by_', ' ')}: {name:<22}{count:>8}")
    return "\n".join(lines)


def stats_command(out: Path, as_json: bool) -> int:
    from pipelines.publish import read_manifest

    stats = read_manifest(out)["stats"]
    print(json.dumps(stats, sort_keys=True) if as_json else _table(stats))
    return 0


def build_command(args: argparse.Namespace) -> int:
    configure_prefect()
    from flows.build import build

    result = build(
        sources=args.source,
        out=args.out,
        store=args.store,
        policy=args.policy,
        k=args.k,
        max_states=args.max_states,
        seed=args.seed,
        fmt=args.format,
        admissible=args.admissible,
        trust_remote_code=args.trust_remote_code,
    )
    run = result["run"]
    print(
        f"run: +{run['trajectories_added']} trajectories, +{run['states_added']} states, "
        f"+{run['samples_added']} samples ({run['policy_calls']} policy calls), "
        f"+{run['pairs_added']} pairs, {run['quarantined']} quarantined"
    )
    print(_table(result["stats"]))
    print(f"dataset: {result['out']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "stats":
            return stats_command(Path(args.out), args.json)
        return build_command(args)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"actforge: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
