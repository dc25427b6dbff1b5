"""`actforge report` on a small built dataset and a real 2-step TRL run: every plot is a real PNG,
the page parses and embeds its images (no outside references), and the same inputs give the same
bytes."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from actforge.flows.cli import main

PNG = b"\x89PNG\r\n\x1a\n"
DATASET_PLOTS = {
    "pairs_by_task",
    "samples_by_reason",
    "action_length",
    "history_length",
    "alternatives_per_state",
    "top_alternatives",
    "versions",
}

pytestmark = pytest.mark.usefixtures("hf_offline")


class _Page(HTMLParser):
    """The page's images, links, scripts and headings."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.outside: list[str] = []
        self.headings: list[str] = []
        self._heading = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img":
            self.images.append(values.get("src") or "")
        elif tag in ("link", "script", "iframe") or (tag == "a" and values.get("href")):
            self.outside.append(tag)
        self._heading = tag in ("h1", "h2")

    def handle_data(self, data: str) -> None:
        if self._heading:
            self.headings.append(data)
            self._heading = False


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_report_of_a_dataset_is_real_pngs_and_one_page(dataset: Path, tmp_path: Path) -> None:
    assert main(["report", str(dataset), "--out", str(tmp_path / "r")]) == 0
    files = _files(tmp_path / "r")
    assert {name.removesuffix(".png") for name in files if name.endswith(".png")} == DATASET_PLOTS
    for name, data in files.items():
        if name.endswith(".png"):
            assert data.startswith(PNG) and len(data) > 5_000, name  # a real, non-trivial image
    page = _Page()
    page.feed(files["report.html"].decode("utf-8"))
    assert len(page.images) == len(DATASET_PLOTS)
    assert all(src.startswith("data:image/png;base64,") for src in page.images)
    assert page.outside == []  # self-contained: nothing fetched from anywhere
    assert "Pairs per task and split" in page.headings
    # The same inputs give the same bytes (no timestamps in the PNGs).
    assert main(["report", str(dataset), "--out", str(tmp_path / "again")]) == 0
    assert _files(tmp_path / "again") == files
    # The default folder sits beside the dataset, never inside it.
    assert main(["report", str(dataset)]) == 0
    assert (dataset.parent / "ds.report" / "report.html").is_file()


@pytest.mark.slow  # trains with TRL
def test_report_of_a_training_run(dataset: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    from actforge.trainers.train import train

    fast = "--max_steps 2 --save_strategy no --logging_steps 1 --beta 0.1"  # the exact objective
    run = train(
        "act", str(dataset), str(tiny_model_dir), str(tmp_path / "act"), None, fast.split(), curve_every=1
    )
    (run / "eval_test.json").write_text(
        json.dumps({"model": "act", "critic": {"pairs": 4, "consistent_accuracy": 0.25, "accuracy": 0.5}}),
        encoding="utf-8",
    )
    assert main(["report", str(dataset), "--run", str(run), "--out", str(tmp_path / "r")]) == 0
    names = {p.name for p in (tmp_path / "r").iterdir()}
    curves = ("reward", "answers_per_slot", "kl", "loss", "held_out_consistent_accuracy")
    assert {f"run_act_{curve}.png" for curve in curves} <= names
    page = _Page()
    page.feed((tmp_path / "r" / "report.html").read_text(encoding="utf-8"))
    assert "act: evaluation" in page.headings
    assert len(page.images) == len(names) - 1
    html = (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    assert "<td>eval_test</td><td>4</td><td>0.250</td><td>0.500</td>" in html


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["report", "nope"], "DATA nope: no such folder"),
        (["report", "DATASET", "--run", "missing-run"], "--run missing-run: no such folder"),
    ],
)
def test_report_argument_errors(
    argv: list[str], error: str, dataset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(dataset) if a == "DATASET" else a for a in argv]) == 2
    assert error in capsys.readouterr().err
