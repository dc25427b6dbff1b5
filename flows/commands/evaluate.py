"""`actforge eval`: a model's critic judgment and next-action accuracy on a split, and live play."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from actforge.flows import arguments
from actforge.flows.arguments import positive_int, reject_trl_settings
from actforge.pipelines.policy.models import DEFAULT_POLICY
from actforge.pipelines.sources.live import PLAY_STEPS
from actforge.pipelines.text.critic import PROTOCOLS


def make_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "eval", help="critic judgment, next-action accuracy and live play of a model"
    )
    parser.add_argument("--data", help="a dataset folder written by `actforge build`")
    parser.add_argument("--model", default=DEFAULT_POLICY, help="'smollm2' (bundled) or a local model folder")
    parser.add_argument("--split", default="test")
    parser.add_argument("--max-pairs", type=positive_int, help="evaluate at most N pairs (and N states)")
    parser.add_argument(
        "--protocol", choices=PROTOCOLS, help="critic protocol (default: the model's own, or direct)"
    )
    parser.add_argument("--free-text-tokens", type=int, default=64, help="tag rate of free answers (0: skip)")
    parser.add_argument(
        "--play", metavar="SPEC", help="play a live environment, e.g. scienceworld:boil@test:5"
    )
    parser.add_argument(
        "--play-steps", type=positive_int, default=PLAY_STEPS, help="with --play: actions per episode"
    )
    parser.add_argument("--out", help="the JSON result's path (default MODEL/eval_SPLIT.json or ./)")
    parser.set_defaults(execute=run)
    return parser


def check(args: argparse.Namespace) -> None:
    if args.data is None and args.play is None:
        raise ValueError("eval needs --data OUT, --play SPEC, or both")
    if args.data is not None:
        arguments.split(arguments.dataset(args.data, "--data"), args.split, "--split", args.data)
    arguments.play_spec(args.play)
    if args.out is not None:
        arguments.output_dir(str(Path(args.out).parent), "--out")


def run(args: argparse.Namespace, trl: list[str]) -> int:
    reject_trl_settings(trl, "eval")
    check(args)
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

        result["play"] = play(load_policy(args.model), args.play, args.play_steps)
        for task, row in sorted(result["play"]["tasks"].items()):
            print(f"play {task}: mean score {row['mean_score']:.1f}, success {row['success_rate']:.2f}")
    default = Path(args.model) if Path(args.model).is_dir() else Path(".")
    path = Path(args.out) if args.out else default / f"eval_{args.split}.json"
    write_result(result, path)
    print(format_table([result]))
    print(f"result: {path}")
    return 0
