"""What `--verify` costs per action, per engine: every expert action of the demo's verification
sources, plus one alternative per state ("look around"), tried in the live engine.

    PYTHONPATH=. .venv/bin/python benchmarks/verify.py

Engine start and episode lookup are included (once per source, as in a build); collection is not.
Writes benchmarks/results/verify.json.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import pyarrow as pa

from actforge.pipelines.curate.verify import verify
from actforge.pipelines.sources.registry import collect

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("twx:twc@train:10", "scienceworld:find-plant@train:3")


def main() -> None:
    result: dict[str, dict[str, float]] = {}
    for spec in SOURCES:
        steps = collect(spec, progress=False).steps.to_pylist()
        prefixes: dict[str, list[str]] = {}
        for step in sorted(steps, key=lambda s: (s["trajectory_id"], s["step_index"])):
            prefixes.setdefault(step["trajectory_id"], []).append(step["action"])
        items = [
            {k: s[k] for k in ("state_id", "trajectory_id", "step_index")} | {"action": action}
            for s in steps
            for action in (s["action"], "look around")
        ]
        started = time.perf_counter()
        verify(spec, pa.Table.from_pylist(items), prefixes)
        seconds = time.perf_counter() - started
        result[spec] = {
            "actions": len(items),
            "seconds": seconds,
            "ms_per_action": 1000 * seconds / len(items),
        }
        print(
            f"{spec:>36}: {len(items)} actions in {seconds:.1f} s, {1000 * seconds / len(items):.0f} ms each"
        )
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    text = json.dumps({"machine": machine, "sources": result}, indent=2) + "\n"
    (ROOT / "benchmarks/results/verify.json").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
