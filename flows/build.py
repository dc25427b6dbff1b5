"""The `build` flow: collect -> states -> sample -> store -> (verify) -> publish, as Prefect tasks.

Collection runs concurrently (bounded by the task runner); sampling runs batch by batch in this
process, because one model on one machine gains nothing from parallel batches, or, with the Dask
runner (`flows.runners`), on the cluster's workers while the flow stores what comes back. Both are
cached with persisted results (beside the store unless `cache_dir` says otherwise), keyed on their
inputs and the task code: collection also on the source's content, so a changed file is read again.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow as pa
from prefect import Task, flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import INPUTS, NO_CACHE, TASK_SOURCE
from prefect.client.schemas.objects import State as PrefectState
from prefect.futures import PrefectFuture, as_completed
from tqdm.auto import tqdm

from actforge.flows.runners import task_runner
from actforge.pipelines import steps
from actforge.pipelines.config import BuildConfig
from actforge.pipelines.curate.filters import FilterConfig
from actforge.pipelines.curate.verify import verify
from actforge.pipelines.policy.models import PolicySpec, legacy_policy_name, policy_name
from actforge.pipelines.policy.params import Backend, SamplingParams, Usage
from actforge.pipelines.policy.sampling import sample_states
from actforge.pipelines.publish.card import summary, summary_markdown
from actforge.pipelines.sources.base import Collected
from actforge.pipelines.sources.registry import collect, fingerprint
from actforge.pipelines.store.database import Store
from actforge.pipelines.store.states import load_states
from actforge.schemas import Sample, State

VERIFY_BATCH = 256  # (state, action) pairs one engine tries per task: a commit every few seconds to minutes


@task(name="collect", cache_policy=INPUTS + TASK_SOURCE, persist_result=True)
def collect_source(spec: str, fmt: str | None, content: str) -> Collected:
    """`content`: the source's fingerprint (`registry.fingerprint`), so a changed file is read again."""
    return collect(spec, fmt=fmt, progress=True)


@lru_cache(maxsize=2)
def _policy(spec: PolicySpec) -> Backend:
    """Load each policy once per process, and only when some batch needs it."""
    return spec.load()


@task(name="sample-batch", cache_policy=INPUTS + TASK_SOURCE, persist_result=True, retries=1)
def sample_batch(
    spec: PolicySpec, name: str, states: list, params: SamplingParams, filters: FilterConfig
) -> tuple[list[Sample], dict[str, int]]:
    """Samples of one batch and what they asked of a policy server; `name` (model identity) keys the
    cache, `spec` says where it comes from."""
    backend = _policy(spec)
    before = backend.usage.as_dict()
    samples = sample_states(backend, states, params, filters)
    return samples, backend.usage.since(before)


@task(name="verify-batch", cache_policy=NO_CACHE, retries=1)
def verify_batch(spec: str, items: pa.Table, prefixes: dict[str, list[str]], pool: int) -> pa.Table:
    """One engine (and a pool of `pool`) tries one batch of (state, action) of one live source; the
    store keeps the result."""
    return verify(spec, items, prefixes, pool)


def _verified(db: Store, trajectory_ids: list[str], pool: int) -> int:
    """Verify what the store has not verified yet, a batch at a time (each committed when done, so an
    interrupted run pays for nothing twice); batches run concurrently, each on `1 + pool` engines."""
    todo = steps.unverified(db, trajectory_ids)
    total = sum(items.num_rows for items in todo.values())
    if not total:
        return 0
    prefixes = db.expert_actions(trajectory_ids)
    futures = [
        verify_batch.submit(
            spec, batch, {t: prefixes[t] for t in set(batch["trajectory_id"].to_pylist())}, pool
        )
        for spec, items in todo.items()
        for batch in (items.slice(start, VERIFY_BATCH) for start in range(0, items.num_rows, VERIFY_BATCH))
    ]
    added = 0
    with tqdm(total=total, desc="verifying", unit="action") as bar:
        for future in as_completed(futures):
            verified = future.result()
            added += steps.record_verifications(db, verified)
            bar.update(verified.num_rows)
    return added


def _sampled(
    sample: Task, arguments: dict[str, Any], batches: Iterator[list[State]], config: BuildConfig
) -> Iterator[tuple[list[State], PrefectState]]:
    """(states, final task state) per batch. In this process, one batch at a time (one model gains
    nothing from parallel batches, and torch's seeded sampling is per process); on Dask workers, a
    window of batches in flight, yielded as they finish, so the flow stays the store's only writer
    and holds a bounded number of batches. The flow's actual task runner decides, not the config."""
    from prefect.context import FlowRunContext
    from prefect_dask import DaskTaskRunner

    context = FlowRunContext.get()
    if context is None or not isinstance(context.task_runner, DaskTaskRunner):
        for batch in batches:
            yield batch, sample(states=batch, return_state=True, **arguments)
        return
    in_flight: dict[PrefectFuture, list[State]] = {}
    for batch in batches:
        in_flight[sample.submit(states=batch, **arguments)] = batch
        if len(in_flight) >= 2 * config.workers:
            yield _first_finished(in_flight)
    while in_flight:
        yield _first_finished(in_flight)


