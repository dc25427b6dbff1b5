"""Training datasets from a published OUT folder (a local path or a Hub repo id), rendered for a tokenizer.

Prompts come from the one renderer of each kind: `pipelines.prompts.agent_prompt_text` for the agent
(SFT, action GRPO, next-action evaluation, sampling) and `pipelines.critic.critic_prompt_text` for the
critic (training and evaluation). They are plain text, so TRL applies no second chat template and
the model trains on exactly the text it is evaluated and sampled with.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import datasets
import pyarrow as pa

from pipelines.critic import critic_prompt_text
from pipelines.prompts import AGENT_PROMPT_TOKENS, agent_prompt_text
from schemas import states_from_table

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

AGENT_COLUMNS = ["prompt", "expert_action", "environment"]
CRITIC_COLUMNS = ["prompt", "expert_slot", "pair_id"]


def states_dataset(data: str, split: str) -> datasets.Dataset:
    """The published "states" config: one row per expert state."""
    return datasets.load_dataset(data, "states", split=split)


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
    act = datasets.load_dataset(data, "act", split=split)
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
