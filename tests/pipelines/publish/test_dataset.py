"""publish(): real Parquet shards in tmp_path, read back with the real `datasets.load_dataset`."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
from importlib.metadata import version
from pathlib import Path

import datasets
import pytest
import yaml

from actforge.pipelines import steps
from actforge.pipelines.curate.filters import Verdict
from actforge.pipelines.publish.dataset import publish
from actforge.pipelines.publish.layout import read_manifest
from actforge.pipelines.sources.base import Collected, quarantine
from actforge.pipelines.store.database import Store
from actforge.pipelines.store.states import load_states
from actforge.pipelines.text.prompts import PROMPT_VERSION, WINDOW_RULE
from actforge.schemas import ACT_SCHEMA, PAIR_SCHEMA, SCHEMA_VERSION, STATE_SCHEMA
from actforge.schemas.vocab import CONFIGS, OUTCOME_MEANINGS, QUARANTINE_REASONS, SAMPLE_REASONS
from tests.support.factories import (
    BAD_RECORD,
    HISTORY_CHARS,
    PROVENANCE,
    TRAJECTORIES,
    accepted_samples,
    make_trajectory,
    numbered_steps,
    publish_pairs,
    trajectories_of,
)

pytestmark = pytest.mark.usefixtures("hf_offline")


def read_all(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def front_matter(out: Path) -> dict:
    text = (out / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_publish_writes_loadable_dataset(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    manifest = publish_pairs(out, quarantined=[BAD_RECORD])

    names = sorted(p.name for p in (out / "data").iterdir())
    assert names == [
        "test-00000-of-00001.parquet",
        "train-00000-of-00001.parquet",
        "validation-00000-of-00001.parquet",
    ]
    loaded = datasets.load_dataset(str(out))
    assert {s: len(loaded[s]) for s in loaded} == {"train": 20, "validation": 5, "test": 5}
    assert loaded["train"].column_names == PAIR_SCHEMA.names
    assert loaded["train"].features == datasets.Features.from_arrow_schema(PAIR_SCHEMA)
    row = loaded["train"][3]
    assert row["history"] == [{"observation": f"t0 obs {i}", "action": f"t0 act {i}"} for i in range(3)]
    assert [(r["trajectory_id"], r["step_index"]) for r in loaded["test"]] == [
        ("t4", 0),
        ("t4", 1),
        ("t4", 2),
        ("t5", 0),
        ("t5", 1),
    ]

    assert read_manifest(out) == manifest
    assert manifest["schema_version"] == SCHEMA_VERSION
    assert manifest["splits"] == {"train": 20, "validation": 5, "test": 5}
    assert manifest["pairs"] == 30
    assert manifest["provenance"] == PROVENANCE
    assert manifest["stats"] == {
        "trajectories": 6,
        "states": 30,
        "samples": 30,
        "samples_by_verdict": {"accepted": 30},
        "samples_by_reason": {"ok": 30},
        "pairs": 30,
        "pairs_by_split": {"train": 20, "validation": 5, "test": 5},
        "quarantined": 1,
        "quarantined_by_reason": {"invalid_json": 1},
        "leakage": {"states_in_several_splits": 0, "pairs_in_several_splits": 0},
    }
    for shard in manifest["shards"]:
        data = (out / shard["path"]).read_bytes()
        assert shard["sha256"] == hashlib.sha256(data).hexdigest()
        assert shard["bytes"] == len(data)
    text = (out / "manifest.json").read_text(encoding="utf-8")
    assert text == json.dumps(manifest, sort_keys=True, indent=2) + "\n"
    assert not [p for p in out.iterdir() if p.name.startswith(".publish-")]


def test_manifest_and_card_name_the_stack_that_built_them(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    built_with = publish_pairs(out)["built_with"]
    assert built_with["python"] == platform.python_version()
    for name in ("torch", "transformers", "trl", "duckdb", "pyarrow", "scienceworld", "textworld-express"):
        assert built_with[name] == version(name), name
    card = (out / "README.md").read_text(encoding="utf-8")
    assert f"transformers `{version('transformers')}`" in card and f"torch `{version('torch')}`" in card

    # An upgrade alone is no new version: the version keeps the stack that made it.
    older = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    older["built_with"]["transformers"] = "5.0.0"
    (out / "manifest.json").write_text(json.dumps(older, sort_keys=True, indent=2) + "\n", encoding="utf-8")
    again = publish_pairs(out)
    assert again["version"] == 1 and again["built_with"]["transformers"] == "5.0.0"


def test_card_front_matter_and_body(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    publish_pairs(out, quarantined=[BAD_RECORD])

    meta = front_matter(out)
    assert meta["configs"] == [
        {
            "config_name": config,
            "data_files": [
                {"split": "train", "path": f"{folder}/train-*"},
                {"split": "validation", "path": f"{folder}/validation-*"},
                {"split": "test", "path": f"{folder}/test-*"},
            ],
        }
        for config, folder in (
            ("default", "data"),
            ("act", "act"),
            ("states", "states"),
            ("preference", "preference"),
        )
    ]
    info = {entry["config_name"]: entry["features"] for entry in meta["dataset_info"]}
    assert [f["name"] for f in info["default"]] == PAIR_SCHEMA.names
    assert [f["name"] for f in info["act"]] == ACT_SCHEMA.names
    assert [f["name"] for f in info["states"]] == STATE_SCHEMA.names
    assert [f["name"] for f in info["preference"]] == ["pair_id", "state_id", "trajectory_id", "task"] + [
        "environment",
        "split",
        "prompt",
        "chosen",
        "rejected",
    ]
    history = next(f for f in info["default"] if f["name"] == "history")
    assert history["list"] == [
        {"name": "observation", "dtype": "string"},
        {"name": "action", "dtype": "string"},
    ]
    assert meta["license"] == "apache-2.0"
    assert meta["task_categories"] == ["text-generation"]
    assert meta["tags"] == ["agents", "act", "critique"]

    text = (out / "README.md").read_text(encoding="utf-8")
    for needle in (
        "title         = {Agentic Critical Training}",
        "eprint        = {2603.08706}",
        "archivePrefix = {arXiv}",
        "Liu et al., 2026",
        'datasets.load_dataset("<path or repo>")',
        "| train | 20 |",
        "| total | 30 |",
        "`SmolLM2-135M-Instruct`",
        "temperature: `1.0`",
        "drop_equal_to_expert: `true`",
        "accepted: `30`",
        "invalid_json: `1`",
        f"fits {HISTORY_CHARS} characters",
        f"agent prompt `{PROMPT_VERSION}` (1024 tokens at most), whose history window is {WINDOW_RULE}.",
        f"Schema version: `{SCHEMA_VERSION}`",
        'load_dataset("<path or repo>", "act")',
    ):
        assert needle in text, needle
    assert str(tmp_path) not in text
    glossary = text.split("## Vocabularies", 1)[1].split("## Citation", 1)[0]
    for meanings in (CONFIGS, SAMPLE_REASONS, QUARANTINE_REASONS, OUTCOME_MEANINGS):
        for name, meaning in meanings.items():
            assert f"| `{name}` | {meaning} |" in glossary, name


def test_every_reason_a_record_or_sample_is_given_is_in_the_vocabulary() -> None:
    """The card documents reasons from `schemas.vocab`; a reason not there is refused where it is made."""
    with pytest.raises(ValueError, match="unknown quarantine reason 'bad_json'"):
        quarantine("f.jsonl", "line 1", "bad_json", "", "{")
    with pytest.raises(ValueError, match="unknown sample reason 'meh'"):
        Verdict("look", "rejected", "meh")


def test_card_shows_a_train_row_with_the_longest_history_as_sample(tmp_path: Path) -> None:
    # t0's last state has the longest history (5 earlier steps) and a long observation.
    t0 = numbered_steps("t0", 6)
    t0 = (*t0[:5], dataclasses.replace(t0[5], observation="x" * 1000))
    t9 = make_trajectory("t9", "test", numbered_steps("t9", 1))
    publish_pairs(tmp_path, [t9, make_trajectory("t0", "train", t0)])

    text = (tmp_path / "README.md").read_text(encoding="utf-8")
    block = text.split("## Sample row", 1)[1].split("```json\n", 1)[1].split("\n```", 1)[0]
    sample = json.loads(block)
    last = datasets.load_dataset(str(tmp_path), split="train")[-1]  # t0's last step: 5 earlier steps
    assert sample["pair_id"] == last["pair_id"] and sample["split"] == "train"
    assert sample["expert_action"] == last["expert_action"] == "t0 act 5"
    assert set(sample) == set(PAIR_SCHEMA.names)
    assert sample["observation"] == "x" * 240 + "… [760 more chars]"
    assert len(last["history"]) == 5 and last["history_omitted"] == 0
    assert sample["history"] == ["… [2 earlier items]", *last["history"][-3:]]


def test_license_defaults_to_other(tmp_path: Path) -> None:
    provenance = {k: v for k, v in PROVENANCE.items() if k != "license"}
    publish_pairs(tmp_path, provenance=provenance)
    assert front_matter(tmp_path)["license"] == "other"


def test_tiny_shards_split_each_split(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    manifest = publish_pairs(out, shard_rows=2)

    counts: dict[tuple[str, str], int] = {}
    for shard in manifest["shards"]:
        key = (shard["path"].split("/")[0], shard["split"])
        counts[key] = counts.get(key, 0) + 1
    assert len(counts) == 12 and all(n > 1 for n in counts.values()), counts  # 4 configs x 3 splits
    for (folder, split), n in counts.items():
        expected = [f"{split}-{i:05d}-of-{n:05d}.parquet" for i in range(n)]
        assert sorted(p.name for p in (out / folder).glob(f"{split}-*")) == expected
    loaded = datasets.load_dataset(str(out))
    assert {s: len(loaded[s]) for s in loaded} == {"train": 20, "validation": 5, "test": 5}
    publish_pairs(tmp_path / "whole")
    whole = datasets.load_dataset(str(tmp_path / "whole"))
    for split in loaded:
        assert loaded[split]["pair_id"] == whole[split]["pair_id"]  # same rows, same order
    for shard in manifest["shards"]:
        assert shard["rows"] <= 2


def test_same_input_gives_identical_bytes(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    publish_pairs(first, shard_rows=3)
    publish_pairs(second, shard_rows=3)
    before = read_all(first)
    assert before == read_all(second)
    publish_pairs(first, shard_rows=3)
    assert read_all(first) == before


def _publish_staged(out: Path, store_path: Path, batches: list[list[str]], reverse: bool) -> dict:
    """Record the TRAJECTORIES in `batches` of names, sample their states in batches of 4 (reversed
    order when asked), then publish: what the store holds, not how it got there, decides the bytes."""
    records = {t.trajectory_id: t for t in trajectories_of(TRAJECTORIES)}
    with Store(store_path) as store:
        for names in batches:
            steps.record(store, Collected.of([records[n] for n in names], []))
        ids = store.trajectory_ids(records)
        states = load_states(store, ids, steps.select(store, ids, None), HISTORY_CHARS)
        states = states[::-1] if reverse else states
        for start in range(0, len(states), 4):
            batch = states[start : start + 4]
            steps.store_batch(store, batch, accepted_samples(batch))
        steps.finish(store)
        return publish(store, out, ids, PROVENANCE, store.counts(ids, ["scienceworld"]), HISTORY_CHARS)


def test_staging_order_and_batches_do_not_change_bytes(tmp_path: Path) -> None:
    names = list(TRAJECTORIES)
    _publish_staged(tmp_path / "a", tmp_path / "a.duckdb", [names], reverse=False)
    _publish_staged(tmp_path / "b", tmp_path / "b.duckdb", [names[4:], names[:1], names[1:4]], reverse=True)
    assert read_all(tmp_path / "a") == read_all(tmp_path / "b")
    publish_pairs(tmp_path / "c")  # the factory's one batch, from yet another store
    assert read_all(tmp_path / "a") == read_all(tmp_path / "c")


def test_smaller_republish_removes_stale_shards(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    publish_pairs(out, shard_rows=2)
    (out / "data" / "notes.txt").write_text("not a shard", encoding="utf-8")
    small = {"t0": ("train", 2), "t3": ("validation", 1), "t4": ("test", 1)}
    manifest = publish_pairs(out, small)

    assert sorted(p.name for p in (out / "data").iterdir()) == [
        "notes.txt",
        "test-00000-of-00001.parquet",
        "train-00000-of-00001.parquet",
        "validation-00000-of-00001.parquet",
    ]
    assert [s["path"] for s in manifest["shards"]] == [
        f"{folder}/{split}-00000-of-00001.parquet"
        for split in ("train", "validation", "test")
        for folder in ("data", "act", "states", "preference")
    ]
    loaded = datasets.load_dataset(str(out))
    assert {s: len(loaded[s]) for s in loaded} == {"train": 2, "validation": 1, "test": 1}


def test_a_trajectory_keeps_its_first_split(tmp_path: Path) -> None:
    """Split is a property of the stored trajectory: a re-collected copy that names another split
    cannot move it, so no trajectory's rows ever appear in two splits."""
    with Store(tmp_path / "s.duckdb") as store:
        steps.record(store, Collected.of(trajectories_of({"t0": ("train", 3)}), []))
        moved = trajectories_of({"t0": ("test", 3), "t4": ("test", 2)})
        ids, run = steps.record(store, Collected.of(moved, []))
        assert run["trajectories_added"] == 1 and ids == ["t0", "t4"]
        states = load_states(store, ids, steps.select(store, ids, None), HISTORY_CHARS)
        steps.store_batch(store, states, accepted_samples(states))
        steps.finish(store)
        stats = store.counts(ids, ["scienceworld"])
        manifest = publish(store, tmp_path / "ds", ids, PROVENANCE, stats, HISTORY_CHARS)
    assert manifest["splits"] == {"train": 3, "test": 2}
    loaded = datasets.load_dataset(str(tmp_path / "ds"))
    assert {r["trajectory_id"] for r in loaded["train"]} == {"t0"}
    assert {r["trajectory_id"] for r in loaded["test"]} == {"t4"}


