"""publish(): real Parquet shards in tmp_path, read back with the real `datasets.load_dataset`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import yaml

from pipelines.publish import publish, read_manifest
from schemas import ACT_SCHEMA, PAIR_SCHEMA, PUBLISHED_STATE_SCHEMA, SCHEMA_VERSION, Step, to_arrow
from tests.factories import make_pair

PROVENANCE = {
    "sources": ["scienceworld"],
    "policy": "SmolLM2-135M-Instruct",
    "k": 4,
    "seed": 7,
    "sampling": {"temperature": 1.0, "top_p": 0.95, "max_new_tokens": 16},
    "filters": {"drop_equal_to_expert": True, "min_length": 2},
    "license": "apache-2.0",
}
STATS = {
    "trajectories": 6,
    "states": 30,
    "samples": {"kept": 30, "equal_to_expert": 4, "unparsable": 2},
    "pairs": {"train": 20, "validation": 5, "test": 5},
    "quarantined": {"bad_json": 1},
}
# trajectory -> (split, number of steps): 20 train, 5 validation, 5 test rows.
TRAJECTORIES = {"t0": ("train", 6), "t1": ("train", 7), "t2": ("train", 7), "t3": ("validation", 5)}
TRAJECTORIES |= {"t4": ("test", 3), "t5": ("test", 2)}


pytestmark = pytest.mark.usefixtures("hf_offline")


def make_pairs(trajectories: dict[str, tuple[str, int]] = TRAJECTORIES) -> pa.Table:
    """Pairs over several trajectories; each row's history is the steps before it."""
    records = []
    for name, (split, length) in trajectories.items():
        steps = tuple(Step(f"{name} obs {i}", f"{name} act {i}", ("x",)) for i in range(length))
        for i in range(length):
            records.append(make_pair(name, split, steps, i, f"{name} other {i}", 0, f"do the {name} task"))
    # Shuffled input order: publish must sort it.
    return to_arrow(records[::-1], PAIR_SCHEMA)


