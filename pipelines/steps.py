"""The build's steps over the store, each pure and testable; the Prefect flow composes them.

record (trajectories, steps, quarantine) -> select -> pending -> states of a batch -> stage samples
and pairs -> finish (one merge) -> with `--verify`, unverified -> record_verifications -> publish ->
record_stamp. Reruns are cheap because every step asks the store what is already there, and a rerun
with nothing to do is found before any of it (`unchanged`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from actforge.pipelines.config import BuildConfig
from actforge.pipelines.curate.pairs import pairs_table
from actforge.pipelines.policy.models import policy_name
from actforge.pipelines.policy.params import SamplingParams
from actforge.pipelines.publish.dataset import publish
from actforge.pipelines.sources.base import LIVE, Collected
from actforge.pipelines.sources.registry import fingerprint
from actforge.pipelines.store.database import Store
from actforge.pipelines.store.queries import contents, stamp, stamped
from actforge.pipelines.text.critic import DEFAULT_HISTORY_CHARS
from actforge.schemas import SAMPLE_SCHEMA, Sample, State, records_table
from actforge.schemas.ids import content_hash


def record(store: Store, collected: Collected) -> tuple[list[str], dict[str, int]]:
    """Store what the sources yielded; returns the stored ids of the collected trajectories.

    Where a live engine's text changed since the first collection, the stored version stays the
    truth (the merge keeps the first copy of each trajectory), so reruns match.
    """
    store.stage(
        {
            "trajectories": collected.trajectories,
            "steps": collected.steps,
            "quarantine": collected.quarantined,
        }
    )
    added = store.merge()
    run = {
        "trajectories_added": added["trajectories"],
        "states_added": added["steps"],
        "quarantined_added": added["quarantine"],
    }
    return store.trajectory_ids(collected.trajectories["trajectory_id"].to_pylist()), run


def select(store: Store, trajectory_ids: Sequence[str], max_states: int | None) -> list[str]:
    """A deterministic subset: the first `max_states` states, whole trajectories spread over the
    splits (`Store.state_ids`)."""
    return store.state_ids(trajectory_ids, max_states)


def pending(
    store: Store, state_ids: Sequence[str], policy: str, legacy: str | None, params: SamplingParams
) -> list[str]:
    """States with no samples yet for this policy (under its name, or the `legacy` name of the same
    folder) and sampling parameters; a trajectory's states together, in step order."""
    return store.unsampled(state_ids, store.policy_names(policy, legacy), params.digest)


def store_batch(store: Store, states: Sequence[State], samples: Sequence[Sample]) -> None:
    """Stage one batch's samples and the pairs they make; both commit together."""
    store.stage({"samples": records_table(samples, SAMPLE_SCHEMA), "pairs": pairs_table(states, samples)})


def finish(store: Store) -> dict[str, int]:
    """Merge what the batches staged: new samples and pairs, each key once across every run."""
    added = store.merge()
    return {"samples_added": added["samples"], "pairs_added": added["pairs"]}


def read_sources(given: Sequence[str], read: Sequence[str]) -> Sequence[str]:
    """The sources to count (quarantine is recorded under the name a record gives its source) and,
    where a record names one pinned (a Hub spec at its commit), `provenance.pinned` lists it."""
    return sorted(set(given) | set(read))


def publish_dataset(
    store: Store,
    out: Path,
    trajectory_ids: Sequence[str],
    sources: Sequence[str],
    provenance: dict[str, Any],
    history_chars: int,
    drop: Sequence[str] = (),
    with_report: bool = False,
    critic_history_chars: int = DEFAULT_HISTORY_CHARS,
    leakage: str = "report",
) -> dict[str, Any]:
    """Publish the pairs of these trajectories with the dataset's counts in manifest and card,
    leaving out pairs whose verified alternative had an outcome in `drop` (and, with `leakage`
    "drop", held-out states whose prompt is in another split)."""
    stats = store.counts(trajectory_ids, sources, drop)
    pinned = sorted(set(sources) - set(provenance["sources"]))
    provenance = provenance | ({"pinned": pinned} if pinned else {})
    return publish(
        store,
        out,
        trajectory_ids,
        provenance,
        stats,
        history_chars,
        critic_history_chars=critic_history_chars,
        drop=drop,
        with_report=with_report,
        leakage=leakage,
    )


def build_stamp(store: Store, config: BuildConfig, policy: str, fingerprints: Sequence[str]) -> str:
    """What a build's outcome depends on: every setting, the policy's identity, the sources' content
    (`registry.fingerprint`, taken before collection), and what the store holds."""
    return content_hash(
        "build", [dataclasses.asdict(config), policy, list(fingerprints), contents(store.con)]
    )


def record_stamp(store: Store, config: BuildConfig, digest: str, result: dict[str, Any]) -> None:
    """Remember a complete build into `config.out`; a rerun with the same stamp adds nothing."""
    run = {key: value if key == "quarantined" else 0 for key, value in result["run"].items()}
    with store.transaction():
        stamp(store.con, config.out, digest, result | {"run": run})


def unchanged(config: BuildConfig) -> dict[str, Any] | None:
    """The result a build of `config` would return, when it would change nothing: its last complete
    build into the same folder had the same stamp (settings, sources' content, store contents) and
    that version is still in the folder. None when there may be work (the build then runs)."""
    manifest = Path(config.out) / "manifest.json"
    if not config.store_path.is_file() or not manifest.is_file():
        return None
    fingerprints = [fingerprint(spec) for spec in config.sources]
    with Store(config.store_path) as store:
        found = stamped(store.con, config.out)
        if found is None or found[0] != build_stamp(store, config, policy_name(config.policy), fingerprints):
            return None
    try:
        version = json.loads(manifest.read_text(encoding="utf-8")).get("version")
    except (OSError, ValueError):
        return None
    return found[1] if version == found[1]["version"] else None


def unverified(store: Store, trajectory_ids: Sequence[str]) -> dict[str, pa.Table]:
    """Per live source, the (state, action) pairs `--verify` has not tried yet."""
    todo = store.unverified(trajectory_ids, LIVE)
    return {
        source: todo.filter(pc.equal(todo["source"], source))
        for source in todo["source"].unique().to_pylist()
    }


def record_verifications(store: Store, verified: pa.Table) -> int:
    """Store one verified batch (committed at once, so an interrupted run keeps what it paid for)."""
    store.stage({"verifications": verified})
    return store.merge()["verifications"]
