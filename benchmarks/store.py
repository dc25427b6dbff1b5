"""Store ingest + dedup at scale, against pandas and a Python set on the same generated pairs.

    PYTHONPATH=. .venv/bin/python benchmarks/store.py --pairs 1000000 --scale 4 --json out.json

Generated data: trajectories of 5-40 steps (observations 40-400 characters, actions 8-30), every
step a state with K=4 alternatives, delivered in build-sized batches (about 2,000 pairs). Each
contender ingests all batches once (all new), then the same batches again (all duplicates), and
ends with the deduplicated data on disk. Every contender runs in its own process, so the peak
memory it reports (ru_maxrss) is its own; generating the batches is not timed. Each contender runs
`--repeat` times (pandas-rows `--repeat-slow` times) and the median run is reported, because run
to run times on a small shared machine vary by up to a third.

- store: `Store.stage` per batch (trajectories, steps once, slim pairs), `Store.merge` per pass.
- pandas-rows: the rows as a self-contained pair table holds them (each with its full history),
  `concat` + `drop_duplicates` + `to_parquet` - what a user's script, or the store before the
  columnar core, processes.
- pandas-tables: the same normalised tables the store gets, each `concat` + `drop_duplicates` +
  `to_parquet`.
- set: a Python `set` of pair ids filters each batch; kept rows stream into one Parquet file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

K = 4
STATES_PER_BATCH = 500
WORDS = np.array(
    "you see a the kitchen door open closed table chair box apple pot stove water room hallway "
    "inventory containing nothing orange red blue thermometer substance focus on move to pick up "
    "put down in into cupboard fridge counter sink lighter wood paper metal glass bowl cup plant "
    "seed soil flower pot greenhouse outside art studio workshop bedroom living foundry painting".split()
)


def _text(rng: np.random.Generator, low: int, high: int, count: int) -> list[str]:
    """`count` texts of random words, each cut to a length drawn from [low, high]."""
    lengths = rng.integers(low, high + 1, count)
    words = WORDS[rng.integers(0, len(WORDS), (count, high // 3 + 1))]
    return [" ".join(row)[:n] for row, n in zip(words, lengths, strict=True)]


def _hashes(kind: str, keys: list[str]) -> list[str]:
    return [hashlib.sha256(f"{kind}:{k}".encode()).hexdigest() for k in keys]


def batches(total_pairs: int, seed: int = 0) -> Iterator[dict[str, pa.Table]]:
    """Deterministic build-sized batches: trajectories, their steps, pairs (normalised)."""
    from actforge.schemas import STEP_SCHEMA, STORED_PAIR_SCHEMA, TRAJECTORY_SCHEMA

    made, index = 0, 0
    while made < total_pairs:
        rng = np.random.default_rng([seed, index])
        lengths: list[int] = []
        while sum(lengths) < STATES_PER_BATCH:
            lengths.append(int(rng.integers(5, 41)))
        names = [f"{seed}/{index}/{t}" for t in range(len(lengths))]
        trajectory_ids = _hashes("trajectory", names)
        n_steps = sum(lengths)
        step_tid = np.repeat(np.array(trajectory_ids), lengths)
        step_index = np.concatenate([np.arange(n) for n in lengths])
        observation = pa.array(_text(rng, 40, 400, n_steps))
        action = pa.array(_text(rng, 8, 30, n_steps))
        size = np.asarray(pc.add(pc.utf8_length(observation), pc.utf8_length(action)))
        cumulative = np.concatenate([[0], np.cumsum(size)])
        starts = np.repeat(cumulative[np.cumsum([0, *lengths[:-1]])], lengths)
        state_ids = _hashes("state", [f"{t}/{i}" for t, i in zip(step_tid, step_index, strict=True)])
        steps = pa.table(
            {
                "state_id": state_ids,
                "trajectory_id": step_tid,
                "step_index": step_index,
                "observation": observation,
                "action": action,
                "admissible": pa.nulls(n_steps, pa.list_(pa.string())),
                "chars_before": cumulative[:-1] - starts,
            },
            schema=STEP_SCHEMA,
        )
        trajectories = pa.table(
            {
                "trajectory_id": trajectory_ids,
                "source": ["generated"] * len(lengths),
                "task": [f"task-{i % 30}" for i in range(len(lengths))],
                "environment": ["scienceworld"] * len(lengths),
                "split": ["train"] * len(lengths),
                "instruction": _text(rng, 40, 160, len(lengths)),
                "final_observation": _text(rng, 40, 400, len(lengths)),
                "success": [True] * len(lengths),
                "reward": [1.0] * len(lengths),
                "num_steps": lengths,
            },
            schema=TRAJECTORY_SCHEMA,
        )
        take = min(K * n_steps, total_pairs - made)
        rows = np.repeat(np.arange(n_steps), K)[:take]
        pair_state = pc.take(pa.array(state_ids), pa.array(rows))
        pairs = pa.table(
            {
                "pair_id": _hashes("pair", [f"{s}/{j % K}" for j, s in enumerate(pair_state.to_pylist())]),
                "state_id": pair_state,
                "sample_id": _hashes(
                    "sample", [f"{s}/{j % K}" for j, s in enumerate(pair_state.to_pylist())]
                ),
                "trajectory_id": pc.take(steps["trajectory_id"], pa.array(rows)),
                "step_index": pc.take(steps["step_index"], pa.array(rows)),
                "expert_action": pc.take(action, pa.array(rows)),
                "alternative_action": _text(rng, 8, 30, take),
                "policy": ["SmolLM2-135M-Instruct@0123456789ab"] * take,
            },
            schema=STORED_PAIR_SCHEMA,
        )
        yield {"trajectories": trajectories, "steps": steps, "pairs": pairs}
        made += take
        index += 1


def self_contained(batch: dict[str, pa.Table]) -> pa.Table:
    """The pairs as one self-contained table: each row with its state and its full history."""
    steps, pairs = batch["steps"], batch["pairs"]
    lookup = {sid: i for i, sid in enumerate(steps["state_id"].to_pylist())}
    at = np.array([lookup[s] for s in pairs["state_id"].to_pylist()])
    index = np.asarray(steps["step_index"])[at]
    begin = at - index  # a trajectory's steps are contiguous: its history is the rows before
    offsets = np.concatenate([[0], np.cumsum(index)])
    flat = np.concatenate([np.arange(b, a) for b, a in zip(begin, at, strict=True)]) if len(at) else []
    flat = pa.array(flat, pa.int64())
    history_steps = pa.StructArray.from_arrays(
        [pc.take(steps[name], flat).combine_chunks() for name in ("observation", "action")],
        names=["observation", "action"],
    )
    history = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), history_steps)
    state = {
        name: pc.take(steps[name], pa.array(at)) for name in ("trajectory_id", "step_index", "observation")
    }
    state["expert_action"] = pc.take(steps["action"], pa.array(at))
    for name, column in state.items():
        pairs = pairs.append_column(name, column)
    return pairs.append_column("history", history)


def run_store(total: int, workdir: Path) -> dict[str, float]:
    from actforge.pipelines.store.database import Store

    timings = {}
    with Store(workdir / "bench.duckdb") as store:
        for name in ("new", "duplicates"):
            elapsed, added = 0.0, {}
            for batch in batches(total):
                start = time.perf_counter()
                store.stage(batch)
                elapsed += time.perf_counter() - start
            start = time.perf_counter()
            added = store.merge()
            elapsed += time.perf_counter() - start
            timings[f"{name}_s"] = elapsed
            timings[f"{name}_pairs_added"] = added["pairs"]
    return timings


def run_pandas(total: int, workdir: Path, rows: bool) -> dict[str, float]:
    import pandas as pd

    timings = {}
    frames: dict[str, list] = {}
    keys = {"trajectories": "trajectory_id", "steps": "state_id", "pairs": "pair_id"}
    for name in ("new", "duplicates"):
        elapsed = 0.0
        for batch in batches(total):
            tables = {"pairs": self_contained(batch)} if rows else batch
            start = time.perf_counter()
            for table, data in tables.items():
                frames.setdefault(table, []).append(data.to_pandas())
            elapsed += time.perf_counter() - start
        start = time.perf_counter()
        kept = 0
        for table, parts in frames.items():
            frame = pd.concat(parts, ignore_index=True).drop_duplicates(subset=keys[table])
            frame.to_parquet(workdir / f"{table}.parquet")
            frames[table] = [frame]
            kept = len(frame) if table == "pairs" else kept
        elapsed += time.perf_counter() - start
        timings[f"{name}_s"] = elapsed
        timings[f"{name}_pairs_kept"] = kept
    return timings


def run_set(total: int, workdir: Path) -> dict[str, float]:
    from actforge.schemas import STORED_PAIR_SCHEMA

    timings, seen = {}, set()
    with pq.ParquetWriter(workdir / "pairs.parquet", STORED_PAIR_SCHEMA) as writer:
        for name in ("new", "duplicates"):
            elapsed, kept = 0.0, 0
            for batch in batches(total):
                start = time.perf_counter()
                pairs = batch["pairs"]
                mask = []
                for key in pairs["pair_id"].to_pylist():
                    mask.append(key not in seen)
                    seen.add(key)
                new = pairs.filter(pa.array(mask, pa.bool_()))
                if new.num_rows:
                    writer.write_table(new)
                kept += new.num_rows
                elapsed += time.perf_counter() - start
            timings[f"{name}_s"] = elapsed
            timings[f"{name}_pairs_kept"] = kept
    return timings


CONTENDERS = {
    "store": run_store,
    "pandas-rows": lambda total, work: run_pandas(total, work, rows=True),
    "pandas-tables": lambda total, work: run_pandas(total, work, rows=False),
    "set": run_set,
}


def child(contender: str, total: int) -> None:
    """Run one contender in this process and print its result as JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        result = CONTENDERS[contender](total, Path(tmp))
    result["total_s"] = result["new_s"] + result["duplicates_s"]
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def measure(contender: str, total: int, repeat: int) -> dict[str, Any]:
    """`repeat` runs, each in a fresh process; the run with the median total time, and all totals."""
    runs = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, __file__, "--child", contender, "--pairs", str(total)],
            check=True,
            capture_output=True,
            text=True,
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"{contender:>14} {total:>9,} pairs: {json.dumps(runs[-1])}", file=sys.stderr)
    runs.sort(key=lambda r: r["total_s"])
    return runs[len(runs) // 2] | {"totals_s": [r["total_s"] for r in runs]}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--scale", type=int, default=4, help="also run the store on SCALE x PAIRS")
    parser.add_argument("--contenders", default="store,pandas-rows,pandas-tables,set")
    parser.add_argument("--repeat", type=int, default=3, help="runs per contender (the median is kept)")
    parser.add_argument("--repeat-slow", type=int, default=1, help="runs of pandas-rows (minutes each)")
    parser.add_argument("--json", help="write the result here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.pairs)
        return
    runs = {
        name: measure(name, args.pairs, args.repeat_slow if name == "pandas-rows" else args.repeat)
        for name in args.contenders.split(",")
    }
    result = {"pairs": args.pairs, "runs": runs}
    if args.scale > 1:
        large = measure("store", args.pairs * args.scale, args.repeat)
        result["store_scaled"] = {"pairs": args.pairs * args.scale, **large}
        result["scale_time_ratio"] = large["total_s"] / runs["store"]["total_s"]
    base = runs["store"]["total_s"]
    result["speedup_vs"] = {name: run["total_s"] / base for name, run in runs.items() if name != "store"}
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
