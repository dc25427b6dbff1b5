"""A build setting and its default are defined once, in `BuildConfig`: the CLI's options, project
files and the flow all take them from there, and a bad value is one clear error wherever it comes in."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

from actforge.flows.cli import _parser, main
from actforge.flows.commands.build import build_config
from actforge.pipelines.config import BuildConfig
from actforge.pipelines.curate.filters import ADMISSIBLE_MODES
from actforge.pipelines.policy.models import policy_name
from actforge.pipelines.project import load_project
from actforge.pipelines.publish.layout import read_manifest
from actforge.pipelines.sources.base import FILE_FORMATS
from actforge.pipelines.text.critic import CRITIC_VERSION
from tests.support.factories import EXAMPLES

FIELDS = dataclasses.fields(BuildConfig)
MINIMAL = ["build", "--source", "a.jsonl", "--out", "o"]


def _build_parser() -> argparse.ArgumentParser:
    subparsers = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return subparsers.choices["build"]


def test_every_field_is_a_build_option_with_the_field_default() -> None:
    actions = {a.dest: a for a in _build_parser()._actions}
    args = _parser().parse_args(MINIMAL)
    config = build_config(args)
    for f in FIELDS:
        action = actions[f.name]
        assert action.help.startswith(f.metadata["help"]), f.name
        assert action.choices == f.metadata.get("choices"), f.name
        if f.name in ("sources", "out"):  # the two settings without a default
            continue
        if f.default not in (None, ()) and not isinstance(f.default, bool):
            assert action.help.endswith(f"(default: {f.default})"), f.name
        assert not hasattr(args, f.name), f.name  # left out, so the field's (or the project's) value holds
        assert getattr(config, f.name) == f.default, f.name
    assert actions["format"].choices == FILE_FORMATS
    assert actions["admissible"].choices == ADMISSIBLE_MODES
    repeated = _parser().parse_args([*MINIMAL, "--drop-outcome", "progresses", "--drop-outcome", "neutral"])
    assert build_config(repeated).drop_outcome == ("progresses", "neutral")
    assert config == BuildConfig(sources=("a.jsonl",), out="o")


def test_a_project_file_builds_and_options_replace_its_settings(tmp_path: Path) -> None:
    project = tmp_path / "p.yaml"
    project.write_text("sources: [x.jsonl]\nout: o\nk: 3\nmax_states: 9\n", encoding="utf-8")
    args = _parser().parse_args(["build", "--project", str(project), "--k", "5", "--out", "elsewhere"])
    config = build_config(args, load_project(project))
    assert (config.k, config.max_states, config.out) == (5, 9, "elsewhere")
    assert config.sources == (str(tmp_path / "x.jsonl"),)  # the file's paths stay relative to it


def test_a_build_without_sources_says_so_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "--out", "o"]) == 2
    assert capsys.readouterr().err == "actforge: error: build needs --source (or --project FILE)\n"
    assert main(["build", "--project", "missing.yaml"]) == 2
    assert capsys.readouterr().err == "actforge: error: --project missing.yaml: no such file\n"


def test_build_options_reach_the_config() -> None:
    argv = [*MINIMAL, "--source", "b.json", "--k", "3", "--temperature", "0.7", "--max-states", "5"]
    argv += ["--admissible", "map", "--history-chars", "0", "--trust-remote-code", "--format", "eto"]
    config = build_config(_parser().parse_args(argv))
    assert config == BuildConfig(
        sources=("a.jsonl", "b.json"),
        out="o",
        k=3,
        temperature=0.7,
        max_states=5,
        admissible="map",
        history_chars=0,
        trust_remote_code=True,
        format="eto",
    )
    assert config.sampling.k == 3 and config.sampling.temperature == 0.7
    assert config.filters.admissible == "map"


@pytest.mark.parametrize("suffix", [".yaml", ".toml"])
def test_minimal_project_file_gets_every_default(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"project{suffix}"
    if suffix == ".toml":
        path.write_text('sources = ["experts"]\nout = "out/ds"\n', encoding="utf-8")
    else:
        path.write_text("sources: [experts]\nout: out/ds\n", encoding="utf-8")
    project = load_project(path)
    expected = BuildConfig(sources=(str(tmp_path / "experts"),), out=str(tmp_path / "out" / "ds"))
    for f in FIELDS:
        assert getattr(project.build, f.name) == getattr(expected, f.name), f.name
    assert project.build == expected
    assert (project.push_to_hub, project.revision, project.private) == (None, None, False)


def test_the_flow_takes_abuild_config() -> None:
    from actforge.flows.build import build
    from actforge.flows.train import build_and_train

    for flow_ in (build, build_and_train):
        parameter = inspect.signature(flow_.fn).parameters["config"]
        assert parameter.annotation in (BuildConfig, "BuildConfig")
    assert list(inspect.signature(build.fn).parameters) == ["config"]


def test_provenance_records_every_content_setting() -> None:
    config = BuildConfig(sources=("x",), out="o", k=3, seed=5, max_states=7, history_chars=100)
    provenance = config.provenance("tiny@1")
    assert (provenance["k"], provenance["seed"], provenance["policy"]) == (3, 5, "tiny@1")
    assert provenance["sampling"] == config.sampling.as_dict()
    assert provenance["filters"] == config.filters.as_dict()
    assert (provenance["max_states"], provenance["history_chars"]) == (7, 100)
    assert provenance["sources"] == ["x"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"k": 0}, "k must be at least 1, got 0"),
        ({"batch_size": 0}, "batch_size must be at least 1"),
        ({"max_states": -2}, "max_states must be 0 or more, got -2"),
        ({"history_chars": -1}, "history_chars must be 0 or more, got -1"),
        (
            {"admissible": "sometimes"},
            "admissible must be one of \\['off', 'map', 'require'\\], not 'sometimes'",
        ),
        ({"format": "csv"}, "format must be one of"),
        ({"top_p": 1.5}, "top_p must be in \\(0, 1\\]"),
        ({"temperature": 0.0}, "temperature must be positive"),
    ],
)
def test_bad_values_are_clear_errors(tmp_path: Path, changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BuildConfig(**changes)
    project = tmp_path / "p.yaml"
    settings = "".join(f"{key}: {json.dumps(value)}\n" for key, value in changes.items())
    project.write_text("sources: [x]\nout: o\n" + settings, encoding="utf-8")
    with pytest.raises(ValueError, match=f"{project}: {message}"):
        load_project(project)


def test_a_build_needs_sources_and_out() -> None:
    BuildConfig()  # a config may lack them until a build
    with pytest.raises(ValueError, match="at least one source and an output folder"):
        BuildConfig(out="o").check_complete()
    with pytest.raises(ValueError, match="at least one source and an output folder"):
        BuildConfig(sources=("x",)).check_complete()


def test_cli_bad_value_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o"
    argv = ["build", "--source", str(EXAMPLES / "native.jsonl"), "--out", str(out), "--max-states", "-2"]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == ["actforge: error: max_states must be 0 or more, got -2"]
    assert not out.exists()


@pytest.mark.slow  # a fresh interpreter imports Prefect
def test_actforge_command_exits_2_on_a_bad_value(tmp_path: Path) -> None:
    actforge = Path(sys.executable).parent / "actforge"
    argv = [str(actforge), "build", "--source", str(EXAMPLES / "native.jsonl"), "--out", str(tmp_path / "o")]
    done = subprocess.run([*argv, "--max-states", "-2"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stdout == ""
    assert [line for line in done.stderr.splitlines() if line.strip()] == [
        "actforge: error: max_states must be 0 or more, got -2"
    ]


@pytest.mark.slow  # the Prefect test server and a real build
@pytest.mark.integration
@pytest.mark.usefixtures("prefect_harness", "hf_offline")
def test_cli_build_records_its_config_in_the_provenance(tmp_path: Path, tiny_model_dir: Path) -> None:
    out = tmp_path / "out"
    argv = ["build", "--source", str(EXAMPLES / "native.jsonl"), "--out", str(out)]
    argv += ["--policy", str(tiny_model_dir), "--k", "2", "--seed", "9", "--max-states", "3"]
    argv += ["--history-chars", "500"]
    assert main(argv) == 0
    expected = BuildConfig(
        sources=(str(EXAMPLES / "native.jsonl"),),
        out=str(out),
        policy=str(tiny_model_dir),
        k=2,
        seed=9,
        max_states=3,
        history_chars=500,
    )
    manifest = read_manifest(out)
    assert manifest["provenance"] == expected.provenance(policy_name(str(tiny_model_dir)))
    assert manifest["provenance"]["k"] == 2 and manifest["stats"]["samples"] == 2 * 3


def test_changing_a_default_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The one line `k: int = _option(4, ...)` changed to 7: the CLI, a project file and what the
    flow samples with all follow, because each of them reads BuildConfig."""
    from actforge.flows.commands import build as build_command
    from actforge.pipelines import project as project_module

    k_field = next(f for f in FIELDS if f.name == "k")

    @dataclasses.dataclass(frozen=True)
    class SevenAlternatives(BuildConfig):
        k: int = dataclasses.field(default=7, metadata=k_field.metadata)

    for module in (build_command, project_module):
        monkeypatch.setattr(module, "BuildConfig", SevenAlternatives)
    args = _parser().parse_args(MINIMAL)
    assert {a.dest: a for a in _build_parser()._actions}["k"].help.endswith("(default: 7)")
    from_cli = build_command.build_config(args)
    project = tmp_path / "p.yaml"
    project.write_text("sources: [x]\nout: o\n", encoding="utf-8")
    from_file = project_module.load_project(project).build
    for config in (from_cli, from_file):
        assert config.k == 7 and config.sampling.k == 7 and config.provenance("p")["k"] == 7


def test_critic_history_budget_and_prompt_version_are_provenance() -> None:
    provenance = BuildConfig(sources=("x.jsonl",), out="o", critic_history_chars=600).provenance("p")
    assert provenance["critic_history_chars"] == 600
    assert provenance["critic_version"] == CRITIC_VERSION
    with pytest.raises(ValueError, match="critic_history_chars must be 0 or more"):
        BuildConfig(sources=("x.jsonl",), out="o", critic_history_chars=-1)
