"""The recipe's table over seeds: each row's mean and spread, and the ACT rows against their baselines.

`actforge train recipe` gives one table per run. One CPU seed says little, so this reads the
`recipe.json` of runs that differ only in `--seed` and prints, for every metric, each row's mean
and range over the seeds, then the paired differences (IL w/ ACT - IL, RL w/ ACT - RL, ACT - base,
computed within each seed) with their mean and range. A difference whose range crosses zero is not
shown by these seeds.

Run: .venv/bin/python benchmarks/recipe_seeds.py RUN_DIR RUN_DIR ... [--json FILE]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from actforge.trainers.evaluate import METRICS, metric_value
from actforge.trainers.recipe import RESULT_FILE

PAIRS = (("ACT", "base"), ("IL w/ ACT", "IL"), ("RL w/ ACT", "RL"))
ORDER = ("base", "ACT", "IL", "IL w/ ACT", "RL", "RL w/ ACT")  # the recipe's table order


def _value(result: dict[str, Any], path: tuple[str, ...]) -> float | None:
    value = metric_value(result, path)
    return None if value is None else float(value)


def _spread(values: list[float | None]) -> dict[str, Any] | None:
    known = [v for v in values if v is not None]
    if not known:
        return None
    return {"mean": sum(known) / len(known), "min": min(known), "max": max(known), "values": known}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per row and metric the spread over runs; per ACT pair and metric the spread of the differences."""
    names = [name for name in ORDER if all(name in run["results"] for run in runs)]
    rows = {}
    for name in names:
        values = {label: [_value(r["results"][name], path) for r in runs] for label, path in METRICS}
        rows[name] = {label: _spread(known) for label, known in values.items()}
    differences = {}
    for treated, baseline in PAIRS:
        if treated not in names or baseline not in names:
            continue
        per_metric = {}
        for label, path in METRICS:
            deltas = []
            for run in runs:
                new, old = _value(run["results"][treated], path), _value(run["results"][baseline], path)
                deltas.append(None if new is None or old is None else new - old)
            per_metric[label] = _spread(deltas)
        differences[f"{treated} - {baseline}"] = per_metric
    return {"runs": len(runs), "rows": rows, "differences": differences}


def _cell(spread: dict[str, Any] | None, signed: bool = False) -> str:
    if spread is None:
        return "-"
    sign = "+" if signed else ""
    return f"{spread['mean']:{sign}.3f} [{spread['min']:{sign}.3f}, {spread['max']:{sign}.3f}]"


def markdown(summary: dict[str, Any]) -> str:
    """Two Markdown tables: rows (mean [min, max] over seeds), then the paired differences."""
    labels = [label for label, _ in METRICS]
    lines = ["| model | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for name, metrics in summary["rows"].items():
        lines.append(f"| {name} | " + " | ".join(_cell(metrics[label]) for label in labels) + " |")
    lines += ["", "| difference | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for name, metrics in summary["differences"].items():
        cells = [_cell(metrics[label], signed=True) for label in labels]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="recipe output folders (one per seed)")
    parser.add_argument("--json", type=Path, help="also write the summary here")
    args = parser.parse_args()
    runs = [json.loads((folder / RESULT_FILE).read_text()) for folder in args.runs]
    summary = summarise(runs)
    summary["seeds"] = {str(folder): run["overrides"] for folder, run in zip(args.runs, runs, strict=True)}
    print(markdown(summary))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
