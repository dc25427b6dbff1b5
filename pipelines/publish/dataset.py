"""Publish a dataset from the store: Parquet shards per config and split, manifest, dataset card.

Rows stream from the store batch by batch into pyarrow's dataset writer, so the dataset is never
held in memory whole. Outputs are a pure function of the store's content (no timestamps, fixed row
order and shard numbering): republishing the same pairs gives byte-identical files, and a publish
whose content equals the current version writes nothing.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from actforge.pipelines.publish.card import SCHEMAS, longest_history, render_card
from actforge.pipelines.publish.layout import (
    CARD,
    FOLDERS,
    MANIFEST,
    commit,
    current,
    inside,
    intact,
    sha256_file,
    shard_name,
)
from actforge.pipelines.publish.leakage import find_leakage, without
from actforge.pipelines.publish.libraries import library_versions
from actforge.pipelines.publish.report import dataset_report
from actforge.pipelines.publish.versions import latest, next_version, same_version
from actforge.pipelines.store.database import Store
from actforge.pipelines.text.critic import DEFAULT_HISTORY_CHARS, act_table
from actforge.pipelines.text.preference import preference_table
from actforge.pipelines.text.world_model import world_model_table
from actforge.schemas import SCHEMA_VERSION, SPLITS
from actforge.schemas.vocab import ACT, DEFAULT, PREFERENCE, STATES, WORLD_MODEL

# Sized for the Hub's dataset viewer, which reads one row group at a time: rows of a few KB make
# groups of a few MB; a shard of 100,000 rows stays a few hundred MB compressed.
ROW_GROUP_ROWS = 1_000
SHARD_ROWS = 100_000
STAGING_PREFIX = ".publish-"  # a publish's own folder inside OUT, gone when it ends


def publish(
    store: Store,
    out: Path,
    trajectory_ids: Sequence[str],
    provenance: dict[str, Any],
    stats: dict[str, Any],
    history_chars: int,
    shard_rows: int = SHARD_ROWS,
    critic_history_chars: int = DEFAULT_HISTORY_CHARS,
    drop: Sequence[str] = (),
    with_report: bool = False,
    leakage: str = "report",
) -> dict[str, Any]:
    """Write the pairs of these trajectories (config `default`), their critic examples (`act`),
    states (`states`), preference rows and, after `--verify`, world-model rows to OUT; returns the
    manifest. Pairs whose verified alternative had an outcome in `drop` are left out (the stats
    count them); so are held-out states whose prompt is in another split with `leakage="drop"`.
    `with_report` adds the report's plots (`report/*.png`) and links them from the card.

    A publish whose content equals the current version writes nothing (every file stays byte for
    byte); otherwise it becomes the next version, recording its parent and what it added.
    """
    _check(stats, shard_rows)
    leak = find_leakage(store, list(trajectory_ids), history_chars)
    stats = stats | {"leakage": leak.stats(leakage == "drop")}
    held_out = leak.held_out_states if leakage == "drop" else frozenset()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    root = out.resolve()
    for leftover in root.glob(f"{STAGING_PREFIX}*"):  # from a publish that was killed
        shutil.rmtree(inside(root, leftover), ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=root))
    try:
        history = (history_chars, critic_history_chars)
        shards, sample = _write_all(store, staging, trajectory_ids, history, drop, held_out, shard_rows)
        content = _manifest(shards, provenance, stats, history_chars)
        previous = latest(current(root), store.last_publish(root))
        if same_version(previous, content) and intact(root, previous):
            manifest = previous
        else:
            manifest = content | next_version(previous, content) | {"built_with": library_versions()}
            if with_report:  # plots of this version, linked from its card
                manifest["report"] = dataset_report(manifest, staging)
            (staging / CARD).write_text(render_card(manifest, sample), encoding="utf-8")
            text = json.dumps(manifest, sort_keys=True, indent=2) + "\n"
            (staging / MANIFEST).write_text(text, "utf-8")
            commit(
                staging, root, [s["path"] for s in shards], [r["path"] for r in manifest.get("report", [])]
            )
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if store.last_publish(root) != manifest:
        store.record_publish(root, manifest)
    return manifest


def _write_all(
    store: Store,
    staging: Path,
    trajectory_ids: Sequence[str],
    history: tuple[int, int],
    drop: Sequence[str],
    held_out: frozenset[str],
    shard_rows: int,
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Every config's shards of every split, written into `staging`, and the card's sample row."""
    sample = _Sample()
    shards = []
    for split in SPLITS:
        for config in FOLDERS:
            rows = _rows(store, config, trajectory_ids, split, history, drop, held_out)
            if config == DEFAULT:
                rows = sample.watch(rows, split)
            shards += _write_split(config, split, rows, staging, shard_rows)
    return shards, sample.row


