"""Every column actforge writes, named once: its Arrow type and what it means.

Tables (`schemas.tables`) are lists of these names; records (`schemas.records`) are derived from
the tables; the dataset card reads the docs from the Arrow field metadata.
"""

from __future__ import annotations

import pyarrow as pa

DOC = b"doc"

# A published history step: admissible lists stay in the store (thousands of strings per step).
HISTORY_STEP = pa.struct([("observation", pa.string()), ("action", pa.string())])
MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])

COLUMNS: dict[str, tuple[pa.DataType, str]] = {
    # identity
    "trajectory_id": (pa.string(), "content hash of the expert trajectory"),
    "state_id": (pa.string(), "content hash of (trajectory, step index)"),
    "sample_id": (pa.string(), "content hash of the policy sample the alternative came from"),
    "pair_id": (pa.string(), "content hash of (state, expert action, normalised alternative)"),
    "quarantine_id": (pa.string(), "content hash of (source, position, reason, raw record)"),
    # where a trajectory comes from
    "source": (pa.string(), "where the expert trajectory came from"),
    "task": (pa.string(), "task name within the environment"),
    "environment": (pa.string(), "environment name (e.g. scienceworld, alfworld)"),
    "split": (pa.string(), "train, validation or test (by trajectory)"),
    "instruction": (pa.string(), "the task instruction given to the agent"),
    "final_observation": (pa.string(), "what the environment said after the last expert action"),
    "success": (pa.bool_(), "whether the expert episode succeeded, when the source says"),
    "reward": (pa.float64(), "the expert episode's reward, when the source says"),
    "num_steps": (pa.int64(), "number of expert steps in the trajectory"),
    # one step, stored once per trajectory
    "step_index": (pa.int64(), "index of this decision in the expert trajectory"),
    "observation": (pa.string(), "what the agent sees now (before the expert's action)"),
    "action": (pa.string(), "the action the expert took at this step"),
    "admissible": (pa.list_(pa.string()), "actions the environment accepted here, when the source knows"),
    "chars_before": (pa.int64(), "characters of observations and actions in the steps before this one"),
    # a published state
    "history": (pa.list_(HISTORY_STEP), "the latest earlier steps that fit the history budget"),
    "history_omitted": (pa.int64(), "earlier steps left out of `history` by the budget (oldest first)"),
    "expert_action": (pa.string(), "the action the expert took here"),
    # samples and pairs
    "policy": (pa.string(), "the base policy that produced the alternative"),
    "params_hash": (pa.string(), "content hash of the sampling parameters"),
    "params": (pa.string(), "the sampling parameters, as JSON"),
    "seed": (pa.int64(), "the seed this state's samples were drawn with"),
    "sample_index": (pa.int64(), "index of the sample among the K of its state"),
    "raw_output": (pa.string(), "the policy's output as generated"),
    "verdict": (pa.string(), "accepted or rejected"),
    "reason": (pa.string(), "why the verdict (or why a record was quarantined)"),
    "alternative_action": (
        pa.string(),
        "an action sampled from the base policy, different from the expert's",
    ),
    # verification: what the live engine says an action does in a state
    "verification_id": (pa.string(), "content hash of (state, action as taken)"),
    "outcome": (
        pa.string(),
        "what the alternative did in the live engine: invalid, no_effect, fails_task, progresses or "
        "neutral (null when not verified)",
    ),
    "score_delta": (pa.float64(), "the task score's change (0-1 scale) when the alternative was taken"),
    "outcome_observation": (pa.string(), "what the engine answered to the alternative"),
    "expert_outcome": (pa.string(), "the same for the expert's own action, the reference"),
    "expert_score_delta": (pa.float64(), "the task score's change when the expert's action was taken"),
    # world model (Early Experience's implicit world modelling): an action tried, what the engine said
    "side": (pa.string(), "whose action was tried: `expert` or `alternative`"),
    "tried_action": (pa.string(), "the action tried in the live engine"),
    "world_prompt": (
        pa.list_(MESSAGE),
        "the state and the tried action, asking what the environment answers",
    ),
    "completion": (pa.list_(MESSAGE), "what the engine answered, as the assistant's reply"),
    # what builds asked of a policy server (one row per build that asked anything)
    "requests": (pa.int64(), "requests a policy server answered"),
    "retries": (pa.int64(), "retries those requests took (timeouts, 5xx, rate limits)"),
    "prompt_tokens": (pa.int64(), "prompt tokens, as the server's answers counted them"),
    "completion_tokens": (pa.int64(), "completion tokens, as the server's answers counted them"),
    # quarantine
    "position": (pa.string(), "where in the source the record was (file:line, task@variation)"),
    "detail": (pa.string(), "what was wrong, in words"),
    "raw": (pa.string(), "the record as read, kept whole"),
    # the store's record of each publish
    "out": (pa.string(), "the published dataset folder, as an absolute path"),
    "version": (pa.int64(), "the dataset version last published to that folder"),
    "manifest": (pa.string(), "that version's manifest, as JSON"),
    # the store's record of each folder's last complete build
    "stamp": (
        pa.string(),
        "digest of a build's settings, its sources' content and the store's rows after it",
    ),
    "result": (pa.string(), "what a rerun with the same stamp prints (nothing added), as JSON"),
    # the store's record of policy names adopted from older stores
    "alias": (pa.string(), "an older name of the policy, whose samples count as the policy's own"),
    # the TRL-ready critic config
    "prompt": (pa.list_(MESSAGE), "the critic's chat prompt: system and user messages"),
    # `prompt` of the preference config: the same column name (TRL's), another prompt.
    "agent_prompt": (pa.list_(MESSAGE), "the agent's chat prompt: the state as the agent sees it"),
    "chosen": (pa.list_(MESSAGE), "the expert's action, as the assistant's reply (`Action: ...`)"),
    "rejected": (pa.list_(MESSAGE), "the alternative action, as the assistant's reply (`Action: ...`)"),
    "expert_slot": (pa.int64(), "which slot (1 or 2) holds the expert's action in this prompt"),
}
# A stored step: the store's one copy of a trajectory's text.
STEP = pa.struct([(name, COLUMNS[name][0]) for name in ("observation", "action", "admissible")])


def field(name: str, column: str | None = None) -> pa.Field:
    """The column `name` as an Arrow field whose metadata carries its doc; `column` names the entry
    of COLUMNS to take type and doc from, where a table uses one name for another column."""
    dtype, doc = COLUMNS[column or name]
    return pa.field(name, dtype, metadata={DOC: doc.encode("utf-8")})


def doc(schema_field: pa.Field) -> str:
    """The doc a field carries (empty when it carries none)."""
    return (schema_field.metadata or {}).get(DOC, b"").decode("utf-8")
