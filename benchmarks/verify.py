"""What `--verify` costs per action: one reset and replay per action (`verify_each`, how every action
was verified before) against walking each trajectory's expert path once (`verify`, the walks shared
by one engine plus a pool of each `--pools` size), on the same items.

    PYTHONPATH=. .venv/bin/python benchmarks/verify.py [--source SPEC ...] [--pools 0,1,2] [--nonsense N]

Items: in every state of the source's trajectories, the expert's action and four stand-ins for
sampled alternatives, deterministic: the expert's previous and next actions, "look around", then the
actions two and three steps away (the ones equal to the expert's action left out); with
`--nonsense N`, the last N of the four are replaced by inputs that are not commands, as most of a
small model's samples are (a walk need not replay after those where the engine refuses them before
acting: ScienceWorld's "No known action matches"). The outcomes of the items are counted. Wall time
includes engine start (once per engine, as in a build) but not collection; CPU time is this process
plus its JVMs (reaped when closed). Both ways must give the same rows, or the script stops.
Writes benchmarks/results/verify.json (verify_nonsenseN.json with `--nonsense N`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import psutil
import pyarrow as pa

from actforge.pipelines.curate.verify import verify, verify_each
from tests.support.factories import expert_paths

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("scienceworld:boil@train:2",)
ALTERNATIVES = 4  # stand-ins per state, as K=4 sampled alternatives
NEAR = (-1, 1, None, -2, 2, 3, -3)  # offsets of the expert's other actions; None is "look around"
NONSENSE = ("fly to the moon", "Thought: I should boil the water first", "the substance in the metal pot")


def items_of(spec: str, nonsense: int = 0) -> tuple[pa.Table, dict[str, list[str]]]:
    """The benchmark's items of `spec` (see the module docstring) and each trajectory's expert actions."""
    steps, prefixes = expert_paths(spec)
    items = []
    for step in steps:
        path, index = prefixes[step["trajectory_id"]], step["step_index"]
        near = [
            "look around" if o is None else path[index + o]
            for o in NEAR
            if o is None or 0 <= index + o < len(path)
        ]
        others = [action for action in dict.fromkeys(near) if action != step["action"]][:ALTERNATIVES]
        others = others[: ALTERNATIVES - nonsense] + list(NONSENSE[:nonsense])
        keys = {k: step[k] for k in ("state_id", "trajectory_id", "step_index")}
        items += [keys | {"action": action} for action in (step["action"], *others)]
    return pa.Table.from_pylist(items), prefixes


def timed(run: Callable[[], pa.Table], actions: int) -> tuple[pa.Table, dict[str, float]]:
    """`run`'s rows, and its wall and CPU time (this process and reaped children) per action."""
    cpu, wall = os.times(), time.perf_counter()
    rows = run()
    for jvm in psutil.Process().children():  # closed engines' JVMs: reaped, their CPU time counted
        jvm.wait(timeout=60)
    seconds, after = time.perf_counter() - wall, os.times()
    used = sum(
        getattr(after, k) - getattr(cpu, k) for k in ("user", "system", "children_user", "children_system")
    )
    return rows, {
        "seconds": round(seconds, 2),
        "ms_per_action": round(1000 * seconds / actions, 1),
        "cpu_ms_per_action": round(1000 * used / actions, 1),
    }


def measure(spec: str, pools: list[int], nonsense: int) -> dict[str, object]:
    items, prefixes = items_of(spec, nonsense)
    actions = items.num_rows
    reference, before = timed(lambda: verify_each(spec, items, prefixes), actions)
    outcomes = Counter(reference["outcome"].to_pylist())
    result: dict[str, object] = {
        "actions": actions,
        "trajectories": len(prefixes),
        "nonsense_per_state": nonsense,
        "outcomes": dict(sorted(outcomes.items())),
        "replay_each": before,
    }
    print(f"{spec}: {actions} actions, {len(prefixes)} trajectories, outcomes {result['outcomes']}")
    print(f"  replay per action: {before}")
    for pool in pools:
        rows, after = timed(lambda pool=pool: verify(spec, items, prefixes, pool=pool), actions)
        if rows.to_pylist() != reference.to_pylist():
            raise SystemExit(f"{spec}: walk with pool {pool} gave other rows than a replay per action")
        after["ratio"] = round(before["ms_per_action"] / after["ms_per_action"], 2)
        after["cpu_ratio"] = round(before["cpu_ms_per_action"] / after["cpu_ms_per_action"], 2)
        result[f"walk_pool_{pool}"] = after
        print(f"  walk + pool {pool}:      {after}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--source", action="append", help=f"live spec; repeatable (default: {', '.join(SOURCES)})"
    )
    parser.add_argument("--pools", default="0,1,2", help="pool sizes to measure, comma-separated")
    parser.add_argument("--nonsense", type=int, default=0, choices=range(len(NONSENSE) + 1))
    args = parser.parse_args()
    pools = [int(p) for p in args.pools.split(",")]
    result = {spec: measure(spec, pools, args.nonsense) for spec in args.source or SOURCES}
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    text = json.dumps({"machine": machine, "sources": result}, indent=2) + "\n"
    name = "verify.json" if not args.nonsense else f"verify_nonsense{args.nonsense}.json"
    (ROOT / "benchmarks/results" / name).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
