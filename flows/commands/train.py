"""`actforge train KIND`: one TRL run (act, action, sft, dpo), or the recipe that compares them."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from actforge.flows import arguments
from actforge.flows.commands.common import recipe_args, training_arguments
from actforge.pipelines.policy.models import DEFAULT_POLICY
from actforge.schemas.vocab import TRAINING_KINDS


def make_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "train",
        help="train with TRL: act (critic GRPO), action (GRPO), sft (IL), dpo (preference pairs), "
        "recipe (all, compared)",
    )
    parser.add_argument("kind", choices=(*TRAINING_KINDS, "recipe"))
    parser.add_argument("--data", required=True, help="a dataset folder written by `actforge build`")
    parser.add_argument("--model", default=DEFAULT_POLICY, help="'smollm2' (bundled) or a local model folder")
    parser.add_argument("--out", required=True, help="the folder the trained model (or the recipe's) goes to")
    training_arguments(parser)
    parser.set_defaults(execute=run)
    return parser


def check(args: argparse.Namespace, trl: list[str]) -> None:
    """Paths, the TRL settings and config file TRL's own parser accepts, for each stage that will run."""
    from actforge.trainers.recipe import check_overrides
    from actforge.trainers.trl_config import parse_train_args

    data = arguments.dataset(args.data, "--data")
    arguments.split(data, "train", "--data", args.data)
    arguments.output_dir(args.out, "--out")
    arguments.existing_file(args.config, "--config")
    arguments.play_spec(args.play)
    if args.kind == "recipe":
        check_overrides(args.stage3, trl)
        return
    protocol = "direct" if args.protocol == "auto" else args.protocol
    parse_train_args(args.kind, args.config, trl, args.out, protocol)


def run(args: argparse.Namespace, trl: list[str]) -> int:
    check(args, trl)
    if args.kind == "recipe":
        from actforge.trainers.recipe import recipe

        result = recipe(args.data, args.model, args.out, **recipe_args(args, trl))
        print(result["table"])
        print(f"result: {Path(args.out) / 'recipe.json'}")
        return 0
    from actforge.trainers.train import train

    folder = train(
        args.kind,
        args.data,
        args.model,
        args.out,
        args.config,
        trl,
        args.protocol,
        args.objective,
        args.curve_every or 0,
        args.curve_max_pairs,
    )
    print(f"trained model: {folder}")
    return 0