def test_unknown_split_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown split"):
        publish_pairs(tmp_path / "ds", {"t0": ("dev", 2)})
    assert not (tmp_path / "ds" / "manifest.json").exists()


def test_empty_split_is_omitted(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    manifest = publish_pairs(out, {"t0": ("train", 4), "t4": ("test", 2)})

    assert manifest["splits"] == {"train": 4, "test": 2}
    data_files = front_matter(out)["configs"][0]["data_files"]
    assert [d["split"] for d in data_files] == ["train", "test"]
    assert not list((out / "data").glob("validation-*"))
    loaded = datasets.load_dataset(str(out))
    assert {s: len(loaded[s]) for s in loaded} == {"train": 4, "test": 2}


def test_data_folder_escaping_out_is_refused(tmp_path: Path) -> None:
    out, elsewhere = tmp_path / "ds", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "data").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(ValueError, match="outside"):
        publish_pairs(out)
    assert not list(elsewhere.iterdir())
    assert sorted(p.name for p in out.iterdir()) == ["data"]


def test_act_config_holds_both_orders_and_states_one_row_per_state(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    publish_pairs(out)
    act = datasets.load_dataset(str(out), "act")
    assert {s: len(act[s]) for s in act} == {"train": 40, "validation": 10, "test": 10}
    assert act["train"].features == datasets.Features.from_arrow_schema(ACT_SCHEMA)
    pairs = datasets.load_dataset(str(out))
    for split in act:
        slots = act[split]["expert_slot"]
        assert slots == [1, 2] * len(pairs[split])  # each pair twice, adjacent, exactly balanced
    for index, raw in enumerate(pairs["train"]):
        for row in (act["train"][2 * index], act["train"][2 * index + 1]):
            assert (row["pair_id"], row["state_id"]) == (raw["pair_id"], raw["state_id"])
            assert [m["role"] for m in row["prompt"]] == ["system", "user"]
            user = row["prompt"][1]["content"]
            first, second = (raw["expert_action"], raw["alternative_action"])[
                :: 1 if row["expert_slot"] == 1 else -1
            ]
            assert f"Action 1: {first}\nAction 2: {second}" in user
            assert raw["observation"] in user
    states = datasets.load_dataset(str(out), "states")
    for split in states:
        assert states[split].features == datasets.Features.from_arrow_schema(STATE_SCHEMA)
        ids = states[split]["state_id"]
        assert len(ids) == len(set(ids)) and set(ids) == set(pairs[split]["state_id"])
        by_state = {row["state_id"]: row for row in pairs[split]}
        for row in states[split]:
            assert {k: by_state[row["state_id"]][k] for k in row} == row


def test_read_manifest_missing_names_build(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="actforge build"):
        read_manifest(tmp_path)


def test_versions_only_when_content_changes(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    first = publish_pairs(out)
    assert (first["version"], first["parent_version"]) == (1, None)
    assert first["added"] == {
        "trajectories": 6,
        "states": 30,
        "pairs": {"train": 20, "validation": 5, "test": 5},
    }

    files = sorted(p for p in out.rglob("*") if p.is_file())
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files}
    again = publish_pairs(out)
    assert again == first
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files} == before  # nothing rewritten

    grown = TRAJECTORIES | {"t6": ("validation", 3)}
    second = publish_pairs(out, grown)
    assert (second["stats"]["trajectories"], second["stats"]["states"]) == (7, 33)
    assert (second["version"], second["parent_version"]) == (2, 1)
    assert second["added"] == {
        "trajectories": 1,
        "states": 3,
        "pairs": {"train": 0, "validation": 3, "test": 0},
    }
    assert [h["version"] for h in second["history"]] == [1, 2]
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "| 2 | 1 | 1 | 3 | 3 |" in card

    # Same content with a damaged shard: rewritten, still the same version.
    shard = out / second["shards"][0]["path"]
    shard.write_bytes(b"damaged")
    repaired = publish_pairs(out, grown)
    assert repaired == second
    assert hashlib.sha256(shard.read_bytes()).hexdigest() == second["shards"][0]["sha256"]


def test_a_killed_publishs_folder_is_cleaned_by_the_next(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    publish_pairs(out)
    before = read_all(out)
    leftover = out / ".publish-killed"  # what a publish killed mid-way leaves behind
    (leftover / "data").mkdir(parents=True)
    (leftover / "data" / "train-00000-of-00001.parquet").write_bytes(b"half written")
    publish_pairs(out)
    assert not leftover.exists()
    assert read_all(out) == before  # same content: the same version, byte for byte


def test_critic_history_budget_cuts_the_act_prompts_only(tmp_path: Path) -> None:
    wide, narrow = tmp_path / "wide", tmp_path / "narrow"
    publish_pairs(wide)
    publish_pairs(narrow, critic_history_chars=0)

    def user_prompts(out: Path) -> list[str]:
        act = datasets.load_dataset(str(out), "act", split="train")
        return [row["prompt"][1]["content"] for row in act]

    assert any("Observation: t0 obs 0" in text for text in user_prompts(wide))
    assert not any("Observation: t0 obs" in text for text in user_prompts(narrow))
    default = datasets.load_dataset(str(narrow), split="train")
    assert any(row["history"] for row in default)  # the published history is a separate budget
