"""The `actforge` command line: `build` (optionally `--train`), `stats`, `train` and `eval`.

Arguments this parser does not know are TRL config overrides (`--max_steps 20`, `--beta 0.04`) and
go to TRL's own parser, so every TRL field is settable without being declared here.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from actforge.flows import arguments
from actforge.flows.arguments import OneLineParser, positive_int
from actforge.flows.settings import configure_prefect, prefect_api
from actforge.pipelines.config import BuildConfig
from actforge.pipelines.curate.filters import OUTCOMES
from actforge.pipelines.policy.models import DEFAULT_POLICY
from actforge.pipelines.text.critic import OBJECTIVES, PROTOCOLS

SUMMARY_KEYS = ("trajectories", "states", "samples", "pairs", "quarantined")


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="actforge", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build a critique dataset from expert trajectories")
    _build_arguments(b)
    b.add_argument("--push-to-hub", metavar="NAME/DATASET", help="push the published version to the Hub")
    b.add_argument("--train", action="store_true", help="then run the ACT recipe on the built dataset")
    b.add_argument("--output-dir", help="with --train: where the recipe's models go (default OUT-recipe)")
    _recipe_arguments(b)
    t = sub.add_parser(
        "train", help="train with TRL: act (critic GRPO), action (GRPO), sft (IL), recipe (all, compared)"
    )
    t.add_argument("kind", choices=("act", "action", "sft", "recipe"))
    t.add_argument("--data", required=True, help="a dataset folder written by `actforge build`")
    t.add_argument("--model", default=DEFAULT_POLICY, help="'smollm2' (bundled) or a local model folder")
    t.add_argument("--output-dir", required=True)
    _recipe_arguments(t)
    e = sub.add_parser("eval", help="critic judgment, next-action accuracy and live play of a model")
    e.add_argument("--data", help="a dataset folder written by `actforge build`")
    e.add_argument("--model", default=DEFAULT_POLICY, help="'smollm2' (bundled) or a local model folder")
    e.add_argument("--split", default="test")
    e.add_argument("--max-pairs", type=positive_int, help="evaluate at most N pairs (and N states)")
    e.add_argument(
        "--protocol", choices=PROTOCOLS, help="critic protocol (default: the model's own, or direct)"
    )
    e.add_argument("--free-text-tokens", type=int, default=64, help="tag rate of free answers (0: skip)")
    e.add_argument("--play", metavar="SPEC", help="play a live environment, e.g. scienceworld:boil@test:5")
    e.add_argument("--max-steps", type=positive_int, default=30, help="with --play: actions per episode")
    e.add_argument("--output", help="write the JSON result here (default MODEL/eval_SPLIT.json or ./)")
    r = sub.add_parser("refresh", help="rebuild a project incrementally; new version only on change")
    r.add_argument("--config", required=True, help="project file (YAML or TOML)")
    r.add_argument(
        "--push-to-hub", metavar="NAME/DATASET", help="push a new version here (overrides the file)"
    )
    r.add_argument("--with-report", action="store_true", help="add the report's plots to OUT and its card")
    v = sub.add_parser("serve", help="serve the refresh flow on a schedule (needs a Prefect server)")
    v.add_argument("--config", required=True, help="project file (YAML or TOML)")
    when = v.add_mutually_exclusive_group(required=True)
    when.add_argument("--cron", help='cron schedule, e.g. "0 3 * * *"')
    when.add_argument("--interval", type=positive_int, help="run every N seconds")
    p = sub.add_parser("publish", help="push a built dataset to the Hugging Face Hub as one commit")
    p.add_argument("out", help="a folder written by `actforge build`")
    p.add_argument("--repo-id", required=True, metavar="NAME/DATASET")
    p.add_argument("--revision", help="branch to commit to (default main)")
    p.add_argument("--private", action="store_true", help="create the repo private if it does not exist")
    s = sub.add_parser("stats", help="print the counts of a built dataset")
    s.add_argument("out", help="a folder written by `actforge build`")
    s.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    g = sub.add_parser("report", help="plots and one HTML page of a built dataset and its training runs")
    g.add_argument("out", help="a folder written by `actforge build`")
    g.add_argument(
        "--run", action="append", default=[], metavar="DIR", help="a training run folder; repeatable"
    )
    g.add_argument("--out-dir", help="where the plots and report.html go (default: OUT.report beside OUT)")
    for command in sub.choices.values():
        command.add_argument(
            "--verbose", action="store_true", help="on an error, show the traceback (and Prefect's)"
        )
    return parser


def _build_arguments(parser: argparse.ArgumentParser) -> None:
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


def _recipe_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by `train` and `build --train` (which runs the recipe)."""
    parser.add_argument("--config", help="a YAML file of TRL config fields (GRPOConfig or SFTConfig)")
    parser.add_argument(
        "--protocol",
        default="auto",
        choices=("auto", *PROTOCOLS),
        help="critic answer protocol (act, recipe)",
    )
    parser.add_argument(
        "--objective",
        default="auto",
        choices=OBJECTIVES,
        help="critic objective: exact (GRPO's expectation, one forward per prompt; direct protocol only), "
        "grpo (TRL's sampled GRPO), auto (exact for direct, grpo for reason)",
    )
    parser.add_argument(
        "--curve-every",
        type=positive_int,
        help="critic: score validation and test pairs every N steps and keep the best validation step",
    )
    parser.add_argument("--curve-max-pairs", type=positive_int, help="with --curve-every: pairs per split")
    parser.add_argument("--stage3", default="both", choices=("action", "sft", "both"), help="recipe: stage 3")
    parser.add_argument("--play", metavar="SPEC", help="recipe: also play this live spec with every model")
    parser.add_argument(
        "--play-steps", type=positive_int, default=30, help="recipe: actions per played episode"
    )
    parser.add_argument(
        "--eval-max-pairs", type=positive_int, help="recipe: evaluate on at most N pairs and states"
    )
    parser.add_argument(
        "--stage3-max-steps",
        type=positive_int,
        help="recipe: max_steps of each stage-3 run (default: the --max_steps every stage takes)",
    )


