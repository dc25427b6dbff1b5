"""Publish critique pairs as a Hugging Face dataset folder: Parquet shards, dataset card, manifest.

Outputs are a pure function of the inputs (no timestamps, deterministic row order and shard
numbering), so republishing the same pairs gives byte-identical files and a clean diff on the Hub.
Files are written into a temporary folder inside OUT first and moved into place one by one;
`manifest.json` goes last and is removed first, so it marks a finished publish.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from pipelines.critic import DEFAULT_HISTORY_CHARS, act_table
from schemas import ACT_SCHEMA, PAIR_SCHEMA, PUBLISHED_STATE_SCHEMA, SCHEMA_VERSION, SPLITS

MANIFEST = "manifest.json"
CARD = "README.md"
DEFAULT, ACT, STATES = "default", "act", "states"
# Config -> folder: raw pairs under data/ (the Hub's default), TRL-ready critic examples under act/,
# one row per expert state (what agent training and next-action evaluation need) under states/.
FOLDERS = {DEFAULT: "data", ACT: "act", STATES: "states"}
SCHEMAS = {DEFAULT: PAIR_SCHEMA, ACT: ACT_SCHEMA, STATES: PUBLISHED_STATE_SCHEMA}
SAMPLE_CHARS, SAMPLE_ITEMS = 240, 3  # longest text and list shown in the card's sample row
SORT_KEYS = [("trajectory_id", "ascending"), ("step_index", "ascending"), ("pair_id", "ascending")]
SHARD_NAME = re.compile(rf"^(?:{'|'.join(map(re.escape, SPLITS))})-\d{{5}}-of-\d{{5}}\.parquet$")

CITATION = """@misc{liu2026act,
  title         = {Agentic Critical Training},
  author        = {Liu and others},
  year          = {2026},
  eprint        = {2603.08706},
  archivePrefix = {arXiv},
}"""

COLUMN_DOCS = {
    "pair_id": "content hash of (state, expert action, normalised alternative)",
    "state_id": "content hash of (trajectory, step index)",
    "sample_id": "content hash of the policy sample the alternative came from",
    "trajectory_id": "content hash of the expert trajectory",
    "source": "where the expert trajectory came from",
    "task": "task name within the environment",
    "environment": "environment name (e.g. scienceworld, alfworld)",
    "split": "train, validation or test (by trajectory)",
    "step_index": "index of this decision in the expert trajectory",
    "instruction": "the task instruction given to the agent",
    "history": "earlier steps: list of {observation, action}",
    "observation": "what the agent sees now",
    "expert_action": "the action the expert took here",
    "alternative_action": "an action sampled from the base policy, different from the expert's",
    "policy": "the base policy that produced the alternative",
}


def publish(
    pairs: pa.Table,
    out: Path,
    provenance: dict[str, Any],
    stats: dict[str, Any],
    max_shard_bytes: int = 64 * 2**20,
    critic_history_chars: int = DEFAULT_HISTORY_CHARS,
) -> dict[str, Any]:
    """Write `pairs` (config `default`) and their critic examples (config `act`) to OUT.

    A publish whose content equals the current version writes nothing (every file stays byte for
    byte); otherwise it becomes the next version, recording its parent and what it added.
    """
    _validate(pairs)
    if max_shard_bytes < 1:
        raise ValueError(f"max_shard_bytes must be positive, got {max_shard_bytes}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    root = out.resolve()
    ordered = pairs.sort_by(SORT_KEYS).combine_chunks()
    tables = {DEFAULT: ordered, ACT: act_table(ordered, critic_history_chars), STATES: _states(ordered)}
    staging = Path(tempfile.mkdtemp(prefix=".publish-", dir=root))
    try:
        shards = []
        for config, table in tables.items():
            (staging / FOLDERS[config]).mkdir()
            shards += _write_shards(config, table, staging, max_shard_bytes)
        content = _manifest(shards, provenance, stats)
        previous = _current(root)
        if _same_version(previous, content) and _intact(root, previous):
            return previous
        manifest = content | _version(previous, content)
        (staging / CARD).write_text(render_card(manifest, _sample_row(ordered)), encoding="utf-8")
        (staging / MANIFEST).write_text(json.dumps(manifest, sort_keys=True, indent=2) + "\n", "utf-8")
        _commit(staging, root, [s["path"] for s in shards])
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def read_manifest(out: Path) -> dict[str, Any]:
    """The manifest of a published dataset folder."""
    path = Path(out) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `actforge build` to publish a dataset there first")
    return json.loads(path.read_text(encoding="utf-8"))


def card_summary(out: Path) -> str:
    """The card's body up to its reference sections: what a run summary should show."""
    text = (Path(out) / CARD).read_text(encoding="utf-8")
    body = text.split("---\n", 2)[2] if text.startswith("---\n") else text
    return body.split("\n## Critic prompts", 1)[0].strip() + "\n"