def _check(stats: dict[str, Any], shard_rows: int) -> None:
    """Refuse a publish that would write nothing useful, saying why (reasons counted)."""
    if shard_rows < 1:
        raise ValueError(f"shard_rows must be positive, got {shard_rows}")
    unknown = sorted(set(stats["pairs_by_split"]) - set(SPLITS))
    if unknown:
        raise ValueError(f"unknown split values {unknown}; expected {list(SPLITS)}")
    if stats["pairs"] == 0:
        why = {k: stats[k] for k in ("trajectories", "states", "samples", "quarantined")}
        reasons = (
            stats["quarantined_by_reason"] | stats["samples_by_reason"] | stats.get("pairs_rejected", {})
        )
        raise ValueError(f"no pairs to publish: {why}, reasons {reasons}")


def _rows(
    store: Store,
    config: str,
    trajectory_ids: Sequence[str],
    split: str,
    history: tuple[int, int],
    drop: Sequence[str],
    held_out: frozenset[str],
) -> Iterator[pa.RecordBatch]:
    """The batches of one config and split, in published order, less the states in `held_out`.
    `history`: the characters of history in a row, and in a critic prompt of the `act` config."""
    kind = "states" if config in (STATES, WORLD_MODEL) else "pairs"
    reader = (
        without(b, held_out) for b in store.published(kind, trajectory_ids, split, history[0], drop=drop)
    )
    tables = (pa.Table.from_batches([batch]) for batch in reader)
    if config == ACT:  # both orders of a pair stay adjacent, so batches split between pairs
        tables = (act_table(table, history[1]) for table in tables)
    elif config == PREFERENCE:
        tables = (preference_table(table) for table in tables)
    elif config == WORLD_MODEL:
        tables = (world_model_table(table, store.tried(table["state_id"].to_pylist())) for table in tables)
    for table in tables:
        yield from table.to_batches()


class _Sample:
    """The card's example row: the train row (else the first split's) with the longest history."""

    def __init__(self) -> None:
        self.length, self.row, self.split = -1, None, None

    def watch(self, batches: Iterator[pa.RecordBatch], split: str) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            found = longest_history(batch)
            better = found is not None and (self.split in (None, split)) and found[0] > self.length
            if better:
                self.length, self.row, self.split = found[0], found[1], split
            yield batch


def _write_split(
    config: str, split: str, batches: Iterator[pa.RecordBatch], staging: Path, shard_rows: int
) -> list[dict[str, Any]]:
    """Stream one split of one config into zstd shards; return their manifest entries."""
    parts = staging / f".parts-{config}-{split}"
    ds.write_dataset(
        batches,
        parts,
        schema=SCHEMAS[config],
        format="parquet",
        file_options=ds.ParquetFileFormat().make_write_options(compression="zstd"),
        basename_template="part-{i}.parquet",
        max_rows_per_file=shard_rows,
        max_rows_per_group=min(ROW_GROUP_ROWS, shard_rows),
        min_rows_per_group=min(ROW_GROUP_ROWS, shard_rows),
        use_threads=False,  # keeps the rows in order, so the bytes are the same on every run
    )
    files = sorted(parts.glob("part-*.parquet"), key=lambda p: int(p.stem.split("-")[1]))
    files = [f for f in files if pq.ParquetFile(f).metadata.num_rows]
    shards = []
    for index, file in enumerate(files):
        rel = shard_name(config, split, index, len(files))
        path = inside(staging, staging / rel)
        path.parent.mkdir(exist_ok=True)
        file.replace(path)
        shards.append(
            {
                "config": config,
                "path": rel,
                "split": split,
                "rows": pq.ParquetFile(path).metadata.num_rows,
                "sha256": sha256_file(path),
                "bytes": path.stat().st_size,
            }
        )
    shutil.rmtree(parts, ignore_errors=True)  # absent when the split has no rows
    return shards


def _manifest(
    shards: list[dict[str, Any]], provenance: dict[str, Any], stats: dict[str, Any], history_chars: int
) -> dict:
    splits: dict[str, int] = {}
    for shard in shards:
        if shard["config"] == DEFAULT:
            splits[shard["split"]] = splits.get(shard["split"], 0) + shard["rows"]
    return {
        "schema_version": SCHEMA_VERSION,
        "shards": shards,
        "splits": splits,
        "pairs": sum(splits.values()),
        "provenance": provenance,
        "stats": stats,
        "history_chars": history_chars,
    }
