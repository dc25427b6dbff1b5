"""Override strings (`--field value` in TRL's spelling): grouped per field, and split into the model's
settings (TRL's `ModelConfig`: LoRA, dtype) and the training config's (GRPOConfig or SFTConfig)."""

from __future__ import annotations

import dataclasses
from typing import NoReturn

from trl import ModelConfig, TrlParser

# ModelConfig's fields a run takes from overrides; the model itself is always `--model`.
MODEL_FIELDS = frozenset(f.name for f in dataclasses.fields(ModelConfig)) - {
    "model_name_or_path",
    "model_revision",
}


class TrlConfigParser(TrlParser):
    """TRL's parser, whose errors are a ValueError (one line in the CLI) instead of a usage dump."""

    def error(self, message: str) -> NoReturn:
        raise ValueError(f"TRL config: {message}")


def split_overrides(overrides: list[str]) -> list[list[str]]:
    """Override strings grouped per field: ["--a", "1", "--b=2"] -> [["--a", "1"], ["--b=2"]]."""
    groups: list[list[str]] = []
    for token in overrides:
        if token.startswith("--"):
            groups.append([token])
        elif groups:
            groups[-1].append(token)
        else:
            raise ValueError(f"override {token!r} does not follow a --field")
    return groups


def field_of(flag: str) -> str:
    return flag[2:].split("=", 1)[0]


def model_config(overrides: list[str]) -> tuple[ModelConfig, list[str]]:
    """The model settings the overrides give (LoRA with `--use_peft`, `--dtype`), and the rest."""
    groups = split_overrides(overrides)
    mine = [t for g in groups if field_of(g[0]) in MODEL_FIELDS for t in g]
    rest = [t for g in groups if field_of(g[0]) not in MODEL_FIELDS for t in g]
    (parsed,) = TrlConfigParser(ModelConfig).parse_args_and_config(mine)
    return parsed, rest
