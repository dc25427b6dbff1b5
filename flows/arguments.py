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
    from actforge.pipelines.sources.base import is_live
    from actforge.pipelines.sources.registry import check_source

    if not is_live(spec):
        raise ValueError(
            f"{flag} {spec}: only live specs play, e.g. scienceworld:boil@test:5 or twx:twc@test:5"
        )
    check_source(spec)


def repo_id(name: str, flag: str = "--repo-id") -> None:
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(name)
    except ValueError as err:
        raise ValueError(f"{flag} {name}: {str(err).splitlines()[0]}") from None
    if name.count("/") != 1:
        raise ValueError(f"{flag} {name}: expected NAME/DATASET (your user or organisation, then the name)")


# Spellings earlier versions took, and the one flag each became (one vocabulary across commands).
RENAMED = {
    "--output-dir": "--out (train) or --train-out (build --train)",
    "--out-dir": "--out",
    "--output": "--out",
    "--push-to-hub": "--repo-id",
    "--max-steps": "--play-steps",
    "--config": "--project",  # refresh and serve only: train's --config is a TRL YAML
}


def renamed_flag(argv: list[str]) -> str | None:
    """A one-line hint for a flag spelled as an earlier version took it, or None."""
    command = next((token for token in argv if not token.startswith("-")), "")
    for token in argv:
        flag = token.split("=", 1)[0]
        if flag == "--config" and command not in ("refresh", "serve"):
            continue
        if flag in RENAMED:
            return f"{flag} is now {RENAMED[flag]}"
    return None


def reject_trl_settings(trl: list[str], where: str) -> None:
    if trl:
        raise ValueError(f"{where} takes no TRL settings, got: {' '.join(trl)}")
