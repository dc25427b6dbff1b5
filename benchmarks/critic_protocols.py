"""Measure the critic answer protocols on a base model: well-formed rate and GRPO groups with signal.

Run: .venv/bin/python benchmarks/critic_protocols.py --data out/demo [--model smollm2] [--pairs 40]
Each of the first N test pairs (by id) is asked in both orders, 4 samples at temperature 1 per
prompt (one GRPO group). Prints one markdown row per protocol; `trainers.protocol.choose_protocol`
picks from exactly these numbers when training with `--protocol auto`.
"""

from __future__ import annotations

import argparse
import time

from actforge.pipelines.policy.models import load_policy
from actforge.pipelines.text.critic import PROTOCOLS
from actforge.trainers.evaluate import critic_rows
from actforge.trainers.protocol import choose_protocol, measure_protocol


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="out/demo")
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--split", default="test")
    parser.add_argument("--pairs", type=int, default=40)
    args = parser.parse_args()
    policy = load_policy(args.model)
    rows = critic_rows(args.data, args.split, args.pairs)
    print("| protocol | prompts | well-formed | accuracy | answers 1 / 2 | non-constant groups | seconds |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    measured = []
    for protocol in PROTOCOLS:
        started = time.perf_counter()
        m = measure_protocol(policy.model, policy.tokenizer, rows, protocol)
        measured.append(m)
        print(
            f"| {protocol} | {m['prompts']} | {m['well_formed']:.2f} | {m['accuracy']:.2f} | "
            f"{m['answers_slot_1']:.2f} / {m['answers_slot_2']:.2f} | {m['nonconstant_groups']:.2f} | "
            f"{time.perf_counter() - started:.0f} |"
        )
    print(f"chosen: {choose_protocol(measured)}")


if __name__ == "__main__":
    main()
