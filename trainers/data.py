"""Training datasets from a published OUT folder (a local path or a Hub repo id), rendered for a tokenizer.

Prompts come from the one renderer of each kind: `pipelines.text.prompts.agent_prompt_text` for the agent
(SFT, action GRPO, next-action evaluation, sampling) and `pipelines.text.critic.critic_prompt_text` for the
critic (training and evaluation). They are plain text, so TRL applies no second chat template and
the model trains on exactly the text it is evaluated and sampled with.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING

import datasets
import pyarrow as pa
import pyarrow.parquet as pq

from actforge.pipelines.publish.layout import shard_paths, splits_of
from actforge.pipelines.text.critic import critic_prompt_text
from actforge.pipelines.text.prompts import AGENT_PROMPT_TOKENS, agent_prompt_text
from actforge.schemas import states_from_table
from actforge.schemas.vocab import ACT, PREFERENCE, STATES

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

AGENT_COLUMNS = ["prompt", "expert_action", "environment"]
CRITIC_COLUMNS = ["prompt", "expert_slot", "pair_id"]


def published_split(data: str, config: str, split: str) -> datasets.Dataset:
    """One config's split of a published dataset: a local folder or a Hub repo id.

    A local folder is read in memory from the shards its manifest lists. `datasets` caches a local
    folder under a key made of its card and file names, not their content, so after a rebuild in
    place `load_dataset` went on serving the previous version's rows (measured: 232 stale test rows
    of 350). A Hub repo goes through `load_dataset`, whose cache is keyed by commit.
    """
    if not Path(data).is_dir():
        return datasets.load_dataset(data, config, split=split)
    paths = shard_paths(data, config, split)
    if not paths:
        raise ValueError(f"{data}: no {config!r} rows in split {split!r}")
    return datasets.Dataset(pa.concat_tables([pq.read_table(path) for path in paths]))


def published_splits(data: str, config: str) -> set[str]:
    """The splits of a config with rows, from the manifest of a local folder or from the Hub."""
    if Path(data).is_dir():
        return splits_of(data, config)
    return set(datasets.get_dataset_split_names(data, config))


def states_dataset(data: str, split: str) -> datasets.Dataset:
    """The published "states" config: one row per expert state."""
    return published_split(data, STATES, split)


def preference_dataset(data: str, split: str) -> datasets.Dataset:
    """The published "preference" config as TRL reads it: conversational prompt, chosen, rejected."""
    return published_split(data, PREFERENCE, split).select_columns(["prompt", "chosen", "rejected"])


def agent_dataset(
    data: str, split: str, tokenizer: PreTrainedTokenizerBase, max_prompt_tokens: int = AGENT_PROMPT_TOKENS
) -> datasets.Dataset:
    """One row per expert state: the agent prompt text (ending "Action:"), expert action, environment."""
    states = states_dataset(data, split)
    return states.map(
        lambda rows: {
            "prompt": [
                agent_prompt_text(state, tokenizer, max_prompt_tokens)
                for state in states_from_table(pa.Table.from_pydict(rows))
            ]
        },
        batched=True,
        remove_columns=[c for c in states.column_names if c not in AGENT_COLUMNS],
    ).select_columns(AGENT_COLUMNS)


def sft_dataset(
    data: str, split: str, tokenizer: PreTrainedTokenizerBase, max_prompt_tokens: int = AGENT_PROMPT_TOKENS
) -> datasets.Dataset:
    """The agent prompts as prompt/completion text: SFTTrainer trains on " <expert action>" only."""
    agent = agent_dataset(data, split, tokenizer, max_prompt_tokens)
    return agent.map(
        lambda row: {"completion": f" {row['expert_action']}"},
        remove_columns=["expert_action", "environment"],
    )


def critic_dataset(
    data: str, split: str, tokenizer: PreTrainedTokenizerBase, protocol: str, seed: int = 0
) -> datasets.Dataset:
    """The "act" config as critic prompt text, pairs in a seeded order, both orders of a pair adjacent.

    Training reads it unshuffled in batches of whole pairs, so both orders of a pair always land in
    the same optimiser step and a drift towards one slot is penalised in the same update.
    """
    act = published_split(data, ACT, split)
    rows_of: dict[str, list[int]] = {}
    for index, pair in enumerate(act["pair_id"]):
        rows_of.setdefault(pair, []).append(index)
    pairs = sorted(rows_of)
    random.Random(seed).shuffle(pairs)
    ordered = act.select([index for pair in pairs for index in rows_of[pair]])
    return ordered.map(
        lambda row: {"prompt": critic_prompt_text(tokenizer, row["prompt"], protocol)},
        remove_columns=[c for c in act.column_names if c not in CRITIC_COLUMNS],
    ).select_columns(CRITIC_COLUMNS)
