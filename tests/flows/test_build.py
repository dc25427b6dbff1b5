"""The `build` flow end to end under Prefect's test harness, on real files and a real tiny model.

The files mix good and malformed ETO, AgentGym, messages and native records: every good
trajectory is built, every bad record is quarantined with a reason that `actforge stats` shows,
and a second identical build adds nothing and calls no policy (a third is answered before Prefect).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import datasets
import huggingface_hub.constants
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from huggingface_hub import HfApi

from actforge.flows.cli import main
from actforge.pipelines.config import BuildConfig
from actforge.pipelines.publish.layout import read_manifest
from actforge.pipelines.sources.hub import parse_spec
from actforge.pipelines.sources.registry import collect
from actforge.pipelines.steps import unchanged
from actforge.pipelines.text.actions import normalise
from tests.support.factories import EXAMPLES
from tests.support.hub_datasets import SPECS, trajectory_repos, upload
from tests.support.hub_server import TOKEN, HubServer

MIXED = EXAMPLES / "mixed"

# The Prefect test server; the recipe test also trains with TRL and plays in the JVM.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.usefixtures("prefect_harness", "hf_offline"),
]


def _build(out: Path, tiny_model_dir: Path) -> dict:
    from actforge.flows.build import build

    return build(BuildConfig(sources=(str(MIXED),), out=str(out), policy=str(tiny_model_dir), k=3, seed=7))


def test_build_mixed_files_end_to_end(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    expected = collect(str(MIXED), progress=False)
    first = _build(out, tiny_model_dir)

    stats = first["stats"]
    assert stats["trajectories"] == expected.trajectories.num_rows == 10
    assert stats["quarantined"] == expected.quarantined.num_rows == 25
    assert set(stats["quarantined_by_reason"]) == {
        "invalid_json", "missing_field", "wrong_type", "no_action", "undecodable_bytes", "turn_order",
        "unknown_role", "unknown_format",
    }  # fmt: skip
    n_states = expected.steps.num_rows
    assert n_states == sum(expected.trajectories["num_steps"].to_pylist())
    assert stats["states"] == n_states
    assert first["run"]["policy_calls"] == n_states
    assert stats["samples"] == first["run"]["samples_added"] == 3 * n_states
    assert stats["pairs"] == first["run"]["pairs_added"] > 0

    loaded = datasets.load_dataset(str(out))
    rows = [row for split in loaded.values() for row in split]
    assert len(rows) == stats["pairs"]
    assert len({r["pair_id"] for r in rows}) == len(rows)
    assert all(
        normalise(r["alternative_action"], r["environment"])
        != normalise(r["expert_action"], r["environment"])
        for r in rows
    )
    by_trajectory: dict[str, set[str]] = {}
    for split, table in loaded.items():
        for r in table:
            by_trajectory.setdefault(r["trajectory_id"], set()).add(split)
    assert all(len(splits) == 1 for splits in by_trajectory.values())
    shard_bytes = {p.name: p.read_bytes() for p in (out / "data").iterdir()}

    second = _build(out, tiny_model_dir)
    assert second["run"] == {
        "trajectories_added": 0, "quarantined_added": 0, "states_added": 0, "samples_added": 0,
        "pairs_added": 0, "policy_calls": 0, "quarantined": 25,
    }  # fmt: skip
    assert second["stats"] == stats
    assert {p.name: p.read_bytes() for p in (out / "data").iterdir()} == shard_bytes

    assert main(["stats", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert {k: printed[k] for k in ("trajectories", "states", "samples", "pairs", "quarantined")} == {
        "trajectories": 10, "states": n_states, "samples": 3 * n_states, "pairs": stats["pairs"],
        "quarantined": 25,
    }  # fmt: skip
    assert main(["stats", str(out)]) == 0
    table = capsys.readouterr().out
    assert "quarantined reason: undecodable_bytes" in table
    assert "quarantined reason: turn_order" in table


def _native(instruction: str, action: str = "open door") -> dict:
    steps = [
        {"observation": "You see a door.", "action": action},
        {"observation": "Open.", "action": "go in"},
    ]
    return {"task": "enter", "environment": "scienceworld", "split": "train", "instruction": instruction,
            "steps": steps}  # fmt: skip


def _lines(*records: object) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


# Generated bad files beside the mixed ones: file name -> (content, good records in it).
BAD_FILES: dict[str, tuple[bytes, int]] = {
    "deep.jsonl": ((_lines(_native("deep ok")) + "[" * 100_000 + "]" * 100_000 + "\n").encode(), 1),
    "surrogate.jsonl": (_lines(_native("fine"), _native("lone \ud800 surrogate")).encode(), 1),
    "utf16.json": (json.dumps([_native("utf16 ok")]).encode("utf-16"), 1),
    "utf16-no-bom.jsonl": (_lines(_native("no bom")).encode("utf-16-le"), 0),
    "pretty.json": (json.dumps(_native("pretty ok"), indent=2).encode(), 1),
    "note-first.jsonl": (_lines("exported by hand, see below", _native("after note")).encode(), 1),
    "actions.jsonl": (
        _lines(_native("empty", ""), _native("blank", "  \t"), _native("ansi", "open\x1b[31m door"),
               _native("bell", "ring\x07"), _native("long", "go " * 400), _native("actions ok")).encode(),
        1,
    ),
    "broken.parquet": (b"not parquet", 0),
    "empty.jsonl": (b"", 0),
}  # fmt: skip
BAD_REASONS = {
    "too_deep": 1, "unencodable_text": 1, "encoding": 1, "wrong_type": 1, "empty_action": 2,
    "control_characters": 2, "overlong_action": 1, "not_parquet": 1, "empty_file": 1,
}  # fmt: skip


def test_a_build_over_mixed_and_generated_bad_files_never_stops_and_counts_every_reason(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    experts = tmp_path / "experts"
    shutil.copytree(MIXED, experts / "mixed")
    for name, (content, _good) in BAD_FILES.items():
        (experts / name).write_bytes(content)
    mixed = collect(str(MIXED), progress=False)
    out = tmp_path / "out"
    argv = ["build", "--source", str(experts), "--out", str(out), "--policy", str(tiny_model_dir), "--k", "2"]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(["stats", str(out), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    good = sum(n for _content, n in BAD_FILES.values())
    assert stats["trajectories"] == mixed.trajectories.num_rows + good  # every good record kept
    expected = dict(pa_counts(mixed.quarantined["reason"]))
    for reason, n in BAD_REASONS.items():
        expected[reason] = expected.get(reason, 0) + n
    assert stats["quarantined_by_reason"] == expected  # every bad one, by its specific reason
    assert stats["quarantined"] == sum(expected.values())


def pa_counts(column: pa.ChunkedArray) -> dict[str, int]:
    return {row["values"]: row["counts"] for row in column.value_counts().to_pylist()}


def test_cli_reports_user_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", str(tmp_path / "missing")]) == 2
    assert "actforge build" in capsys.readouterr().err
    assert main(["build", "--source", "scienceworld:no-such-task", "--out", str(tmp_path / "o")]) == 2
    assert "no-such-task" in capsys.readouterr().err


def test_build_then_recipe_covers_all_rows_and_plays(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, runs = tmp_path / "out", tmp_path / "recipe"
    argv = ["build", "--source", str(MIXED), "--out", str(out), "--policy", str(tiny_model_dir), "--k", "2"]
    argv += ["--train", "--train-out", str(runs), "--eval-max-pairs", "4", "--protocol", "direct"]
    argv += ["--play", "scienceworld:find-non-living-thing@test:1", "--play-steps", "2"]
    argv += ["--stage3-max-steps", "1"]
    argv += ["--", "--max_steps", "2", "--num_generations", "2", "--save_strategy", "no"]  # TRL settings
    assert main(argv) == 0
    printed = capsys.readouterr().out
    summary = json.loads((runs / "recipe.json").read_text())
    names = ["base", "ACT", "DPO", "IL", "IL w/ ACT", "RL", "RL w/ ACT"]
    assert set(summary["results"]) == set(names) and summary["protocol"] == "direct"
    table_names = [line.split("  ")[0].strip() for line in summary["table"].splitlines()[2:]]
    assert table_names == names
    assert summary["models"]["base"] == str(tiny_model_dir)
    # Stage 3 with ACT starts from the stage-2 checkpoint; the baselines from the base model.
    for name, folder in (
        ("ACT", "act"),
        ("DPO", "dpo"),
        ("IL", "il"),
        ("IL w/ ACT", "il-act"),
        ("RL", "rl"),
        ("RL w/ ACT", "rl-act"),
    ):
        assert summary["models"][name] == str(runs / folder)
        assert (runs / folder / "config.json").is_file()
        steps = json.loads((runs / folder / "trainer_state.json").read_text())["global_step"]
        assert steps == (2 if name == "ACT" else 1)  # stage 3 takes --stage3-max-steps
    for stage, start in (("il", "il-act"), ("rl", "rl-act")):
        assert json.loads((runs / stage / "actforge.json").read_text())["base"] == str(tiny_model_dir)
        assert json.loads((runs / start / "actforge.json").read_text())["base"] == str(runs / "act")
    for name in names:
        result = summary["results"][name]
        assert result["critic"]["pairs"] <= 4 and result["action"]["n"] <= 4
        assert len(result["play"]["episodes"]) == 1 and result["play"]["episodes"][0]["steps"] <= 2
    assert summary["table"] in printed
    act = datasets.load_dataset(str(out), "act", split="train")
    assert {"prompt", "expert_slot"} <= set(act.column_names)


def test_a_build_from_hub_datasets_pins_their_commits_and_a_rebuild_only_resolves_them(
    tmp_path: Path, tiny_model_dir: Path, hub: HubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The four dataset shapes from the loopback Hub: pairs whose provenance (each trajectory's
    `source`, the manifest and the card) names the commit read; unchanged commits rebuild nothing
    and cost one revision lookup per source (the check before work and the collection's cache key)."""
    from actforge.flows.build import build

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    commits = upload(HfApi(token=TOKEN), trajectory_repos())
    out = tmp_path / "ds"
    config = BuildConfig(sources=tuple(SPECS.values()), out=str(out), policy=str(tiny_model_dir), k=2, seed=3)
    first = build(config)
    pinned = sorted(parse_spec(spec).at(commits[repo]) for repo, spec in SPECS.items())
    manifest = read_manifest(out)
    assert manifest["provenance"]["pinned"] == pinned
    assert all(spec in (out / "README.md").read_text(encoding="utf-8") for spec in pinned)
    assert first["stats"]["pairs"] > 0 and first["stats"]["quarantined"] == 0
    sources = pa.concat_tables(
        pq.read_table(p, columns=["source"]) for p in sorted((out / "data").glob("*.parquet"))
    )
    assert set(sources["source"].to_pylist()) <= set(pinned)

    hub.requests.clear()
    second = build(config)
    assert second["version"] == first["version"] and second["run"]["policy_calls"] == 0
    revisions = {f"/api/datasets/{parse_spec(spec).repo_id}/revision/main" for spec in SPECS.values()}
    assert {path for _, path in hub.requests} == revisions
    assert len(hub.requests) == 2 * len(SPECS)


