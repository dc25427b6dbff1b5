"""The dataset card (README.md): the template `card.md` (Hub front matter, then prose) filled in
with columns, counts, versions and vocabularies.

Everything in it comes from the manifest (data), the schemas' column docs and `schemas.vocab`;
nothing is parsed back out of rendered markdown.
"""

from __future__ import annotations

import json
from pathlib import Path
from string import Template
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import yaml

from actforge.pipelines.publish.layout import FOLDERS
from actforge.pipelines.text.prompts import WINDOW_RULES
from actforge.schemas import ACT_SCHEMA, PAIR_SCHEMA, PREFERENCE_SCHEMA, STATE_SCHEMA, WORLD_MODEL_SCHEMA, doc
from actforge.schemas.vocab import (
    ACT,
    ALTERNATIVE,
    CONFIGS,
    DEFAULT,
    EXPERT,
    OUTCOME_MEANINGS,
    OUTCOMES,
    PREFERENCE,
    QUARANTINE_REASONS,
    SAMPLE_REASONS,
    STATES,
    WORLD_MODEL,
)

SCHEMAS = {
    DEFAULT: PAIR_SCHEMA,
    ACT: ACT_SCHEMA,
    STATES: STATE_SCHEMA,
    PREFERENCE: PREFERENCE_SCHEMA,
    WORLD_MODEL: WORLD_MODEL_SCHEMA,
}
SAMPLE_CHARS, SAMPLE_ITEMS = 240, 3  # longest text and list shown in the card's sample row
TEMPLATE = Template((Path(__file__).parent / "card.md").read_text(encoding="utf-8"))


def summary(manifest: dict[str, Any]) -> dict[str, Any]:
    """What a run summary shows of a published version: its number, rows per split, counts."""
    return {
        "version": manifest.get("version"),
        "pairs": manifest["pairs"],
        "splits": manifest["splits"],
        "stats": manifest["stats"],
    }


def summary_markdown(data: dict[str, Any]) -> str:
    """`summary` as markdown: the card's opening tables, and the build's Prefect artifact."""
    lines = [
        f"Version {data['version']}: {data['pairs']} pairs.",
        "",
        "| split | rows |",
        "| --- | ---: |",
        *[f"| {split} | {rows} |" for split, rows in data["splits"].items()],
        f"| total | {data['pairs']} |",
        "",
        "## Run statistics",
        "",
        *(_bullets({k: v for k, v in data["stats"].items() if k != "outcomes"}) or ["- none recorded"]),
        *_outcome_table(data["stats"].get("outcomes") or {}),
    ]
    return "\n".join(lines) + "\n"


def _outcome_table(outcomes: dict[str, dict[str, dict[str, int]]]) -> list[str]:
    """What verified actions did in the live engine, per environment: alternatives beside the
    expert's own actions (the reference)."""
    if not outcomes:
        return []
    lines = [
        "",
        "## Verified outcomes (`--verify`)",
        "",
        "| environment | outcome | alternatives | expert actions |",
        "| --- | --- | ---: | ---: |",
    ]
    for environment, sides in sorted(outcomes.items()):
        for outcome in OUTCOMES:
            alternative = sides.get(ALTERNATIVE, {}).get(outcome, 0)
            expert = sides.get(EXPERT, {}).get(outcome, 0)
            if alternative or expert:
                lines.append(f"| {environment} | {outcome} | {alternative} | {expert} |")
    return lines


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
    """The Hub's YAML: each config that has rows (`world_model` only after `--verify`), its splits."""
    provenance = manifest["provenance"]
    sources = provenance.get("sources") or []
    written = {(shard["config"], shard["split"]) for shard in manifest["shards"]}
    splits = {config: [s for s in manifest["splits"] if (config, s) in written] for config in FOLDERS}
    present = [config for config in FOLDERS if splits[config]]
    meta = {
        "pretty_name": "ACT critique pairs" + (f" ({', '.join(sources)})" if sources else ""),
        "license": provenance.get("license", "other"),
        "task_categories": ["text-generation"],
        "tags": ["agents", "act", "critique"],
        "configs": [
            {
                "config_name": config,
                "data_files": [{"split": s, "path": f"{FOLDERS[config]}/{s}-*"} for s in splits[config]],
            }
            for config in present
        ],
        "dataset_info": [
            {"config_name": config, "features": [_feature(f) for f in SCHEMAS[config]]} for config in present
        ],
    }
    return yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)


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