def _validate(pairs: pa.Table) -> None:
    """Refuse tables that would publish a broken contract or leak a trajectory across splits."""
    if not pairs.schema.equals(PAIR_SCHEMA, check_metadata=False):
        raise ValueError(f"pairs schema differs from PAIR_SCHEMA:\n{pairs.schema}\nexpected:\n{PAIR_SCHEMA}")
    if pairs.num_rows == 0:
        raise ValueError("no pairs to publish")
    unknown = set(pc.unique(pairs["split"]).to_pylist()) - set(SPLITS)
    if unknown:
        raise ValueError(f"unknown split values {sorted(map(str, unknown))}; expected {list(SPLITS)}")
    per_trajectory = pairs.group_by("trajectory_id").aggregate([("split", "count_distinct")])
    leaked = per_trajectory.filter(pc.greater(per_trajectory["split_count_distinct"], 1))
    if leaked.num_rows:
        ids = sorted(leaked["trajectory_id"].to_pylist())
        raise ValueError(f"{len(ids)} trajectories appear in more than one split, e.g. {ids[:3]}")


def _states(ordered: pa.Table) -> pa.Table:
    """One row per expert state: the first of its pair rows in published order."""
    indexed = ordered.append_column("_row", pa.array(range(ordered.num_rows), pa.int64()))
    first = indexed.group_by("state_id").aggregate([("_row", "min")])["_row_min"]
    return ordered.take(pc.take(first, pc.sort_indices(first))).select(PUBLISHED_STATE_SCHEMA.names)


def _shard_count(table: pa.Table, max_shard_bytes: int) -> int:
    """Shards needed to keep each under `max_shard_bytes` of Arrow data (Parquet is smaller)."""
    return max(1, min(table.num_rows, math.ceil(table.nbytes / max_shard_bytes)))


def _write_shards(
    config: str, ordered: pa.Table, staging: Path, max_shard_bytes: int
) -> list[dict[str, Any]]:
    """Write each present split as evenly sized zstd shards; return their manifest entries."""
    shards = []
    for split in SPLITS:
        part = ordered.filter(pc.equal(ordered["split"], split))
        if part.num_rows == 0:
            continue
        n = _shard_count(part, max_shard_bytes)
        bounds = [part.num_rows * i // n for i in range(n + 1)]
        for i in range(n):
            rel = f"{FOLDERS[config]}/{split}-{i:05d}-of-{n:05d}.parquet"
            path = _inside(staging, staging / rel)
            pq.write_table(part.slice(bounds[i], bounds[i + 1] - bounds[i]), path, compression="zstd")
            data = path.read_bytes()
            shards.append(
                {
                    "config": config,
                    "path": rel,
                    "split": split,
                    "rows": bounds[i + 1] - bounds[i],
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "bytes": len(data),
                }
            )
    return shards


def _manifest(shards: list[dict[str, Any]], provenance: dict[str, Any], stats: dict[str, Any]) -> dict:
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
    }


VERSION_KEYS = ("version", "parent_version", "added", "history")


def _current(root: Path) -> dict[str, Any] | None:
    """The manifest of the version already in OUT, if any."""
    path = root / MANIFEST
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _same_version(previous: dict[str, Any] | None, content: dict[str, Any]) -> bool:
    """The current version holds exactly this content (a manifest without versions never does)."""
    return previous is not None and "version" in previous and _content(previous) == content


def _content(manifest: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in manifest.items() if k not in VERSION_KEYS}


def _intact(root: Path, manifest: dict[str, Any]) -> bool:
    """Every shard of the manifest is on disk with its recorded hash."""
    for shard in manifest["shards"]:
        path = root / shard["path"]
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != shard["sha256"]:
            return False
    return (root / CARD).is_file()