def _table(stats: dict[str, Any]) -> str:
    lines = [f"{key:<14}{stats[key]:>8}" for key in SUMMARY_KEYS]
    for key in ("samples_by_verdict", "samples_by_reason", "pairs_by_split", "quarantined_by_reason"):
        for name, count in sorted(stats.get(key, {}).items()):
            lines.append(f"  {key.replace('_by_', ' ')}: {name:<22}{count:>8}")
    for name, count in sorted(stats.get("pairs_rejected", {}).items()):
        lines.append(f"  pairs rejected: {name:<22}{count:>8}")
    for environment, sides in sorted(stats.get("outcomes", {}).items()):
        lines.append(f"  verified outcomes in {environment} (alternatives / expert actions):")
        for outcome in OUTCOMES:
            alternative, expert = (sides.get(side, {}).get(outcome, 0) for side in ("alternative", "expert"))
            if alternative or expert:
                lines.append(f"    {outcome:<12}{alternative:>8} /{expert:>6}")
    return "\n".join(lines)


def stats_command(out: Path, as_json: bool) -> int:
    from actforge.pipelines.publish.layout import read_manifest

    stats = read_manifest(out)["stats"]
    print(json.dumps(stats, sort_keys=True) if as_json else _table(stats))
    return 0


def report_command(out: Path, runs: list[Path], out_dir: str | None) -> int:
    from actforge.pipelines.publish.report import write_report

    target = Path(out_dir) if out_dir else out.parent / f"{out.name}.report"
    written = write_report(out, runs, target)
    print(f"report: {len(written) - 1} plots and {written[-1]} (open it in a browser)")
    return 0


def _build_config(args: argparse.Namespace) -> BuildConfig:
    return BuildConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(BuildConfig)})


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
    config = _build_config(args)
    config.check_ready()  # sources and paths before any work (and before Prefect starts)
    if args.train:
        from actforge.trainers.recipe import check_overrides

        check_overrides(args.stage3, overrides)  # fail on a bad override before building
    elif overrides:
        raise ValueError(f"unrecognized arguments: {' '.join(overrides)} (TRL overrides need --train)")
    with prefect_api(args.verbose):
        if not args.train:
            from actforge.flows.build import build
            from actforge.flows.runners import on_runner

            result = on_runner(build, config)(config)
            _print_build(result)
            if args.push_to_hub:
                _print_push(_push(result["out"], args.push_to_hub, None, False))
            return 0
        from actforge.flows.train import build_and_train

        result = build_and_train(
            config=config,
            output_dir=args.output_dir or f"{args.out.rstrip('/')}-recipe",
            recipe_args=_recipe_args(args, overrides),
        )
    _print_build(result["build"])
    print(result["recipe"]["table"])
    return 0


def _recipe_args(args: argparse.Namespace, overrides: list[str]) -> dict[str, Any]:
    return {
        "stage3": args.stage3,
        "config": args.config,
        "overrides": overrides,
        "protocol": args.protocol,
        "objective": args.objective,
        "curve_every": args.curve_every or 0,
        "curve_max_pairs": args.curve_max_pairs,
        "play_spec": args.play,
        "play_steps": args.play_steps,
        "eval_max_pairs": args.eval_max_pairs,
        "stage3_max_steps": args.stage3_max_steps,
    }


