"""`actforge report`: plots of a published dataset and its training runs, and one HTML page that
embeds them (no network, no files beside it).

Everything comes from what a build and a training run leave on disk: the manifest and Parquet
shards of OUT, and each run folder's `trainer_state.json` and evaluation JSON. It never reads the
store, so it works on a downloaded dataset too. Plots are drawn headless (matplotlib's Agg) with no
timestamps in the PNGs: the same inputs give the same bytes.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from tqdm import tqdm

from actforge.pipelines.publish.layout import REPORT, read_manifest
from actforge.schemas import SPLITS
from actforge.schemas.vocab import ALTERNATIVE, DEFAULT, EXPERT, METRICS, OUTCOMES

PAGE = "report.html"
TOP_ALTERNATIVES = 15
# Logged training metrics drawn per run, when the trainer logged them: plot label -> keys.
CURVES: dict[str, tuple[str, ...]] = {
    "reward": ("reward",),
    "answers per slot": ("rewards/answers_slot_1/mean", "rewards/answers_slot_2/mean"),
    "KL": ("kl",),
    "loss": ("loss",),
    # Held-out critic scores while training (`actforge train act --curve-every N`).
    "held-out consistent accuracy": (
        "curve/validation/consistent_accuracy",
        "curve/test/consistent_accuracy",
    ),
}
# Evaluation columns per run: the pairs scored, then every metric (`schemas.vocab.METRICS`).
COLUMNS = (("pairs", ("critic", "pairs")), *METRICS)


@dataclass(frozen=True)
class Plot:
    name: str  # the PNG's file name, without .png
    title: str
    draw: Callable[[Any], None]  # draws on a matplotlib Axes


def write_report(out: Path, runs: Sequence[Path], target: Path, progress: bool = True) -> list[Path]:
    """Write the plots of dataset `out` and of each run folder into `target`, then the page;
    returns the files written (the page last)."""
    import matplotlib

    matplotlib.use("Agg")
    manifest = read_manifest(out)
    pairs = _pairs(out, manifest)
    plots = list(dataset_plots(manifest, pairs))
    tables = []
    for run in runs:
        plots += run_plots(run)
        tables.append((run.name, evaluations(run)))
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for plot in tqdm(plots, desc="report", unit="plot", disable=not progress):
        written.append(_save(plot, target / f"{plot.name}.png"))
    page = target / PAGE
    page.write_text(_page(out, manifest, plots, written, tables), encoding="utf-8")
    return [*written, page]


def dataset_report(manifest: dict[str, Any], folder: Path) -> list[dict[str, str]]:
    """The dataset's plots for `--with-report`, drawn from the shards in `folder` into
    `folder/report/`; returns each plot's path (relative to `folder`) and title for the card."""
    import matplotlib

    matplotlib.use("Agg")
    (folder / REPORT).mkdir(exist_ok=True)
    plots = list(dataset_plots(manifest, _pairs(folder, manifest)))
    for plot in plots:
        _save(plot, folder / REPORT / f"{plot.name}.png")
    return [{"path": f"{REPORT}/{plot.name}.png", "title": plot.title} for plot in plots]


def _pairs(out: Path, manifest: dict[str, Any]) -> pl.LazyFrame:
    """The published pairs (config `default`) as a lazy scan of their shards: the plots' queries
    read only the columns they use."""
    paths = [str(out / shard["path"]) for shard in manifest["shards"] if shard["config"] == DEFAULT]
    return pl.scan_parquet(paths)


