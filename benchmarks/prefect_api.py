"""A CLI run's cost of talking to Prefect: its API served from a thread of the process (what
`actforge` does when PREFECT_API_URL is unset) against Prefect's own temporary server process.

Each timed run is a fresh Python process doing a no-op rebuild of the native example (everything
cached in the store), timed from start to exit, with one shared PREFECT_HOME.

    PYTHONPATH=. .venv/bin/python benchmarks/prefect_api.py --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.tiny_model import make_tiny_model

ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import json, sys
from actforge.flows.settings import configure_prefect, prefect_api
from actforge.pipelines.config import BuildConfig

mode, fields = sys.argv[1], json.loads(sys.argv[2])
configure_prefect()
from actforge.flows.build import build

if mode == "thread":
    with prefect_api():
        build(BuildConfig(**fields))
else:
    build(BuildConfig(**fields))
"""


def run(mode: str, fields: dict, env: dict) -> float:
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-c", CHILD, mode, json.dumps(fields)],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/prefect_api.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        fields = {
            "sources": [str(ROOT / "data/examples/native.jsonl")],
            "out": str(work / "out"),
            "policy": str(make_tiny_model(work / "tiny")),
            "k": 2,
        }
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
        env |= {"PYTHONPATH": str(ROOT), "PREFECT_HOME": str(work / "prefect"), "HF_HUB_OFFLINE": "1"}
        run("thread", fields, env)  # builds the store and Prefect's database once
        times: dict[str, list[float]] = {"thread": [], "server process": []}
        for _ in range(args.runs):  # interleaved, so drift on the machine hits both alike
            for mode in times:
                times[mode].append(run("thread" if mode == "thread" else "process", fields, env))
    medians = {mode: statistics.median(values) for mode, values in times.items()}
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "runs": times,
        "median_s": medians,
        "ratio_process_over_thread": medians["server process"] / medians["thread"],
    }
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for mode, value in medians.items():
        print(f"{mode:>15}: median {value:.1f} s over {args.runs} runs {[round(t, 1) for t in times[mode]]}")
    print(f"ratio (server process / thread): {result['ratio_process_over_thread']:.2f}")


if __name__ == "__main__":
    main()