def _push(out: str, repo_id: str, revision: str | None, private: bool) -> dict[str, Any]:
    from actforge.pipelines.publish.hub import push_dataset

    return push_dataset(Path(out), repo_id, revision=revision, private=private)


def _print_push(result: dict[str, Any]) -> None:
    """One line: what this push did (committed, tagged, or nothing)."""
    where = f"hub: {result['repo_id']}@{result['revision']}"
    if result["commit"]:
        print(f"{where} commit {result['commit']} tag {result['tag']}")
    elif result["tag"]:
        print(f"{where} already had this version; tagged it {result['tag']}")
    else:
        print(f"{where} already has this version; no commit")


def refresh_command(config: str, push_to_hub: str | None, with_report: bool, verbose: bool) -> int:
    from actforge.pipelines.project import load_project

    arguments.existing_file(config, "--config")
    project = load_project(config)
    project.build.check_ready()  # the project's sources and paths before any work
    with prefect_api(verbose):
        from actforge.flows.refresh import refresh
        from actforge.flows.runners import on_runner

        result = on_runner(refresh, project.build)(config, push_to_hub, with_report)
    _print_build(result)
    print(f"version: {result['version']}")
    if "hub" in result:
        _print_push(result["hub"])
    return 0


def serve_command(config: str, cron: str | None, interval: int | None) -> int:
    arguments.existing_file(config, "--config")
    configure_prefect(verbose=True)  # served runs keep their logs in the UI
    from actforge.flows.refresh import refresh
    from actforge.pipelines.project import load_project

    load_project(config)  # fail now on a bad project file, not at the first scheduled run
    name = f"refresh-{Path(config).stem}"
    # One run at a time: runs share one DuckDB store, which only one process may hold.
    parameters = {"config": str(Path(config).resolve())}
    # Ctrl-C stops the runner the way SIGTERM does (its own graceful stop: no new runs, in-flight runs
    # ended, then `serve` returns). Left to asyncio, SIGINT only cancels the runner's main task, and
    # that cancellation was seen lost: 30 s after the signal serve's loop still waited and a child
    # process had started 27 s after it (tests/test_schedule.py, on a fresh clone).
    signal.signal(signal.SIGINT, lambda _signum, _frame: os.kill(os.getpid(), signal.SIGTERM))
    refresh.serve(name=name, cron=cron, interval=interval, parameters=parameters, limit=1)
    return 0


def train_command(args: argparse.Namespace, overrides: list[str]) -> int:
    if args.kind == "recipe":
        from actforge.trainers.recipe import recipe

        result = recipe(args.data, args.model, args.output_dir, **_recipe_args(args, overrides))
        print(result["table"])
        print(f"result: {Path(args.output_dir) / 'recipe.json'}")
        return 0
    from actforge.trainers.train import train

    folder = train(
        args.kind,
        args.data,
        args.model,
        args.output_dir,
        args.config,
        overrides,
        args.protocol,
        args.objective,
        args.curve_every or 0,
        args.curve_max_pairs,
    )
    print(f"trained model: {folder}")
    return 0


def eval_command(args: argparse.Namespace) -> int:
    from actforge.trainers.evaluate import evaluate, format_table, write_result
    from actforge.trainers.train import run_protocol

    result: dict[str, Any] = {"model": args.model, "critic": {}, "action": {}}
    if args.data is not None:
        protocol = args.protocol or run_protocol(args.model) or "direct"
        result = evaluate(
            args.data,
            args.model,
            args.split,
            args.max_pairs,
            args.max_pairs,
            protocol,
            free_text_tokens=args.free_text_tokens,
        )
    if args.play is not None:
        from actforge.pipelines.policy.models import load_policy
        from actforge.trainers.play import play

        result["play"] = play(load_policy(args.model), args.play, args.max_steps)
        for task, row in sorted(result["play"]["tasks"].items()):
            print(f"play {task}: mean score {row['mean_score']:.1f}, success {row['success_rate']:.2f}")
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
        arguments.check(args, overrides)
        if args.command == "stats":
            return stats_command(Path(args.out), args.json)
        if args.command == "report":
            return report_command(Path(args.out), [Path(r) for r in args.run], args.out_dir)
        if args.command == "eval":
            return eval_command(args)
        if args.command == "train":
            return train_command(args, overrides)
        if args.command == "refresh":
            return refresh_command(args.config, args.push_to_hub, args.with_report, args.verbose)
        if args.command == "serve":
            return serve_command(args.config, args.cron, args.interval)
        if args.command == "publish":
            _print_push(_push(args.out, args.repo_id, args.revision, args.private))
            return 0
        return build_command(args, overrides)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        if args.verbose:
            raise
        print(f"actforge: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
