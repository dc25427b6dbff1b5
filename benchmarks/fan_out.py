"""Sampling and collection at scale, measured side by side in one run; writes a JSON result.

Alternatives per second on the bundled SmolLM2 with K=4, over the same states:
  (a) one `generate` call per sample, (b) one shared prefill per state (local sampling before the
      batched decoder), (c) batched states per forward pass (`pipelines.policy.decoding`, local sampling now),
      on states of one trajectory (prompts share their early steps), on states of unrelated tasks
      (prompts share only the chat template's first tokens), and on the first 32 states a build of
      two ScienceWorld tasks samples, in its batches of 8 (long histories: prompts at the 1024-token
      limit, sharing their task's instructions);
  (d) the server backend against `transformers serve` started here on loopback with the same
      weights, at concurrency 1, 8 and 32;
  (f) the server backend against a loopback server that answers every request after a fixed 200 ms,
      at concurrency 1, 8 and 32 (what the client itself adds).
Collection of 16 ScienceWorld variations (16 sources, one JVM each): (e) serially, with the default
runner (2 threads), and on a local Dask cluster of 2 workers, all as the build's collect task, uncached.

    PYTHONPATH=. .venv/bin/python benchmarks/fan_out.py [--states 6] [--skip-serve] [--skip-collection]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from actforge.pipelines.config import BuildConfig
from actforge.pipelines.policy.decoding import sample_prompts
from actforge.pipelines.policy.models import load_policy, load_tokenizer, smollm2_folder
from actforge.pipelines.policy.server import ServerPolicy, sample_server
from actforge.pipelines.text.prompts import agent_prompt
from actforge.schemas import State
from benchmarks.sampling import STATE, _separate, generate_k
from tests.support.openai_server import CompletionServer

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [f"scienceworld:find-plant@{variation}" for variation in range(16)]


def states(n: int) -> list[State]:
    """n (at most 6) distinct states: the benchmark state with ever fewer steps of history."""
    return [
        dataclasses.replace(STATE, state_id=f"bench-{i}", history=STATE.history[: 6 - i % 6])
        for i in range(n)
    ]


ENVIRONMENTS = ("scienceworld", "alfworld", "webshop", "generic")
FIXED_DELAY = 0.2  # seconds the fixed-latency server waits before each answer
FIXED_STATES = 128
REAL_SOURCE = "scienceworld:find-plant,boil@train:1"  # live gold runs, as a build collects them
REAL_STATES = 32  # the first four sampling batches of a build of REAL_SOURCE


class Shown(dict):
    """A result table that prints each entry as it is measured (a long run shows its progress)."""

    def __setitem__(self, name: str, value: float) -> None:
        print(f"  measured {name}: {value:.3f}", flush=True)
        super().__setitem__(name, value)

    def update(self, other: dict[str, float]) -> None:  # type: ignore[override]
        for name, value in other.items():
            self[name] = value


def unrelated(n: int) -> list[State]:
    """n states of different environments and tasks, each with the benchmark state's 6-step history."""
    return [
        dataclasses.replace(
            STATE,
            state_id=f"unrelated-{i}",
            environment=ENVIRONMENTS[i % len(ENVIRONMENTS)],
            instruction=f"Task {i}: " + STATE.instruction,
        )
        for i in range(n)
    ]


def build_states(spec: str, n: int, params) -> list[State]:
    """The first n states a build of `spec` would sample, in its order (a trajectory at a time)."""
    from actforge.pipelines import steps
    from actforge.pipelines.sources.registry import collect
    from actforge.pipelines.store.database import Store
    from actforge.pipelines.store.states import load_states

    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "bench.duckdb") as store:
        ids, _ = steps.record(store, collect(spec, progress=False))
        todo = steps.pending(store, steps.select(store, ids, None), "bench", None, params)[:n]
        return load_states(store, ids, todo, BuildConfig.history_chars)


def local(policy, chosen: list[State], params, how) -> float:
    started = time.perf_counter()
    for index, state in enumerate(chosen):
        how(policy, agent_prompt(state, policy.tokenizer, params.max_prompt_tokens), params, index)
    return time.perf_counter() - started


def batched(policy, chosen: list[State], params, batch_size: int = 8) -> float:
    """The build's way: batches of `batch_size` states, each decoded together."""
    started = time.perf_counter()
    for start in range(0, len(chosen), batch_size):
        batch = chosen[start : start + batch_size]
        prompts = [agent_prompt(state, policy.tokenizer, params.max_prompt_tokens) for state in batch]
        sample_prompts(policy, prompts, params, list(range(start, start + len(batch))))
    return time.perf_counter() - started


def _fixed_server(urls: multiprocessing.Queue, stop: multiprocessing.Event) -> None:
    with CompletionServer(api_key="EMPTY", delay=FIXED_DELAY) as server:
        urls.put(server.base_url)
        stop.wait()


