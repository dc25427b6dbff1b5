"""The `actforge` command line: `build` (optionally `--train`), `stats`, `train` and `eval`.

Arguments this parser does not know are TRL config overrides (`--max_steps 20`, `--beta 0.04`) and
go to TRL's own parser, so every TRL field is settable without being declared here.
"""

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
    b.add_argument("--push-to-hub", metavar="NAME/DATASET", help="push the published version to the Hub")
    b.add_argument("--train", action="store_true", help="then evaluate the policy, train ACT, evaluate again")
    b.add_argument("--output-dir", help="with --train: where the trained model goes (default OUT-act)")
    b.add_argument("--config", help="with --train: a YAML file of TRL GRPOConfig fields")
    b.add_argument("--eval-max-pairs", type=int, help="with --train: evaluate on at most N pairs and states")
    t = sub.add_parser("train", help="train with TRL: act (critic GRPO), action (GRPO), sft (IL baseline)")
    t.add_argument("kind", choices=("act", "action", "sft"))
    t.add_argument("--data", required=True, help="a dataset folder written by `actforge build`")
    t.add_argument("--model", default="smollm2", help="'smollm2' (bundled) or a local model folder")
    t.add_argument("--output-dir", required=True)
    t.add_argument("--config", help="a YAML file of TRL config fields (GRPOConfig or SFTConfig)")
    e = sub.add_parser("eval", help="pairwise critic accuracy and next-action accuracy of a model")
    e.add_argument("--data", required=True, help="a dataset folder written by `actforge build`")
    e.add_argument("--model", default="smollm2", help="'smollm2' (bundled) or a local model folder")
    e.add_argument("--split", default="test")
    e.add_argument("--max-pairs", type=int, help="evaluate at most N pairs (and N states)")
    e.add_argument("--output", help="write the JSON result here (default MODEL/eval_SPLIT.json or ./)")
    r = sub.add_parser("refresh", help="rebuild a project incrementally; new version only on change")
    r.add_argument("--config", required=True, help="project file (YAML or TOML)")
    r.add_argument(
        "--push-to-hub", metavar="NAME/DATASET", help="push a new version here (overrides the file)"
    )
    v = sub.add_parser("serve", help="serve the refresh flow on a schedule (needs a Prefect server)")
    v.add_argument("--config", required=True, help="project file (YAML or TOML)")
    when = v.add_mutually_exclusive_group(required=True)
    when.add_argument("--cron", help='cron schedule, e.g. "0 3 * * *"')
    when.add_argument("--interval", type=int, help="run every N seconds")
    p = sub.add_parser("publish", help="push a built dataset to the Hugging Face Hub as one commit")
    p.add_argument("out", help="a folder written by `actforge build`")
    p.add_argument("--repo-id", required=True, metavar="NAME/DATASET")
    p.add_argument("--revision", help="branch to commit to (default main)")
    p.add_argument("--private", action="store_true", help="create the repo private if it does not exist")
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


def _build_args(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "sources": args.source,
        "out": args.out,
        "store": args.store,
        "policy": args.policy,
        "k": args.k,
        "max_states": args.max_states,
        "seed": args.seed,
        "fmt": args.format,
        "admissible": args.admissible,
        "trust_remote_code": args.trust_remote_code,
    }


def _print_build(result: dict[str, Any]) -> None:
    run = result["run"]
    print(
        f"run: +{run['trajectories_added']} trajectories, +{run['states_added']} states, "
        f"+{run['samples_added']} samples ({run['policy_calls']} policy calls), "
        f"+{run['pairs_added']} pairs, {run['quarantined']} quarantined"
    )
    print(_table(result["stats"]))
    print(f"dataset: {result['out']}")


def build_command(args: argparse.Namespace, overrides: list[str]) -> int:
    configure_prefect()
    if not args.train:
        if overrides:
            raise ValueError(f"unrecognized arguments: {' '.join(overrides)} (TRL overrides need --train)")
        from flows.build import build

        result = build(**_build_args(args))
        _print_build(result)
        if args.push_to_hub:
            _print_push(_push(result["out"], args.push_to_hub, None, False))
        return 0
    from flows.train import build_and_train
    from trainers.evaluate import compare_table
    from trainers.train import parse_train_args

    parse_train_args("act", args.config, overrides)  # fail on a bad override before building
    result = build_and_train(
        build_args=_build_args(args),
        output_dir=args.output_dir or f"{args.out.rstrip('/')}-act",
        config=args.config,
        overrides=overrides,
        eval_max_pairs=args.eval_max_pairs,
    )
    _print_build(result["build"])
    print(f"trained model: {result['model']}")
    print(compare_table(result["before"], result["after"]))
    return 0


def _push(out: str, repo_id: str, revision: str | None, private: bool) -> dict[str, Any]:
    from pipelines.hub import push_dataset

    return push_dataset(Path(out), repo_id, revision=revision, private=private)


def _print_push(result: dict[str, Any]) -> None:
    if result["changed"]:
        print(f"hub: {result['repo_id']} commit {result['commit']} tag {result['tag']}")
    else:
        print(f"hub: {result['repo_id']} already has this version; no commit")


def refresh_command(config: str, push_to_hub: str | None) -> int:
    configure_prefect()
    from flows.refresh import refresh

    result = refresh(config, push_to_hub)
    _print_build(result)
    print(f"version: {result['version']}")
    if "hub" in result:
        _print_push(result["hub"])
    return 0


def serve_command(config: str, cron: str | None, interval: int | None) -> int:
    configure_prefect()
    from flows.refresh import refresh
    from pipelines.project import load_project

    load_project(config)  # fail now on a bad project file, not at the first scheduled run
    name = f"refresh-{Path(config).stem}"
    # One run at a time: runs share one DuckDB store, which only one process may hold.
    parameters = {"config": str(Path(config).resolve())}
    refresh.serve(name=name, cron=cron, interval=interval, parameters=parameters, limit=1)
    return 0


def train_command(args: argparse.Namespace, overrides: list[str]) -> int:
    from trainers.train import train

    print(
        f"trained model: {train(args.kind, args.data, args.model, args.output_dir, args.config, overrides)}"
    )
    return 0


def eval_command(args: argparse.Namespace) -> int:
    from trainers.evaluate import evaluate, format_table, write_result

    result = evaluate(
        args.data, args.model, split=args.split, max_pairs=args.max_pairs, max_states=args.max_pairs
    )
    default = Path(args.model) if Path(args.model).is_dir() else Path(".")
    path = Path(args.output) if args.output else default / f"eval_{args.split}.json"
    write_result(result, path)
    print(format_table([result]))
    print(f"result: {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args, overrides = parser.parse_known_args(argv)
    if overrides and args.command not in ("build", "train"):
        parser.error(f"unrecognized arguments: {' '.join(overrides)}")
    try:
        if args.command == "stats":
            return stats_command(Path(args.out), args.json)
        if args.command == "eval":
            return eval_command(args)
        if args.command == "train":
            return train_command(args, overrides)
        if args.command == "refresh":
            return refresh_command(args.config, args.push_to_hub)
        if args.command == "serve":
            return serve_command(args.config, args.cron, args.interval)
        if args.command == "publish":
            _print_push(_push(args.out, args.repo_id, args.revision, args.private))
            return 0
        return build_command(args, overrides)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"actforge: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
