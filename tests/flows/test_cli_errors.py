"""Every error a user causes by arguments or paths is one line on stderr and exit code 2, found
before any work starts (no Prefect server, no model); a store that cannot be opened says why."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from actforge.flows.cli import main
from actforge.pipelines.store.database import Store
from tests.support.factories import EXAMPLES, LEGACY, publish_pairs

NATIVE = str(EXAMPLES / "native.jsonl")


def _one_error_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert line.startswith("actforge: error: ")
    return line.removeprefix("actforge: error: ")


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--source", "csv:trajectories.csv", "--out", "o"], "unknown format 'csv'"),
        (["--source", "missing.jsonl", "--out", "o"], "no such file or folder 'missing.jsonl'"),
        (["--source", "scienceworld:no-such-task", "--out", "o"], "unknown ScienceWorld task"),
        (["--source", NATIVE, "--out", "o", "--k", "0"], "k must be at least 1, got 0"),
        (["--source", NATIVE, "--out", "o", "--max-states", "-2"], "max_states must be 0 or more"),
        (["--source", NATIVE, "--out", NATIVE], "exists and is not a folder"),
        (["--source", NATIVE, "--out", "o", "--store", "o"], "the same path as --out"),
        (["--source", NATIVE, "--out", "o", "--store", f"{NATIVE}/s.duckdb"], "is a file, not a folder"),
        (["--source", NATIVE, "--out", "o", "--store", "."], "is a folder, not a DuckDB file"),
        (["--source", NATIVE, "--out", "o", "--cache-dir", NATIVE], "exists and is not a folder"),
    ],
)
def test_build_argument_errors_are_one_line_before_any_work(
    extra: list[str], expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    assert expected in _one_error_line(["build", *extra], capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written: no store, no out


def test_refresh_checks_the_project_before_any_work(tmp_path: Path, capsys) -> None:
    project = tmp_path / "p.yaml"
    project.write_text("sources: [missing]\nout: out/ds\n", encoding="utf-8")
    assert "no such file or folder" in _one_error_line(["refresh", "--project", str(project)], capsys)
    assert not (tmp_path / "out").exists()


# Commands over a published dataset `ds` (train, validation and test splits) and a file `f`.
ACT = ["train", "act", "--data", "ds", "--out", "o"]
DATASET_ERRORS = [
    (["stats", "missing"], "DATA missing: no such folder"),
    (["stats", "f"], "DATA f: a file, not a dataset folder"),
    (["stats", "empty"], "DATA empty: no readable manifest.json"),
    (["publish", "missing", "--repo-id", "me/ds"], "DATA missing: no such folder"),
    (["publish", "ds", "--repo-id", "bad//id"], "--repo-id bad//id: Repo id must be in the form"),
    (["publish", "ds", "--repo-id", "justaname"], "--repo-id justaname: expected NAME/DATASET"),
    (["eval", "--model", "m"], "eval needs --data OUT, --play SPEC, or both"),
    (["eval", "--data", "missing"], "--data missing: no such folder"),
    (["eval", "--data", "f"], "--data f: a file, not a dataset folder"),
    (["eval", "--data", "ds", "--split", "dev"], "--split dev: ds has no 'dev' split (it has: test, train, "),
    (["eval", "--play", "scienceworld:no-such-task"], "unknown ScienceWorld task"),
    (["eval", "--play", "twx:nosuchgame"], "unknown TextWorld Express game"),
    (["eval", "--play", "native.jsonl"], "--play native.jsonl: only live specs play"),
    (["eval", "--data", "ds", "--out", "f/result.json"], "--out f: is a file; give a folder"),
    (["train", "act", "--data", "missing", "--out", "o"], "--data missing: no such folder"),
    (["train", "act", "--data", "ds", "--out", "f"], "--out f: is a file; give a folder"),
    (["train", "sft", "--data", "ds", "--out", "f/o"], "--out f/o: is under f, which is a"),
    ([*ACT, "--config", "no.yaml"], "--config no.yaml: no such file"),
    ([*ACT, "--", "--bogus", "3"], "not used by the HfArgumentParser"),
    ([*ACT, "--", "--max_steps", "x"], "TRL config: argument --max_steps"),
    (["eval", "--data", "ds", "--", "--max_steps", "2"], "eval takes no TRL settings, got: --max_steps 2"),
    (["build", "--source", "x.jsonl", "--out", "o", "--", "--beta", "1"], "TRL settings"),
    (["train", "recipe", "--data", "ds", "--out", "o", "--play", "scienceworld:x"], "unknown Science"),
    (["refresh", "--project", "no.yaml"], "--project no.yaml: no such file"),
    (["serve", "--project", "no.yaml", "--interval", "60"], "--project no.yaml: no such file"),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "expected"), DATASET_ERRORS, ids=[" ".join(a) for a, _ in DATASET_ERRORS])
def test_every_commands_argument_errors_are_one_line_before_any_work(
    argv: list[str], expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    publish_pairs(tmp_path / "ds")
    (tmp_path / "f").write_text("a file", encoding="utf-8")
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert expected in _one_error_line(argv, capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, no model loaded


@pytest.mark.parametrize(
    "argv",
    [
        ["eval", "--data", "ds", "--max-pairs", "-3"],
        ["eval", "--data", "ds", "--play-steps", "0"],
        ["train", "recipe", "--data", "ds", "--out", "o", "--eval-max-pairs", "-1"],
        ["serve", "--project", "p.yaml", "--interval", "0"],
        ["train", "act", "--data", "ds", "--out", "o", "--max_steps", "2"],  # TRL settings go after --
        ["stats"],
        ["nosuch"],
    ],
)
def test_argparse_errors_are_one_line_too(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("actforge") and ": error: " in line and "--help" in line


RENAMED = [
    (["train", "act", "--data", "ds", "--output-dir", "o"], "--output-dir is now --out"),
    (["build", "--source", "x", "--out", "o", "--train", "--output-dir", "r"], "--output-dir is now --out"),
    (["report", "ds", "--out-dir", "r"], "--out-dir is now --out"),
    (["eval", "--data", "ds", "--output=r.json"], "--output is now --out"),
    (["build", "--source", "x", "--out", "o", "--push-to-hub", "me/ds"], "--push-to-hub is now --repo-id"),
    (["refresh", "--config", "p.yaml", "--push-to-hub", "me/ds"], "--config is now --project"),
    (["serve", "--config", "p.yaml", "--interval", "60"], "--config is now --project"),
    (["eval", "--play", "twx:twc", "--max-steps", "3"], "--max-steps is now --play-steps"),
]


@pytest.mark.parametrize(("argv", "expected"), RENAMED, ids=[" ".join(a) for a, _ in RENAMED])
def test_old_flag_spellings_fail_with_the_new_name(argv: list[str], expected: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert expected in line


def test_trains_config_is_not_an_old_spelling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--config` is still train's TRL YAML: only refresh and serve renamed theirs to --project."""
    publish_pairs(tmp_path / "ds")
    monkeypatch.chdir(tmp_path)
    assert "--config no.yaml: no such file" in _one_error_line([*ACT, "--config", "no.yaml"], capsys)