def fixed_latency(tokenizer, params) -> dict[str, float]:
    """Alternatives per second through the server backend against answers that take FIXED_DELAY.
    The server runs in a process of its own, as a real server would, so only the client is timed."""
    chosen = [
        dataclasses.replace(state, state_id=f"fixed-{i}") for i, state in enumerate(unrelated(FIXED_STATES))
    ]
    urls, stop = multiprocessing.Queue(), multiprocessing.Event()
    process = multiprocessing.Process(target=_fixed_server, args=(urls, stop), daemon=True)
    process.start()
    rates = {}
    try:
        base_url = urls.get(timeout=60)
        warm = ServerPolicy("openai:fixed", "fixed", base_url, tokenizer, 1, "EMPTY")
        sample_server(warm, chosen[:1], params, [0])  # imports the client
        for concurrency in (1, 8, 32):
            policy = ServerPolicy("openai:fixed", "fixed", base_url, tokenizer, concurrency, "EMPTY")
            started = time.perf_counter()
            sample_server(policy, chosen, params, list(range(len(chosen))))
            rates[f"(f) fixed {FIXED_DELAY * 1000:.0f} ms server, concurrency {concurrency}"] = (
                len(chosen) * params.k / (time.perf_counter() - started)
            )
    finally:
        stop.set()
        process.join(timeout=10)
    return rates


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

    from actforge.flows.build import collect_source
    from actforge.flows.runners import task_runner

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
    parser.add_argument("--states", type=int, default=6)
    parser.add_argument("--skip-serve", action="store_true", help="leave out (d), transformers serve")
    parser.add_argument("--skip-collection", action="store_true", help="leave out (e)")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/fan_out.json")
    args = parser.parse_args()
    if not 1 <= args.states <= 6:
        parser.error("--states must be 1 to 6")
    params = BuildConfig(k=4).sampling
    chosen = states(args.states)
    alternatives = len(chosen) * params.k
    rates: dict[str, float] = Shown()

    # The client alone first, before a model loads here (torch's threads would compete for the cores).
    rates.update(fixed_latency(load_tokenizer(smollm2_folder()), params))
    policy = load_policy("smollm2")
    local(policy, chosen[:1], params, generate_k)  # warm-up
    batched(policy, chosen[:1], params)
    for name, how in (("(a) one generate per sample", _separate), ("(b) shared prefill", generate_k)):
        rates[name] = alternatives / local(policy, chosen, params, how)
    rates["(c) batched states"] = alternatives / batched(policy, chosen, params)
    others = unrelated(len(chosen))
    rates["(b) shared prefill, unrelated states"] = alternatives / local(policy, others, params, generate_k)
    rates["(c) batched, unrelated states"] = alternatives / batched(policy, others, params)
    real = build_states(REAL_SOURCE, REAL_STATES, params)
    real_alternatives = len(real) * params.k
    rates["(b) shared prefill, build states"] = real_alternatives / local(policy, real, params, generate_k)
    rates["(c) batched, build states"] = real_alternatives / batched(policy, real, params)

    with tempfile.TemporaryDirectory() as tmp:  # the same weights, sampling on (see README)
        folder = Path(tmp) / "smollm2-sampling"
        shutil.copytree(smollm2_folder(), folder)
        generation = json.loads((folder / "generation_config.json").read_text())
        (folder / "generation_config.json").write_text(json.dumps(generation | {"do_sample": True}))
        process, base_url = serve(folder) if not args.skip_serve else (None, "")
        try:
            for concurrency in (1, 8, 32) if process else ():
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
            if process:
                process.kill()

    seconds: dict[str, float] = Shown()
    if not args.skip_collection:
        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        from actforge.flows.settings import prefect_api

        with prefect_api():
            for runner in ("serial", "threads", "dask"):  # threads: the default runner, 2 at once
                seconds[f"(e) 16 sources, {runner}"] = collection(runner)

    baseline = rates["(b) shared prefill"]
    fixed = [rate for name, rate in rates.items() if name.startswith("(f)")]
    ratios = {
        "(c) / (b), one trajectory": rates["(c) batched states"] / baseline,
        "(c) / (b), unrelated states": rates["(c) batched, unrelated states"]
        / rates["(b) shared prefill, unrelated states"],
        "(c) / (b), build states": rates["(c) batched, build states"]
        / rates["(b) shared prefill, build states"],
        "(f) concurrency 32 / concurrency 1": fixed[-1] / fixed[0],
    }
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "states": len(chosen),
        "k": params.k,
        "alternatives_per_second": rates,
        "ratio_to_shared_prefill": {name: rate / baseline for name, rate in rates.items()},
        "ratios": ratios,
        "collection_seconds": seconds,
    }
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for name, rate in rates.items():
        print(f"{name:>40}: {rate:6.2f} alternatives/s  ({rate / baseline:.2f}x shared prefill)")
    for name, value in ratios.items():
        print(f"{name:>40}: {value:6.2f}")
    for name, value in seconds.items():
        print(f"{name:>40}: {value:6.1f} s")


if __name__ == "__main__":
    main()
