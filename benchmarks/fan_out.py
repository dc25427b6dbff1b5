"""Sampling and collection at scale, measured side by side in one run; writes a JSON result.

Alternatives per second on the bundled SmolLM2 with K=4, over the same states:
  (a) one `generate` call per sample, (b) one shared prefill per state (local sampling today),
  (d) the server backend against `transformers serve` started here on loopback with the same
      weights, at concurrency 1, 8 and 32.
(c), batched states per forward pass, is not built yet (issue 10, item 3).
Collection of 16 ScienceWorld variations (16 sources, one JVM each): (e) serially, with the default
runner (2 threads), and on a local Dask cluster of 2 workers, all as the build's collect task, uncached.

    PYTHONPATH=. .venv/bin/python benchmarks/fan_out.py [--states 4] [--skip-collection]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.sampling import STATE, _separate
from pipelines.config import BuildConfig
from pipelines.policy import load_policy, smollm2_folder
from pipelines.prompts import agent_prompt
from pipelines.sampling import generate_k
from pipelines.server import ServerPolicy, sample_server
from schemas import State

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [f"scienceworld:find-plant@{variation}" for variation in range(16)]


def states(n: int) -> list[State]:
    """n (at most 6) distinct states: the benchmark state with ever fewer steps of history."""
    return [
        dataclasses.replace(STATE, state_id=f"bench-{i}", history=STATE.history[: 6 - i % 6])
        for i in range(n)
    ]


def local(policy, chosen: list[State], params, how) -> float:
    started = time.perf_counter()
    for index, state in enumerate(chosen):
        how(policy, agent_prompt(state, policy.tokenizer, params.max_prompt_tokens), params, index)
    return time.perf_counter() - started


def serve(folder: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [str(Path(sys.executable).parent / "transformers"), "serve", "--host", "127.0.0.1"]
    process = subprocess.Popen(
        [*command, "--port", str(port), str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    import httpx2

    for _ in range(300):
        try:
            if httpx2.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process, f"http://127.0.0.1:{port}/v1"
        except httpx2.TransportError:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError("transformers serve did not start")


def collection(runner: str) -> float:
    from prefect import flow
    from prefect.cache_policies import NO_CACHE
    from prefect.task_runners import ThreadPoolTaskRunner

    from flows.build import collect_source
    from flows.runners import task_runner

    serial = ThreadPoolTaskRunner(max_workers=1)
    chosen = serial if runner == "serial" else task_runner(BuildConfig(runner=runner, workers=2))
    uncached = collect_source.with_options(cache_policy=NO_CACHE, persist_result=False)

    @flow(name="collect-benchmark")
    def collect_all() -> int:
        futures = [uncached.submit(spec, None) for spec in SOURCES]
        return sum(future.result().trajectories.num_rows for future in futures)

    started = time.perf_counter()
    assert collect_all.with_options(task_runner=chosen)() == len(SOURCES)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--states", type=int, default=4)
    parser.add_argument("--skip-collection", action="store_true")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/fan_out.json")
    args = parser.parse_args()
    if not 1 <= args.states <= 6:
        parser.error("--states must be 1 to 6")
    params = BuildConfig(k=4).sampling
    chosen = states(args.states)
    alternatives = len(chosen) * params.k
    rates: dict[str, float] = {}

    policy = load_policy("smollm2")
    local(policy, chosen[:1], params, generate_k)  # warm-up
    for name, how in (("(a) one generate per sample", _separate), ("(b) shared prefill", generate_k)):
        rates[name] = alternatives / local(policy, chosen, params, how)

    with tempfile.TemporaryDirectory() as tmp:  # the same weights, sampling on (see README)
        folder = Path(tmp) / "smollm2-sampling"
        shutil.copytree(smollm2_folder(), folder)
        generation = json.loads((folder / "generation_config.json").read_text())
        (folder / "generation_config.json").write_text(json.dumps(generation | {"do_sample": True}))
        process, base_url = serve(folder)
        try:
            for concurrency in (1, 8, 32):
                server = ServerPolicy(
                    name=f"openai:{folder}",
                    model=str(folder),
                    base_url=base_url,
                    tokenizer=policy.tokenizer,
                    concurrency=concurrency,
                    api_key="EMPTY",
                )
                seeds = list(range(len(chosen)))
                sample_server(server, chosen[:1], params, seeds[:1])  # warm-up
                started = time.perf_counter()
                sample_server(server, chosen, params, seeds)
                rates[f"(d) server, concurrency {concurrency}"] = alternatives / (
                    time.perf_counter() - started
                )
        finally:
            process.kill()

    seconds: dict[str, float] = {}
    if not args.skip_collection:
        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        from flows.settings import prefect_api

        with prefect_api():
            for runner in ("serial", "threads", "dask"):  # threads: the default runner, 2 at once
                seconds[f"(e) 16 sources, {runner}"] = collection(runner)

    baseline = rates["(b) shared prefill"]
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "states": len(chosen),
        "k": params.k,
        "alternatives_per_second": rates,
        "ratio_to_shared_prefill": {name: rate / baseline for name, rate in rates.items()},
        "collection_seconds": seconds,
    }
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for name, rate in rates.items():
        print(f"{name:>32}: {rate:6.2f} alternatives/s  ({rate / baseline:.2f}x shared prefill)")
    for name, value in seconds.items():
        print(f"{name:>32}: {value:6.1f} s")


if __name__ == "__main__":
    main()