def test_a_corrupt_or_truncated_store_says_so(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.duckdb"
    garbage.write_bytes(b"not a database at all\n" * 100)
    with pytest.raises(RuntimeError, match=r"store .*garbage.duckdb is corrupt or not a DuckDB store"):
        Store(garbage)
    truncated = tmp_path / "truncated.duckdb"
    legacy = LEGACY / "ds.duckdb"
    truncated.write_bytes(legacy.read_bytes()[:100_000])
    with pytest.raises(RuntimeError, match="is corrupt or not a DuckDB store"):
        Store(truncated)
    with pytest.raises(RuntimeError, match="is a folder, not a DuckDB file"):
        Store(tmp_path)


def test_a_store_held_by_another_process_names_it(tmp_path: Path) -> None:
    path = tmp_path / "held.duckdb"
    duckdb.connect(str(path)).close()
    code = f"import duckdb, time\ncon = duckdb.connect({str(path)!r})\nprint('held', flush=True)\n"
    code += "time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RuntimeError, match=rf"is in use by process {holder.pid}"):
            Store(path)
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.slow  # a fresh interpreter, and Prefect's temporary server for the failing flow
def test_a_failing_build_prints_one_line_without_prefects_traceback(tmp_path: Path) -> None:
    source = tmp_path / "empty.jsonl"
    source.write_text('{"task": "x", "instruction": "i", "steps": []}\n', encoding="utf-8")
    actforge = shutil.which("actforge", path=str(Path(sys.executable).parent))
    argv = [actforge, "build", "--source", str(source), "--out", str(tmp_path / "out")]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert errors == [
        "actforge: error: no pairs to publish: {'trajectories': 0, 'states': 0, 'samples': 0, "
        "'quarantined': 1}, reasons {'no_action': 1}"
    ]
