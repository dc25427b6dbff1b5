"""Four small dataset repos shaped like the trajectory datasets users train on, with those datasets'
real file layouts and field names, uploaded with the real `huggingface_hub` client to the loopback Hub.

- `THUDM/AgentInstruct`: Parquet shards, one split per environment in the card's `configs`,
  `{id, conversations: [{from, loss, value}]}`; few-shot turns carry `loss: false`.
- `AgentGym/AgentTraj-L`: one JSON array per environment (`sciworld_train.json`), `{item_id,
  conversations: [{from, loss, value}]}`.
- `agent-eto/eto-sft-trajectory`: `data/alfworld_sft.json`, `{id, conversations: [{from, value}]}`.
- `osunlp/early-experience`: `<env>/expert_sft.jsonl`, `{messages: [{role, content}]}`.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from huggingface_hub import CommitOperationAdd, HfApi

from tests.support.factories import EXAMPLES

FEW_SHOT = "Here is an example.\nYour task is to: find a mug."
AGENTINSTRUCT_CARD = """---
configs:
- config_name: default
  data_files:
  - split: alfworld
    path: data/alfworld-*
  - split: webshop
    path: data/webshop-*
---
# AgentInstruct (test copy)
"""


def _agentinstruct(record_id: str, task: str, actions: list[str]) -> dict[str, Any]:
    """One record whose few-shot reply holds an action (`loss: false`): only the flags tell the
    agent's first turn from the example's."""
    turns: list[dict[str, Any]] = [
        {"from": "human", "loss": None, "value": "Interact with a household to solve a task."},
        {"from": "gpt", "loss": False, "value": "OK"},
        {"from": "human", "loss": None, "value": FEW_SHOT},
        {"from": "gpt", "loss": False, "value": "Thought: mugs sit on shelves.\nAction: go to shelf 1"},
        {"from": "human", "loss": None, "value": f"You are in a room.\nYour task is to: {task}"},
    ]
    for i, action in enumerate(actions):
        if i:
            turns.append({"from": "human", "loss": None, "value": f"Observation: step {i} done."})
        turns.append({"from": "gpt", "loss": True, "value": f"Thought: next.\nAction: {action}"})
    return {"id": record_id, "conversations": turns}


def _parquet(records: list[dict[str, Any]]) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(records), sink)
    return sink.getvalue()


def _agenttraj(item_id: str, actions: list[str]) -> dict[str, Any]:
    turns: list[dict[str, Any]] = [
        {"from": "human", "loss": False, "value": "You are a scientist in a text world."},
        {"from": "gpt", "loss": False, "value": "OK. I'll follow your instructions."},
        {
            "from": "human",
            "loss": False,
            "value": "Your task is to: find a living thing.\nYou are in the hallway.",
        },
    ]
    for i, action in enumerate(actions):
        if i:
            turns.append({"from": "human", "loss": False, "value": f"Observation: you did step {i}."})
        turns.append({"from": "gpt", "loss": True, "value": f"Thought: go on.\nAction: {action}"})
    return {"item_id": item_id, "conversations": turns, "reward": 1.0}


def trajectory_repos() -> dict[str, dict[str, bytes]]:
    """Repo id -> its files."""
    return {
        "THUDM/AgentInstruct": {
            "README.md": AGENTINSTRUCT_CARD.encode(),
            "data/alfworld-00000-of-00001.parquet": _parquet(
                [
                    _agentinstruct("alfworld_0", "put a pencil in shelf.", ["go to desk 1", "take pencil 1"]),
                    _agentinstruct("alfworld_1", "cool a mug.", ["go to fridge 1", "open fridge 1"]),
                ]
            ),
            "data/webshop-00000-of-00001.parquet": _parquet(
                [_agentinstruct("webshop_0", "buy a red shirt.", ["search[red shirt]", "click[buy now]"])]
            ),
        },
        "AgentGym/AgentTraj-L": {
            "sciworld_train.json": json.dumps(
                [
                    _agenttraj("sciworld_0", ["look around", "go to kitchen"]),
                    _agenttraj("sciworld_1", ["focus on frog"]),
                ]
            ).encode(),
            "alfworld_train.json": json.dumps([_agenttraj("alfworld_9", ["look"])]).encode(),
        },
        "agent-eto/eto-sft-trajectory": {
            "data/alfworld_sft.json": (EXAMPLES / "eto_alfworld.json").read_bytes(),
        },
        "osunlp/early-experience": {
            "sciworld/expert_sft.jsonl": (EXAMPLES / "messages_scienceworld.jsonl").read_bytes(),
        },
    }


SPECS = {
    "THUDM/AgentInstruct": "hf:THUDM/AgentInstruct:default/alfworld",
    "AgentGym/AgentTraj-L": "hf:AgentGym/AgentTraj-L:sciworld_train.json",
    "agent-eto/eto-sft-trajectory": "hf:agent-eto/eto-sft-trajectory@main:data/alfworld_sft.json",
    "osunlp/early-experience": "hf:osunlp/early-experience:sciworld",
}


def upload(api: HfApi, repos: dict[str, dict[str, bytes]], private: bool = False) -> dict[str, str]:
    """Create each repo and commit its files in one commit; returns repo id -> commit sha."""
    commits = {}
    for repo_id, files in repos.items():
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        operations = [CommitOperationAdd(path, data) for path, data in files.items()]
        info = api.create_commit(repo_id, operations, commit_message="add", repo_type="dataset")
        commits[repo_id] = info.oid
    return commits