def _version(previous: dict[str, Any] | None, content: dict[str, Any]) -> dict[str, Any]:
    """Version fields of a new manifest: number, parent, what it added, and the history so far."""
    if _same_version(previous, content):
        # Same content whose files were damaged or removed: rewrite them as the same version.
        return {k: previous[k] for k in VERSION_KEYS if k in previous}
    old = previous or {"stats": {}, "splits": {}}
    new_stats, old_stats = content["stats"], old["stats"]
    added = {
        "trajectories": new_stats.get("trajectories", 0) - old_stats.get("trajectories", 0),
        "states": new_stats.get("states", 0) - old_stats.get("states", 0),
        "pairs": {s: content["splits"].get(s, 0) - old["splits"].get(s, 0) for s in SPLITS},
    }
    version = (previous or {}).get("version", 0) + 1
    parent = previous.get("version") if previous else None
    entry = {"version": version, "parent_version": parent, "added": added}
    return entry | {"history": [*(previous or {}).get("history", []), entry]}


def _commit(staging: Path, root: Path, shard_paths: list[str]) -> None:
    """Move staged files into OUT: manifest removed first and written last, stale shards removed."""
    _inside(root, root / MANIFEST).unlink(missing_ok=True)
    for folder in FOLDERS.values():
        _inside(root, root / folder).mkdir(exist_ok=True)
    for rel in shard_paths:
        (staging / rel).replace(_inside(root, root / rel))
    keep = set(shard_paths)
    for folder in FOLDERS.values():
        for old in sorted(_inside(root, root / folder).iterdir()):
            if SHARD_NAME.match(old.name) and f"{folder}/{old.name}" not in keep:
                _inside(root, old).unlink()
    (staging / CARD).replace(_inside(root, root / CARD))
    (staging / MANIFEST).replace(_inside(root, root / MANIFEST))


def _inside(root: Path, path: Path) -> Path:
    """`path` resolved, refusing anything that escapes `root` (e.g. through a symlink)."""
    resolved = path.resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise ValueError(f"refusing to write {resolved}: outside {root}")
    return resolved


def _feature(field: pa.Field) -> dict[str, Any]:
    """One column in the card's `dataset_info.features` YAML, as `datasets` spells it."""
    name, dtype = field.name, field.type
    if pa.types.is_list(dtype) and pa.types.is_struct(dtype.value_type):
        return {"name": name, "list": [_feature(f) for f in dtype.value_type]}
    if pa.types.is_list(dtype):
        return {"name": name, "list": str(dtype.value_type)}
    if pa.types.is_struct(dtype):
        return {"name": name, "struct": [_feature(f) for f in dtype]}
    return {"name": name, "dtype": str(dtype)}


def _front_matter(manifest: dict[str, Any]) -> str:
    provenance = manifest["provenance"]
    sources = provenance.get("sources") or []
    meta = {
        "pretty_name": "ACT critique pairs" + (f" ({', '.join(sources)})" if sources else ""),
        "license": provenance.get("license", "other"),
        "task_categories": ["text-generation"],
        "tags": ["agents", "act", "critique"],
        "configs": [
            {
                "config_name": config,
                "data_files": [{"split": s, "path": f"{folder}/{s}-*"} for s in manifest["splits"]],
            }
            for config, folder in FOLDERS.items()
        ],
        "dataset_info": [
            {"config_name": config, "features": [_feature(f) for f in SCHEMAS[config]]} for config in FOLDERS
        ],
    }
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n"


def _bullets(mapping: dict[str, Any], indent: str = "") -> list[str]:
    """Markdown bullets of a (nested) dict, keys sorted so the card is deterministic."""
    lines = []
    for key in sorted(mapping, key=str):
        value = mapping[key]
        if isinstance(value, dict):
            lines.append(f"{indent}- {key}:" + ("" if value else " none"))
            lines.extend(_bullets(value, indent + "  "))
        else:
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            lines.append(f"{indent}- {key}: `{text}`")
    return lines


def _sample_section(sample: dict[str, Any] | None) -> list[str]:
    if sample is None:
        return []
    text = json.dumps(sample, ensure_ascii=False, indent=2)
    return [
        "## Sample row",
        "",
        "One row of the default config (long texts shortened here):",
        "",
        "```json",
        text,
        "```",
        "",
    ]


