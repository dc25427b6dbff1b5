"""The `build` flow: collect -> states -> sample -> store -> publish, as Prefect tasks.

Collection runs concurrently (bounded by the task runner); sampling runs batch by batch in this
process, because one model on one machine gains nothing from parallel batches.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner
from tqdm.auto import tqdm

from pipelines import steps
from pipelines.filters import FilterConfig
from pipelines.policy import DEFAULT_POLICY, load_policy, policy_name
from pipelines.sampling import SamplingParams
from pipelines.sources import Collected, collect
from pipelines.store import Store
from schemas import SCHEMA_VERSION

COLLECT_WORKERS = 2


@task(name="collect", cache_policy=NO_CACHE)
def collect_source(spec: str, fmt: str | None) -> Collected:
    return collect(spec, fmt=fmt, progress=True)


@task(name="sample-batch", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=1)
def sample_batch(
    store: Store, policy: Any, states: list, params: SamplingParams, filters: FilterConfig
) -> dict:
    return steps.sample_batch(store, policy, states, params, filters)


@task(name="publish", cache_policy=NO_CACHE)
def publish(store: Store, out: Path, trajectory_ids: list[str], sources: list[str], provenance: dict) -> dict:
    return steps.publish_dataset(store, out, trajectory_ids, sources, provenance)


def default_store(out: Path) -> Path:
    """The store sits beside the dataset, never inside it."""
    return out.parent / f"{out.name}.duckdb"


@flow(name="build", task_runner=ThreadPoolTaskRunner(max_workers=COLLECT_WORKERS))
def build(
    sources: list[str],
    out: str,
    store: str | None = None,
    policy: str = DEFAULT_POLICY,
    k: int = 4,
    max_states: int | None = None,
    seed: int = 0,
    fmt: str | None = None,
    admissible: str = "off",
    batch_size: int = 8,
    trust_remote_code: bool = False,
) -> dict[str, Any]:
    """Build a critique dataset into `out`; returns what this run added and the dataset's counts."""
    out_path = Path(out)
    params = SamplingParams(k=k, seed=seed)
    filters = FilterConfig(admissible=admissible)
    name = policy_name(policy)
    collected = Collected()
    for future in [collect_source.submit(spec, fmt) for spec in sources]:
        collected.extend(future.result())
    with Store(store or default_store(out_path)) as db:
        states, run = steps.record(db, collected)
        chosen = steps.select(states, max_states)
        todo = steps.pending(db, chosen, name, params)
        run.update(samples_added=0, pairs_added=0, policy_calls=0)
        if todo:
            loaded = load_policy(policy, trust_remote_code=trust_remote_code)
            with tqdm(total=len(todo), desc="sampling", unit="state") as bar:
                for start in range(0, len(todo), batch_size):
                    batch = todo[start : start + batch_size]
                    for key, value in sample_batch(db, loaded, batch, params, filters).items():
                        run[key] += value
                    bar.update(len(batch))
        provenance = {
            "sources": list(sources),
            "policy": name,
            "k": k,
            "seed": seed,
            "sampling": params.as_dict(),
            "filters": filters.as_dict(),
            "max_states": max_states,
            "schema_version": SCHEMA_VERSION,
        }
        trajectory_ids = sorted({t.trajectory_id for t in collected.trajectories})
        manifest = publish(db, out_path, trajectory_ids, list(sources), provenance)
    run["quarantined"] = len(collected.quarantined)
    return {"run": run, "stats": manifest["stats"], "out": str(out_path)}