def dataset_plots(manifest: dict[str, Any], pairs: pl.LazyFrame) -> Iterator[Plot]:
    stats = manifest["stats"]
    by_task = pairs.group_by("task", "split").agg(pl.len().alias("pairs")).collect()
    yield Plot("pairs_by_task", "Pairs per task and split", lambda ax: _stacked(ax, by_task))
    reasons = stats.get("samples_by_reason", {})
    yield Plot("samples_by_reason", "Samples by verdict reason", lambda ax: _bars(ax, reasons, "samples"))
    if stats.get("outcomes"):
        yield Plot(
            "outcomes", "Verified outcomes: alternatives vs expert actions", lambda ax: _outcomes(ax, stats)
        )
    lengths = pairs.select(
        alternative=pl.col("alternative_action").str.len_chars(),
        expert=pl.col("expert_action").str.len_chars(),
    ).collect()
    yield Plot(
        "action_length",
        "Action length (characters)",
        lambda ax: _histograms(ax, {name: lengths[name].to_list() for name in lengths.columns}, "pairs"),
    )
    states = (
        pairs.group_by("state_id").agg(pl.col("step_index").max(), pl.len().alias("alternatives")).collect()
    )
    history = {"steps before the state": states["step_index"].to_list()}
    yield Plot("history_length", "History length", lambda ax: _histograms(ax, history, "states"))
    per_state = {"alternatives per state": states["alternatives"].to_list()}
    yield Plot(
        "alternatives_per_state",
        "Distinct alternatives per state",
        lambda ax: _histograms(ax, per_state, "states"),
    )
    top = (
        pairs.group_by("alternative_action")
        .agg(pl.len().alias("pairs"))
        .sort(["pairs", "alternative_action"], descending=[True, False])
        .head(TOP_ALTERNATIVES)
        .collect()
    )
    yield Plot(
        "top_alternatives", f"The {TOP_ALTERNATIVES} most frequent alternatives", lambda ax: _top(ax, top)
    )
    versions = {f"v{h['version']}": sum(h["added"]["pairs"].values()) for h in manifest.get("history", [])}
    yield Plot("versions", "Pairs added per version", lambda ax: _bars(ax, versions, "pairs added"))


def run_plots(run: Path) -> list[Plot]:
    """The logged curves of one training run (none when it left no trainer_state.json)."""
    state = _trainer_state(run)
    if state is None:
        return []
    logged = [row for row in state["log_history"] if "step" in row]
    plots = []
    for label, keys in CURVES.items():
        lines = {key: [(row["step"], row[key]) for row in logged if key in row] for key in keys}
        lines = {key: points for key, points in lines.items() if points}
        if lines:
            name = f"run_{_slug(run.name)}_{_slug(label)}"
            plots.append(
                Plot(
                    name, f"{run.name}: {label} by step", lambda ax, ls=lines, lab=label: _curves(ax, ls, lab)
                )
            )
    return plots


def evaluations(run: Path) -> list[tuple[str, dict[str, Any]]]:
    """(name, result) of every evaluation the run folder holds: `eval_*.json` from `actforge
    evaluate`, and before/after pairs such as `learnability.json`."""
    found = []
    for path in sorted(run.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and "critic" in data:
            found.append((path.stem, data))
        elif (
            isinstance(data, dict)
            and isinstance(data.get("before"), dict)
            and isinstance(data.get("after"), dict)
        ):
            found += [(f"{path.stem}: before", data["before"]), (f"{path.stem}: after", data["after"])]
    return found


def _trainer_state(run: Path) -> dict[str, Any] | None:
    """The run's own trainer_state.json, else its latest checkpoint's."""
    candidates = [run / "trainer_state.json"]
    checkpoints = [p for p in run.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    candidates += [
        p / "trainer_state.json" for p in sorted(checkpoints, key=lambda p: -int(p.name.split("-")[-1]))
    ]
    for path in candidates:
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))
    return None


def _save(plot: Plot, path: Path) -> Path:
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(7, 3.6), dpi=100)
    plot.draw(ax)
    ax.set_title(plot.title)
    figure.tight_layout()
    figure.savefig(path, format="png", metadata={"Software": None})
    plt.close(figure)
    return path


def _stacked(ax: Any, by_task: pl.DataFrame) -> None:
    tasks = sorted(set(by_task["task"].to_list()))
    counts = {(r["task"], r["split"]): r["pairs"] for r in by_task.iter_rows(named=True)}
    bottom = [0] * len(tasks)
    for split in SPLITS:
        heights = [counts.get((task, split), 0) for task in tasks]
        ax.bar(tasks, heights, bottom=bottom, label=split)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    ax.set_ylabel("pairs")
    ax.legend()
    ax.tick_params(axis="x", labelrotation=20)