def _sample(
    db: Store, config: BuildConfig, trajectory_ids: list[str], todo: list[str], name: str
) -> dict[str, Any]:
    """Sample the pending states batch by batch, storing each batch as it comes. A server cap
    (`--max-requests`, `--max-tokens`) stops it between batches: what is stored stays, and the next
    run samples the rest."""
    sample_cached = sample_batch.with_options(result_storage=config.cache_path)
    batches = (
        load_states(db, trajectory_ids, todo[start : start + config.batch_size], config.history_chars)
        for start in range(0, len(todo), config.batch_size)
    )
    arguments = {
        "spec": config.policy_spec,
        "name": name,
        "params": config.sampling,
        "filters": config.filters,
    }
    run: dict[str, Any] = {"policy_calls": 0}
    usage = Usage()
    with tqdm(total=len(todo), desc="sampling", unit="state", disable=not todo) as bar:
        for batch, state in _sampled(sample_cached, arguments, batches, config):
            samples, asked = state.result()
            # A cached batch (the store was lost or is new) is served without calling the model.
            if state.name != "Cached":
                run["policy_calls"] += len(batch)
                usage.add(asked)
            steps.store_batch(db, batch, samples)
            bar.update(len(batch))
            if (cap := config.cap_reached(usage)) is not None:
                run |= {"stopped_at": cap, "states_pending": len(todo)}
                break
    if not usage.requests:  # a local model, or nothing new to sample
        return run
    db.record_usage(usage.as_dict())
    return run | {f"server_{key}": value for key, value in usage.as_dict().items()}


def _first_finished(in_flight: dict[PrefectFuture, list[State]]) -> tuple[list[State], PrefectState]:
    future = next(as_completed(list(in_flight)))
    future.wait()  # fetches the final state from the worker
    return in_flight.pop(future), future.state


@task(name="publish", cache_policy=NO_CACHE)
def publish(
    store: Store, config: BuildConfig, trajectory_ids: list[str], policy: str, read: list[str]
) -> dict:
    """`read`: the sources as their records name them (a Hub spec pinned to its commit)."""
    return steps.publish_dataset(
        store,
        Path(config.out),
        trajectory_ids,
        steps.read_sources(config.sources, read),
        config.provenance(policy),
        config.history_chars,
        config.drop_outcome,
        config.with_report,
        config.critic_history_chars,
        config.leakage,
    )


@flow(name="build", task_runner=task_runner(BuildConfig()))
def build(config: BuildConfig) -> dict[str, Any]:
    """Build a critique dataset into `config.out`; returns what this run added and the dataset's counts."""
    config.check_ready()
    out_path, store_path, results = Path(config.out), config.store_path, config.cache_path
    params = config.sampling
    name = policy_name(config.policy)
    fingerprints = [fingerprint(spec) for spec in config.sources]  # the stamp's, and collection's cache keys
    collected = Collected()
    collect_cached = collect_source.with_options(result_storage=results)
    submitted = [
        collect_cached.submit(s, config.format, f) for s, f in zip(config.sources, fingerprints, strict=True)
    ]
    for future in submitted:
        collected.extend(future.result())
    with Store(store_path) as db:
        trajectory_ids, run = steps.record(db, collected)
        chosen = steps.select(db, trajectory_ids, config.max_states)
        todo = steps.pending(db, chosen, name, legacy_policy_name(config.policy), params)
        run.update(_sample(db, config, trajectory_ids, todo, name))
        run.update(steps.finish(db))
        if config.verify:
            run["verifications_added"] = _verified(db, trajectory_ids, config.verify_pool)
        read = collected.trajectories["source"].to_pylist() + collected.quarantined["source"].to_pylist()
        manifest = publish(db, config, trajectory_ids, name, sorted(set(read)))
        run["quarantined"] = collected.quarantined.num_rows
        result = {
            "run": run,
            "stats": manifest["stats"],
            "version": manifest["version"],
            "out": str(out_path),
        }
        if "stopped_at" not in run:  # complete: a rerun with the same stamp has nothing to do
            steps.record_stamp(db, config, steps.build_stamp(db, config, name, fingerprints), result)
    counts = [{"count": key, "this run": value} for key, value in run.items()]
    counts += [
        {"count": f"dataset {k}", "this run": v} for k, v in manifest["stats"].items() if isinstance(v, int)
    ]
    create_table_artifact(key="build-counts", table=counts, description=f"actforge build of {out_path}")
    create_markdown_artifact(key="dataset-card", markdown=summary_markdown(summary(manifest)))
    return result