def read_all(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def front_matter(out: Path) -> dict:
    text = (out / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_publish_writes_loadable_dataset(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    manifest = publish(make_pairs(), out, PROVENANCE, STATS)

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
    assert manifest["provenance"] == PROVENANCE and manifest["stats"] == STATS
    for shard in manifest["shards"]:
        data = (out / shard["path"]).read_bytes()
        assert shard["sha256"] == hashlib.sha256(data).hexdigest()
        assert shard["bytes"] == len(data)
    text = (out / "manifest.json").read_text(encoding="utf-8")
    assert text == json.dumps(manifest, sort_keys=True, indent=2) + "\n"
    assert not [p for p in out.iterdir() if p.name.startswith(".publish-")]


def test_card_front_matter_and_body(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    publish(make_pairs(), out, PROVENANCE, STATS)

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
        for config, folder in (("default", "data"), ("act", "act"), ("states", "states"))
    ]
    info = {entry["config_name"]: entry["features"] for entry in meta["dataset_info"]}
    assert [f["name"] for f in info["default"]] == PAIR_SCHEMA.names
    assert [f["name"] for f in info["act"]] == ACT_SCHEMA.names
    assert [f["name"] for f in info["states"]] == PUBLISHED_STATE_SCHEMA.names
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
        "equal_to_expert: `4`",
        "bad_json: `1`",
        f"Schema version: `{SCHEMA_VERSION}`",
        'load_dataset("<path or repo>", "act")',
    ):
        assert needle in text, needle
    assert str(tmp_path) not in text


def test_card_shows_a_train_row_with_the_longest_history_as_sample(tmp_path: Path) -> None:
    long = {"t9": ("test", 1), "t0": ("train", 6)}
    pairs = make_pairs(long)
    observation = "x" * 1000
    pairs = pairs.set_column(
        pairs.schema.get_field_index("observation"), "observation", pa.array([observation] * pairs.num_rows)
    )
    publish(pairs, tmp_path, PROVENANCE, STATS)

    text = (tmp_path / "README.md").read_text(encoding="utf-8")
    block = text.split("## Sample row", 1)[1].split("```json\n", 1)[1].split("\n```", 1)[0]
    sample = json.loads(block)
    last = datasets.load_dataset(str(tmp_path), split="train")[-1]  # t0's last step: 5 earlier steps
    assert sample["pair_id"] == last["pair_id"] and sample["split"] == "train"
    assert sample["expert_action"] == last["expert_action"] == "t0 act 5"
    assert set(sample) == set(PAIR_SCHEMA.names)
    assert sample["observation"] == "x" * 240 + "… [760 more chars]"
    assert sample["history"] == ["… [2 earlier items]", *last["history"][-3:]]


def test_license_defaults_to_other(tmp_path: Path) -> None:
    provenance = {k: v for k, v in PROVENANCE.items() if k != "license"}
    publish(make_pairs(), tmp_path, provenance, STATS)
    assert front_matter(tmp_path)["license"] == "other"


def test_tiny_shards_split_each_split(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    manifest = publish(make_pairs(), out, PROVENANCE, STATS, max_shard_bytes=1_000)

    counts: dict[tuple[str, str], int] = {}
    for shard in manifest["shards"]:
        key = (shard["path"].split("/")[0], shard["split"])
        counts[key] = counts.get(key, 0) + 1
    assert len(counts) == 9 and all(n > 1 for n in counts.values()), counts
    for (folder, split), n in counts.items():
        expected = [f"{split}-{i:05d}-of-{n:05d}.parquet" for i in range(n)]
        assert sorted(p.name for p in (out / folder).glob(f"{split}-*")) == expected
    loaded = datasets.load_dataset(str(out))
    assert {s: len(loaded[s]) for s in loaded} == {"train": 20, "validation": 5, "test": 5}
    table = make_pairs()
    for split in loaded:
        expected = table.filter(pc.equal(table["split"], split))["pair_id"].to_pylist()
        assert sorted(loaded[split]["pair_id"]) == sorted(expected)


def test_same_input_gives_identical_bytes(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    publish(make_pairs(), first, PROVENANCE, STATS, max_shard_bytes=3_000)
    publish(make_pairs(), second, PROVENANCE, STATS, max_shard_bytes=3_000)
    before = read_all(first)
    assert before == read_all(second)
    publish(make_pairs(), first, PROVENANCE, STATS, max_shard_bytes=3_000)
    assert read_all(first) == before


def test_row_order_and_chunking_do_not_change_bytes(tmp_path: Path) -> None:
    table = make_pairs()
    rechunked = pa.concat_tables([table.slice(17), table.slice(0, 9), table.slice(9, 8)])
    publish(table, tmp_path / "a", PROVENANCE, STATS)
    publish(rechunked, tmp_path / "b", PROVENANCE, STATS)
    assert read_all(tmp_path / "a") == read_all(tmp_path / "b")


def test_smaller_republish_removes_stale_shards(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    publish(make_pairs(), out, PROVENANCE, STATS, max_shard_bytes=2_000)
    (out / "data" / "notes.txt").write_text("not a shard", encoding="utf-8")
    small = {"t0": ("train", 2), "t3": ("validation", 1), "t4": ("test", 1)}
    manifest = publish(make_pairs(small), out, PROVENANCE, STATS)

    assert sorted(p.name for p in (out / "data").iterdir()) == [
        "notes.txt",
        "test-00000-of-00001.parquet",
        "train-00000-of-00001.parquet",
        "validation-00000-of-00001.parquet",
    ]
    assert [s["path"] for s in manifest["shards"]] == [
        f"{folder}/{split}-00000-of-00001.parquet"
        for folder in ("data", "act", "states")
        for split in ("train", "validation", "test")
    ]
    loaded = datasets.load_dataset(str(out))
    assert {s: len(loaded[s]) for s in loaded} == {"train": 2, "validation": 1, "test": 1}


def test_trajectory_in_two_splits_is_refused(tmp_path: Path) -> None:
    table = make_pairs()
    splits = table["split"].to_pylist()
    first_t0 = table["trajectory_id"].to_pylist().index("t0")
    splits[first_t0] = "test"
    leaked = table.set_column(table.schema.get_field_index("split"), "split", pa.array(splits))
    with pytest.raises(ValueError, match="more than one split"):
        publish(leaked, tmp_path / "ds", PROVENANCE, STATS)
    assert not (tmp_path / "ds" / "manifest.json").exists()


def test_wrong_schema_is_refused(tmp_path: Path) -> None:
    table = make_pairs()
    with pytest.raises(ValueError, match="schema"):
        publish(table.drop_columns(["policy"]), tmp_path / "a", PROVENANCE, STATS)
    as_int32 = table.set_column(
        table.schema.get_field_index("step_index"), "step_index", table["step_index"].cast(pa.int32())
    )
    with pytest.raises(ValueError, match="schema"):
        publish(as_int32, tmp_path / "b", PROVENANCE, STATS)


def test_unknown_split_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown split"):
        publish(make_pairs({"t0": ("dev", 2)}), tmp_path, PROVENANCE, STATS)


def test_empty_split_is_omitted(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    manifest = publish(make_pairs({"t0": ("train", 4), "t4": ("test", 2)}), out, PROVENANCE, STATS)

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
        publish(make_pairs(), out, PROVENANCE, STATS)
    assert not list(elsewhere.iterdir())
    assert sorted(p.name for p in out.iterdir()) == ["data"]


def test_act_config_holds_both_orders_and_states_one_row_per_state(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    publish(make_pairs(), out, PROVENANCE, STATS)
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
        assert states[split].features == datasets.Features.from_arrow_schema(PUBLISHED_STATE_SCHEMA)
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
    first = publish(make_pairs(), out, PROVENANCE, STATS)
    assert (first["version"], first["parent_version"]) == (1, None)
    assert first["added"] == {
        "trajectories": 6,
        "states": 30,
        "pairs": {"train": 20, "validation": 5, "test": 5},
    }

    files = sorted(p for p in out.rglob("*") if p.is_file())
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files}
    again = publish(make_pairs(), out, PROVENANCE, STATS)
    assert again == first
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files} == before  # nothing rewritten

    grown = TRAJECTORIES | {"t6": ("validation", 3)}
    stats = STATS | {"trajectories": 7, "states": 33}
    second = publish(make_pairs(grown), out, PROVENANCE, stats)
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
    repaired = publish(make_pairs(grown), out, PROVENANCE, stats)
    assert repaired == second
    assert hashlib.sha256(shard.read_bytes()).hexdigest() == second["shards"][0]["sha256"]
