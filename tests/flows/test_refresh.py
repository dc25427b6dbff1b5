"""Incremental refresh from a project file: no new input changes nothing; one new trajectory adds
exactly its pairs as the next version, and no published trajectory changes split."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest

from actforge.flows.cli import main
from actforge.pipelines.project import load_project
from tests.support.factories import append_new_trajectory, files_of, make_project


@pytest.mark.slow  # the Prefect test server
@pytest.mark.integration
@pytest.mark.usefixtures("prefect_harness", "hf_offline")
def test_refresh_is_incremental(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_project(tmp_path, tiny_model_dir)
    out = Path(load_project(config).build.out)
    assert main(["refresh", "--project", str(config)]) == 0
    first = json.loads((out / "manifest.json").read_text())
    assert first["version"] == 1 and "version: 1" in capsys.readouterr().out
    files = files_of(out)

    assert main(["refresh", "--project", str(config)]) == 0
    printed = capsys.readouterr().out
    assert "+0 samples (0 policy calls), +0 pairs" in printed and "version: 1" in printed
    assert files_of(out) == files  # every published file byte-identical, none rewritten

    before = datasets.load_dataset(str(out))
    splits = {r["trajectory_id"]: s for s in before for r in before[s]}
    append_new_trajectory(tmp_path)
    assert main(["refresh", "--project", str(config)]) == 0
    printed = capsys.readouterr().out
    assert "+1 trajectories, +3 states" in printed and "(3 policy calls)" in printed
    second = json.loads((out / "manifest.json").read_text())
    assert (second["version"], second["parent_version"]) == (2, 1)

    # `datasets` keeps serving its cache of a local folder after files change: load into a new one.
    after = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "fresh-cache"))
    new_ids = {r["trajectory_id"] for s in after for r in after[s]} - set(splits)
    assert len(new_ids) == 1
    new_rows = [r for s in after for r in after[s] if r["trajectory_id"] in new_ids]
    assert sum(second["added"]["pairs"].values()) == len(new_rows) > 0
    old_rows = sorted((r["pair_id"], s) for s in after for r in after[s] if r["trajectory_id"] not in new_ids)
    assert old_rows == sorted((r["pair_id"], s) for s in before for r in before[s])
    assert all(
        splits[r["trajectory_id"]] == s for s in after for r in after[s] if r["trajectory_id"] in splits
    )


def test_project_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "p.toml"
    bad.write_text('sources = ["x"]\nout = "o"\nk = 4\nwhat = 1\n', encoding="utf-8")
    with pytest.raises(ValueError, match="unknown settings"):
        load_project(bad)
    bad.write_text('out = "o"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="sources"):
        load_project(bad)
    good = tmp_path / "p.toml"
    good.write_text('sources = ["eto:a.json", "scienceworld:boil@0"]\nout = "o"\n', encoding="utf-8")
    project = load_project(good)
    assert project.build.sources == (f"eto:{tmp_path / 'a.json'}", "scienceworld:boil@0")
    assert project.build.out == str(tmp_path / "o")


@pytest.mark.slow  # the Prefect test server
@pytest.mark.integration
@pytest.mark.usefixtures("prefect_harness", "hf_offline")
def test_refresh_with_report_adds_plots_to_the_card(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_project(tmp_path, tiny_model_dir)
    out = Path(load_project(config).build.out)
    assert main(["refresh", "--project", str(config)]) == 0
    plain = files_of(out)
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "## Report" not in card and not (out / "report").exists()

    assert main(["refresh", "--project", str(config), "--with-report"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["version"] == 2  # the report is a setting of the content: a new version
    plots = sorted(p["path"] for p in manifest["report"])
    assert plots and plots == sorted(f"report/{p.name}" for p in (out / "report").iterdir())
    assert set(files_of(out)) == set(plain) | set(plots)  # the file list gains the plots, nothing else
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "## Report" in card and all(f"]({path})" in card for path in plots)
    assert all((out / path).read_bytes().startswith(b"\x89PNG") for path in plots)
    files = files_of(out)
    capsys.readouterr()

    # An identical refresh makes no new version and rewrites nothing, plots included.
    assert main(["refresh", "--project", str(config), "--with-report"]) == 0
    assert "version: 2" in capsys.readouterr().out
    assert files_of(out) == files

    # Without the flag again: the next version, and its folder drops the plots.
    assert main(["refresh", "--project", str(config)]) == 0
    assert json.loads((out / "manifest.json").read_text())["version"] == 3
    assert not any((out / "report").glob("*.png")) and "## Report" not in (out / "README.md").read_text()