def _report_section(report: list[dict[str, str]]) -> list[str]:
    """The plots `--with-report` added to the folder, shown in the card (the Hub renders them)."""
    if not report:
        return []
    lines = ["## Report", "", "Drawn by `actforge report` from this version's pairs.", ""]
    for plot in report:
        lines += [f"![{plot['title']}]({plot['path']})", ""]
    return lines


def longest_history(batch: pa.RecordBatch) -> tuple[int, dict[str, Any]] | None:
    """The batch's row with the longest history (first on ties) and that length: the card's
    example shows what a full state looks like, shortened for reading."""
    if batch.num_rows == 0:
        return None
    lengths = pc.list_value_length(batch["history"])
    index = pc.index(lengths, pc.max(lengths)).as_py()
    return lengths[index].as_py(), _abbreviate(batch.slice(index, 1).to_pylist()[0])


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


def _built_with_section(versions: dict[str, str] | None) -> list[str]:
    """The versions of Python and of the libraries and engines this version was built with."""
    if not versions:
        return []
    return [
        "Built with " + ", ".join(f"{name} `{v}`" for name, v in versions.items()) + ".",
        "",
    ]


def _versions_rows(history: list[dict[str, Any]]) -> list[str]:
    return [
        f"| {h['version']} | {h['parent_version'] or '-'} | {h['added']['trajectories']} | "
        f"{h['added']['states']} | {sum(h['added']['pairs'].values())} |"
        for h in history
    ]


def _vocabularies() -> list[str]:
    """The card's glossary, from `schemas.vocab`: configs, verdict and quarantine reasons, outcomes."""
    tables = (
        ("Configs", "config", CONFIGS),
        ("Sample reasons (`samples_by_reason`)", "reason", SAMPLE_REASONS),
        ("Quarantine reasons (`quarantined_by_reason`)", "reason", QUARANTINE_REASONS),
        ("Verified outcomes (`--verify`, `--drop-outcome`)", "outcome", OUTCOME_MEANINGS),
    )
    lines: list[str] = []
    for title, key, meanings in tables:
        lines += ["", f"### {title}", "", f"| {key} | meaning |", "| --- | --- |"]
        lines += [f"| `{name}` | {meaning} |" for name, meaning in meanings.items()]
    return lines[1:]


def _block(lines: list[str]) -> str:
    """Optional sections: their lines and a blank line after them, or nothing."""
    return "\n".join(lines) + "\n" if lines else ""


def _prompt_rule(sampling: dict[str, Any]) -> str:
    """The agent prompt the alternatives were sampled from, and its history window's rule."""
    version = sampling.get("prompt")
    if version not in WINDOW_RULES:
        return ""
    return (
        f"The alternatives were sampled from the agent prompt `{version}` ({sampling['max_prompt_tokens']} "
        f"tokens at most), whose history window is {WINDOW_RULES[version]}.\n"
    )


def render_card(manifest: dict[str, Any], sample: dict[str, Any] | None = None) -> str:
    """The dataset card (README.md) for a manifest: `card.md` filled in from the manifest."""
    provenance = manifest["provenance"]
    sources = ", ".join(f"`{s}`" for s in provenance.get("sources") or []) or "none"
    return TEMPLATE.substitute(
        front_matter=_front_matter(manifest),
        columns="\n".join(f"- `{f.name}` ({f.type}): {doc(f)}" for f in PAIR_SCHEMA),
        history_chars=manifest["history_chars"],
        prompt_rule=_prompt_rule(provenance.get("sampling") or {}),
        sample=_block(_sample_section(sample)),
        report=_block(_report_section(manifest.get("report", []))),
        splits=summary_markdown(summary(manifest)),
        provenance="\n".join(
            [f"- sources: {sources}", *_bullets({k: v for k, v in provenance.items() if k != "sources"})]
        ),
        schema_version=manifest["schema_version"],
        built_with=_block(_built_with_section(manifest.get("built_with"))),
        versions=_block(_versions_rows(manifest.get("history", []))),
        vocabularies="\n".join(_vocabularies()),
    )
