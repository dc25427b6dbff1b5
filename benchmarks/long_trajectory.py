"""Write one native-format expert trajectory of N steps, to check that a long trajectory builds in
bounded memory (its steps are stored once; published rows carry a bounded history window).

    PYTHONPATH=. .venv/bin/python benchmarks/long_trajectory.py --steps 10000 --out /tmp/long/long.jsonl
    /usr/bin/time -v .venv/bin/actforge build --source /tmp/long/long.jsonl --out /tmp/long/out --max-states 8
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

WORDS = "you see a the kitchen door open closed table chair box apple pot stove water room hallway".split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    rng = random.Random(0)
    steps = [
        {
            "observation": f"Step {i}. " + " ".join(rng.choice(WORDS) for _ in range(60)),
            "action": f"move to room {i % 97}",
        }
        for i in range(args.steps)
    ]
    record = {
        "task": "long",
        "environment": "scienceworld",
        "split": "train",
        "instruction": "Your task is to walk a long way.",
        "steps": steps,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record) + "\n", encoding="utf-8")
    print(f"{args.out}: {args.steps} steps, {args.out.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
