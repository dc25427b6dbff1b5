"""Checks of the CLI's arguments and paths, run before any work: each failure is one line naming the
argument and what is wrong, which the CLI prints with exit code 2."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, NoReturn


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one line (`--help` still shows the usage)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def dataset(path: str, flag: str) -> dict[str, Any]:
    """The manifest of a dataset folder written by `actforge build`, or a ValueError naming `flag`."""
    from actforge.pipelines.publish.layout import read_manifest

    try:
        return read_manifest(path)
    except FileNotFoundError as err:
        raise ValueError(f"{flag} {err}") from None


def split(manifest: dict[str, Any], name: str, flag: str, data: str) -> None:
    """`name` is a split the dataset has."""
    if name not in manifest["splits"]:
        have = ", ".join(sorted(manifest["splits"])) or "none"
        raise ValueError(f"{flag} {name}: {data} has no {name!r} split (it has: {have})")


def output_dir(path: str, flag: str) -> None:
    """A folder we may create or write into: not a file, and not under a file."""
    for folder in (Path(path), *Path(path).parents):
        if folder.exists():
            if not folder.is_dir():
                what = "is a file" if folder == Path(path) else f"is under {folder}, which is a file"
                raise ValueError(f"{flag} {path}: {what}; give a folder")
            return


def existing_file(path: str | None, flag: str) -> None:
    if path is not None and not Path(path).is_file():
        raise ValueError(f"{flag} {path}: no such file")


def play_spec(spec: str | None, flag: str = "--play") -> None:
    """A live spec the engine can play (task names and variation grammar), checked without the JVM."""
    if spec is None:
        return
    from actforge.pipelines.sources.base import SCIENCEWORLD
    from actforge.pipelines.sources.registry import check_source

    if not spec.startswith(SCIENCEWORLD):
        raise ValueError(f"{flag} {spec}: only live ScienceWorld specs play, e.g. scienceworld:boil@test:5")
    check_source(spec)


def repo_id(name: str, flag: str = "--repo-id") -> None:
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(name)
    except ValueError as err:
        raise ValueError(f"{flag} {name}: {str(err).splitlines()[0]}") from None
    if name.count("/") != 1:
        raise ValueError(f"{flag} {name}: expected NAME/DATASET (your user or organisation, then the name)")


def check(args: argparse.Namespace, overrides: list[str]) -> None:
    """Every argument and path of `train`, `eval`, `publish`, `stats` and `report`, before any work."""
    if args.command in ("stats", "publish", "report"):
        dataset(args.out, "OUT")
    if args.command == "report":
        for run in args.run:
            if not Path(run).is_dir():
                raise ValueError(f"--run {run}: no such folder")
        if args.out_dir is not None:
            output_dir(args.out_dir, "--out-dir")
    if args.command == "publish":
        repo_id(args.repo_id)
    if args.command == "train":
        data = dataset(args.data, "--data")
        split(data, "train", "--data", args.data)
        output_dir(args.output_dir, "--output-dir")
        existing_file(args.config, "--config")
        play_spec(args.play)
        _overrides(args, overrides)
    if args.command == "eval":
        if args.data is None and args.play is None:
            raise ValueError("eval needs --data OUT, --play SPEC, or both")
        if args.data is not None:
            split(dataset(args.data, "--data"), args.split, "--split", args.data)
        play_spec(args.play)
        if args.output is not None:
            output_dir(str(Path(args.output).parent), "--output")


def _overrides(args: argparse.Namespace, overrides: list[str]) -> None:
    """TRL overrides and config file that TRL's own parser accepts, for each stage that will run."""
    from actforge.trainers.recipe import check_overrides
    from actforge.trainers.train import parse_train_args

    if args.kind == "recipe":
        check_overrides(args.stage3, overrides)
        return
    protocol = "direct" if args.protocol == "auto" else args.protocol
    parse_train_args(args.kind, args.config, overrides, args.output_dir, protocol)
