"""The `build` flow: collect -> states -> sample -> store -> publish, as Prefect tasks.

Collection runs concurrently (bounded by the task runner); sampling runs batch by batch in this
process, because one model on one machine gains nothing from parallel batches. Both are cached
with persisted results (beside the store unless `cache_dir` says otherwise), keyed on their inputs
and the task code: collection also on the source's content, so a changed file is read again.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import INPUTS, NO_CACHE, TASK_SOURCE, CacheKeyFnPolicy
from prefect.task_runners import ThreadPoolTaskRunner
from tqdm.auto import tqdm

from pipelines import steps
from pipelines.filters import FilterConfig
from pipelines.policy import DEFAULT_POLICY, Policy, load_policy, policy_name
from pipelines.publish import card_summary
from pipelines.sampling import SamplingParams, sample_states
from pipelines.sources import Collected, collect, fingerprint
from pipelines.store import Store
from schemas import SCHEMA_VERSION, Sample

COLLECT_WORKERS = 2


SOURCE_CONTENT = CacheKeyFnPolicy(cache_key_fn=lambda _ctx, inputs: fingerprint(inputs["spec"]))


@task(name="collect", cache_policy=INPUTS + TASK_SOURCE + SOURCE_CONTENT, persist_result=True)
def collect_source(spec: str, fmt: str | None) -> Collected:
    return collect(spec, fmt=fmt, progress=True)


@lru_cache(maxsize=2)
def _policy(name_or_dir: str, trust_remote_code: bool) -> Policy:
    """Load each policy once per process, and only when some batch needs it."""
    return load_policy(name_or_dir, trust_remote_code=trust_remote_code)


@task(name="sample-batch", cache_policy=INPUTS + TASK_SOURCE, persist_result=True, retries=1)
def sample_batch(
    policy: str,
    name: str,
    trust_remote_code: bool,
    states: list,
    params: SamplingParams,
    filters: FilterConfig,
) -> list[Sample]:
    """Samples of one batch; `name` (model identity) keys the cache, `policy` says where it loads from."""
    return sample_states(_policy(policy, trust_remote_code), states, params, filters)


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
    cache_dir: str | None = None,
) -> dict[str, Any]:
    """Build a critique dataset into `out`; returns what this run added and the dataset's counts."""
    out_path = Path(out)
    store_path = Path(store) if store else default_store(out_path)
    results = Path(cache_dir) if cache_dir else store_path.with_suffix(".cache")
    params = SamplingParams(k=k, seed=seed)
    filters = FilterConfig(admissible=admissible)
    name = policy_name(policy)
    collected = Collected()
    collect_cached = collect_source.with_options(result_storage=results)
    for future in [collect_cached.submit(spec, fmt) for spec in sources]:
        collected.extend(future.result())
    sample_cached = sample_batch.with_options(result_storage=results)
    with Store(store_path) as db:
        states, run = steps.record(db, collected)
        chosen = steps.select(states, max_states)
        todo = steps.pending(db, chosen, name, params)
        run.update(samples_added=0, pairs_added=0, policy_calls=0)
        with tqdm(total=len(todo), desc="sampling", unit="state", disable=not todo) as bar:
            for start in range(0, len(todo), batch_size):
                batch = todo[start : start + batch_size]
                state = sample_cached(
                    policy, name, trust_remote_code, batch, params, filters, return_state=True
                )
                # A cached batch (the store was lost or is new) is served without calling the model.
                if state.name != "Cached":
                    run["policy_calls"] += len(batch)
                for key, value in steps.store_batch(db, batch, state.result()).items():
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
    counts = [{"count": key, "this run": value} for key, value in run.items()]
    counts += [
        {"count": f"dataset {k}", "this run": v} for k, v in manifest["stats"].items() if isinstance(v, int)
    ]
    create_table_artifact(key="build-counts", table=counts, description=f"actforge build of {out_path}")
    create_markdown_artifact(key="dataset-card", markdown=card_summary(out_path))
    return {"run": run, "stats": manifest["stats"], "version": manifest["version"], "out": str(out_path)}