def _bars(ax: Any, counts: dict[str, int], label: str) -> None:
    ax.bar(list(counts), list(counts.values()))
    ax.set_ylabel(label)
    ax.tick_params(axis="x", labelrotation=20)


def _outcomes(ax: Any, stats: dict[str, Any]) -> None:
    labels, alternatives, experts = [], [], []
    for environment, sides in sorted(stats["outcomes"].items()):
        for outcome in OUTCOMES:
            labels.append(f"{environment}: {outcome}")
            alternatives.append(sides.get(ALTERNATIVE, {}).get(outcome, 0))
            experts.append(sides.get(EXPERT, {}).get(outcome, 0))
    positions = range(len(labels))[::-1]  # the first environment on top
    ax.barh([p + 0.2 for p in positions], alternatives, height=0.4, label="alternatives")
    ax.barh([p - 0.2 for p in positions], experts, height=0.4, label="expert actions")
    ax.set_yticks(list(positions), labels, fontsize=7)
    ax.set_xlabel("pairs")
    ax.legend()


def _histograms(ax: Any, series: dict[str, list[int]], label: str) -> None:
    values = [v for vs in series.values() for v in vs]
    bins = range(
        min(values, default=0), max(values, default=0) + 2, max(1, (max(values, default=0) + 1) // 30)
    )
    for name, vs in series.items():
        ax.hist(vs, bins=list(bins), alpha=0.6, label=name)
    ax.set_ylabel(label)
    ax.legend()


def _top(ax: Any, top: pl.DataFrame) -> None:
    names = [text if len(text) <= 40 else text[:37] + "..." for text in top["alternative_action"].to_list()]
    ax.barh(names[::-1], top["pairs"].to_list()[::-1])
    ax.set_xlabel("pairs")
    ax.tick_params(axis="y", labelsize=7)


def _curves(ax: Any, lines: dict[str, list[tuple[int, float]]], label: str) -> None:
    for key, points in lines.items():
        ax.plot([s for s, _ in points], [v for _, v in points], marker="o", label=key)
    ax.set_xlabel("step")
    ax.set_ylabel(label)
    if len(lines) > 1:
        ax.legend()


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text.lower()).strip("_")


def _value(result: dict[str, Any], path: tuple[str, ...]) -> str:
    for key in path:
        if not isinstance(result, dict) or key not in result:
            return "-"
        result = result[key]
    if isinstance(result, float):
        return f"{result:.3f}"
    return "-" if result is None else str(result)


def _page(
    out: Path,
    manifest: dict[str, Any],
    plots: Sequence[Plot],
    files: Sequence[Path],
    tables: Sequence[tuple[str, list[tuple[str, dict[str, Any]]]]],
) -> str:
    """One self-contained page: every plot embedded as a data URI, evaluation tables as HTML."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>actforge report: {html.escape(out.name)}</title>",
        "<style>body{font-family:sans-serif;max-width:960px;margin:2em auto;}"
        "img{max-width:100%;}table{border-collapse:collapse;}td,th{border:1px solid #ccc;padding:4px 8px;}"
        "</style></head><body>",
        f"<h1>actforge report: {html.escape(str(out))}</h1>",
        f"<p>Version {manifest.get('version')}, {manifest['pairs']} pairs, "
        f"schema {html.escape(str(manifest.get('schema_version')))}.</p>",
    ]
    for plot, path in zip(plots, files, strict=True):
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        parts += [
            f"<h2>{html.escape(plot.title)}</h2>",
            f'<img alt="{html.escape(plot.title)}" src="data:image/png;base64,{data}">',
        ]
    for run, results in tables:
        if not results:
            continue
        header = "".join(f"<th>{html.escape(label)}</th>" for label, _ in COLUMNS)
        rows = "".join(
            f"<tr><td>{html.escape(name)}</td>"
            + "".join(f"<td>{html.escape(_value(result, path))}</td>" for _, path in COLUMNS)
            + "</tr>"
            for name, result in results
        )
        parts += [
            f"<h2>{html.escape(run)}: evaluation</h2>",
            f"<table><tr><th>result</th>{header}</tr>{rows}</table>",
        ]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