def test_a_build_reports_a_first_state_shared_by_two_splits_and_drops_it_from_test(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    """Two runs of one task that start from the same state, one in train and one in test: the
    build counts the repeated prompt, and `--leakage drop` leaves it out of test only."""
    first = {"observation": "You are in the kitchen. A fridge is here.", "action": "open fridge"}
    runs = [
        {"task": "get food", "instruction": "get food", "split": split, "environment": "generic",
         "steps": [first, {"observation": f"{food} is in the fridge.", "action": f"take {food}"}]}
        for split, food in (("train", "milk"), ("test", "eggs"))
    ]  # fmt: skip
    source = tmp_path / "runs.jsonl"
    source.write_text("".join(json.dumps(run) + "\n" for run in runs), encoding="utf-8")
    argv = ["build", "--source", str(source), "--policy", str(tiny_model_dir), "--k", "2", "--seed", "3"]
    assert main([*argv, "--out", str(tmp_path / "r")]) == 0
    reported = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert reported["stats"]["leakage"]["states_in_several_splits"] == 2
    assert main([*argv, "--out", str(tmp_path / "d"), "--leakage", "drop"]) == 0
    dropped = json.loads((tmp_path / "d" / "manifest.json").read_text())
    assert dropped["stats"]["leakage"]["states_dropped"] == 1
    test_states = {row["step_index"] for row in datasets.load_dataset(str(tmp_path / "d"), split="test")}
    assert test_states == {1}  # the shared first state left test; the second one stayed
    assert dropped["splits"]["train"] == reported["splits"]["train"]


def test_a_rerun_with_nothing_to_do_is_answered_without_prefect(tmp_path: Path, tiny_model_dir: Path) -> None:
    """After a complete build, the same build prints its counts (nothing added) from the store's
    stamp, before Prefect: here its API is unreachable, so a flow run would fail. A changed file,
    setting, store or folder sends the build through the flow again."""
    from actforge.flows.build import build

    source = tmp_path / "one.jsonl"
    lines = (EXAMPLES / "native.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    source.write_text(lines[0], encoding="utf-8")
    config = BuildConfig(
        sources=(str(source),), out=str(tmp_path / "out"), policy=str(tiny_model_dir), k=2, seed=7
    )
    first = build(config)
    quiet = {key: value if key == "quarantined" else 0 for key, value in first["run"].items()}
    assert first["run"]["samples_added"] > 0
    assert unchanged(config) == first | {"run": quiet}

    actforge = Path(sys.executable).parent / "actforge"
    argv = [
        str(actforge),
        "build",
        "--source",
        str(source),
        "--out",
        config.out,
        "--policy",
        str(tiny_model_dir),
    ]
    unreachable = os.environ | {"PREFECT_API_URL": "http://127.0.0.1:9/api"}
    done = subprocess.run(
        [*argv, "--k", "2", "--seed", "7"], capture_output=True, text=True, env=unreachable, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout.splitlines()[0]
        == "run: +0 trajectories, +0 states, +0 samples (0 policy calls), +0 pairs, 0 quarantined"
    )
    assert f"dataset: {config.out}" in done.stdout

    assert unchanged(dataclasses.replace(config, k=3)) is None
    assert unchanged(dataclasses.replace(config, format="native")) is None
    source.write_text(lines[0] + lines[1], encoding="utf-8")
    assert unchanged(config) is None
    source.write_text(lines[0], encoding="utf-8")  # the same bytes again: the same stamp
    assert unchanged(config) is not None
    build(dataclasses.replace(config, out=str(tmp_path / "other"), store=str(config.store_path), seed=8))
    assert unchanged(config) is None  # the store gained the other build's samples
    build(config)
    assert unchanged(config) is not None
    (Path(config.out) / "manifest.json").unlink()
    assert unchanged(config) is None
