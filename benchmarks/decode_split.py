"""Where sampling's time goes: prefill against decode, for decode groups of a given size.

The demo's 64 states (as `benchmarks/floor.py` takes them), sampled with the prefix cache in groups
of `--group` states (the build uses `--batch-size`, 8), the prefill timed apart from the rest.
Prints s/state, prefill s and decode s, and whether the texts equal those of groups of 8.

    PYTHONPATH=. .venv/bin/python benchmarks/decode_split.py [--group 8]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

from actforge.pipelines.policy import decoding
from actforge.pipelines.policy.models import load_policy
from actforge.pipelines.policy.prefix_cache import PrefixCache
from benchmarks.floor import ROOT, project_prompts


def run(policy, prompts, seeds, params, group: int) -> tuple[float, float, list[list[str]]]:
    """Total and prefill seconds, and the texts, sampling `group` prompts at a time."""
    spent = [0.0]
    prefill = decoding._prefill

    def timed(*args):
        started = time.perf_counter()
        result = prefill(*args)
        spent[0] += time.perf_counter() - started
        return result

    decoding._prefill = timed
    try:
        cached, texts, started = replace(policy, prefix_cache=PrefixCache()), [], time.perf_counter()
        for start in range(0, len(prompts), group):
            chosen = slice(start, start + group)
            texts += decoding.sample_prompts(
                cached, prompts[chosen], params, seeds[chosen], budget=group * 4 * 1152
            )
        return time.perf_counter() - started, spent[0], texts
    finally:
        decoding._prefill = prefill


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=ROOT / "actforge.yaml")
    parser.add_argument("--group", type=int, default=8)
    args = parser.parse_args()
    policy = load_policy()
    batches, seeds, params = project_prompts(args.project, policy.tokenizer, policy.name)
    prompts, seeds = [p for b in batches for p in b], [s for b in seeds for s in b]
    decoding.sample_prompts(replace(policy, prefix_cache=PrefixCache(0)), prompts[:1], params, seeds[:1])
    total, prefill, texts = run(policy, prompts, seeds, params, args.group)
    same = texts == run(policy, prompts, seeds, params, 8)[2] if args.group != 8 else True
    print(
        f"group {args.group}: {total / len(prompts):.3f} s/state; prefill {prefill:.2f} s; "
        f"decode {total - prefill:.2f} s; same texts as groups of 8: {same}"
    )


if __name__ == "__main__":
    main()
