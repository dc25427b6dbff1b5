"""The dataset card (README.md): Hub front matter, then prose, columns, counts and versions.

Everything in it comes from the manifest (data) and the schemas' column docs; nothing is parsed
back out of rendered markdown.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import yaml

from actforge.pipelines.publish.layout import ACT, DEFAULT, FOLDERS, STATES
from actforge.schemas import ACT_SCHEMA, PAIR_SCHEMA, STATE_SCHEMA, doc
from actforge.schemas.vocab import OUTCOMES

SCHEMAS = {DEFAULT: PAIR_SCHEMA, ACT: ACT_SCHEMA, STATES: STATE_SCHEMA}
SAMPLE_CHARS, SAMPLE_ITEMS = 240, 3  # longest text and list shown in the card's sample row

CITATION = """@misc{liu2026act,
  title         = {Agentic Critical Training},
  author        = {Liu and others},
  year          = {2026},
  eprint        = {2603.08706},
  archivePrefix = {arXiv},
}"""


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
            alternative = sides.get("alternative", {}).get(outcome, 0)
            expert = sides.get("expert", {}).get(outcome, 0)
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


def render_card(manifest: dict[str, Any], sample: dict[str, Any] | None = None) -> str:
    """The dataset card (README.md) for a manifest: front matter for the Hub, then prose."""
    provenance = manifest["provenance"]
    history_chars = manifest["history_chars"]
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
        *[f"- `{f.name}` ({f.type}): {doc(f)}" for f in PAIR_SCHEMA],
        "",
        f"`history` holds the latest earlier steps whose text fits {history_chars} characters;",
        "`history_omitted` counts the older steps left out (the full trajectory stays in the build's store).",
        "",
        *_sample_section(sample),
        *_report_section(manifest.get("report", [])),
        "## Splits",
        "",
        summary_markdown(summary(manifest)),
        "Splits are by trajectory: no trajectory appears in two splits.",
        "",
        "## Provenance",
        "",
        "- sources: " + (", ".join(f"`{s}`" for s in provenance.get("sources") or []) or "none"),
        *_bullets({k: v for k, v in provenance.items() if k != "sources"}),
        "",
        f"Schema version: `{manifest['schema_version']}`.",
        "",
        *_built_with_section(manifest.get("built_with")),
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