PROMPT_NOTE = """Each row of the default config is self-contained: one row is enough to render a
critic prompt. The `act` config holds that prompt ready for TRL, every pair twice (expert in slot 1,
then in slot 2, on adjacent rows): a conversational `prompt` (system and user messages showing the
state, then "Action 1" and "Action 2") and `expert_slot`, the slot of the expert's action. A critic
that always names one slot is right on exactly half of the rows and on both orders of no pair. The
answer is `<answer>1</answer>` or `<answer>2</answer>`; `actforge train act` opens the `<answer>` tag
itself (or appends it after a bounded reasoning budget) so even a small model answers. The `states`
config has one row per expert state for agent training (SFT, action GRPO) and evaluation.

```python
import datasets
act = datasets.load_dataset("<path or repo>", "act")   # feeds trl.GRPOTrainer directly
# reward: 1.0 when the completion's single <answer> names row["expert_slot"], else 0.0
states = datasets.load_dataset("<path or repo>", "states")
```"""


def _sample_row(pairs: pa.Table) -> dict[str, Any] | None:
    """The card's example: the train row (else any) with the longest history, shortened for reading.

    The longest history shows what a full state looks like; ties go to the first row in sort order.
    """
    if pairs.num_rows == 0:
        return None
    train = pc.equal(pairs["split"], "train")
    candidates = pairs.filter(train) if pc.any(train).as_py() else pairs
    lengths = pc.list_value_length(candidates["history"])
    index = pc.index(lengths, pc.max(lengths)).as_py()
    return _abbreviate(candidates.slice(index, 1).to_pylist()[0])


def _abbreviate(value: Any) -> Any:
    """Texts cut to SAMPLE_CHARS, lists to their last SAMPLE_ITEMS items."""
    if isinstance(value, str):
        cut = len(value) - SAMPLE_CHARS
        return value if cut <= 0 else value[:SAMPLE_CHARS] + f"… [{cut} more chars]"
    if isinstance(value, list):  # the last items: in a history, the steps nearest the state
        earlier = [f"… [{len(value) - SAMPLE_ITEMS} earlier items]"] if len(value) > SAMPLE_ITEMS else []
        return earlier + [_abbreviate(v) for v in value[-SAMPLE_ITEMS:]]
    if isinstance(value, dict):
        return {k: _abbreviate(v) for k, v in value.items()}
    return value


def render_card(manifest: dict[str, Any], sample: dict[str, Any] | None = None) -> str:
    """The dataset card (README.md) for a manifest: front matter for the Hub, then prose."""
    provenance = manifest["provenance"]
    body = [
        "# ACT critique pairs",
        "",
        "Critique pairs for Agentic Critical Training (ACT; Liu et al., 2026, arXiv:2603.08706). Each row",
        "is one decision point of an expert agent trajectory (instruction, earlier steps, current",
        "observation) with the expert's action and an alternative action sampled from a base policy.",
        "A critic learns to tell which of the two actions is better.",
        "",
        "## Load",
        "",
        "```python",
        "import datasets",
        "",
        'pairs = datasets.load_dataset("<path or repo>")  # a local folder or a Hub repo id',
        "```",
        "",
        "## Columns",
        "",
        *[f"- `{f.name}` ({f.type}): {COLUMN_DOCS.get(f.name, '')}" for f in PAIR_SCHEMA],
        "",
        *_sample_section(sample),
        "## Splits",
        "",
        "| split | rows |",
        "| --- | ---: |",
        *[f"| {split} | {rows} |" for split, rows in manifest["splits"].items()],
        f"| total | {manifest['pairs']} |",
        "",
        "Splits are by trajectory: no trajectory appears in two splits.",
        "",
        "## Provenance",
        "",
        "- sources: " + (", ".join(f"`{s}`" for s in provenance.get("sources") or []) or "none"),
        *_bullets({k: v for k, v in provenance.items() if k != "sources"}),
        "",
        "## Run statistics",
        "",
        *(_bullets(manifest["stats"]) or ["- none recorded"]),
        "",
        f"Schema version: `{manifest['schema_version']}`.",
        "",
        "## Versions",
        "",
        "| version | parent | trajectories added | states added | pairs added |",
        "| ---: | ---: | ---: | ---: | ---: |",
        *[
            f"| {h['version']} | {h['parent_version'] or '-'} | {h['added']['trajectories']} | "
            f"{h['added']['states']} | {sum(h['added']['pairs'].values())} |"
            for h in manifest.get("history", [])
        ],
        "",
        "## Critic prompts: the `act` config",
        "",
        PROMPT_NOTE,
        "",
        "## Citation",
        "",
        "```bibtex",
        CITATION,
        "```",
    ]
    return _front_matter(manifest) + "\n" + "\n".join(body) + "\n"
