"""Write data/examples/mixed/: expert files mixing good records with every kind of bad one.

Kept as a script because the undecodable records hold raw invalid UTF-8 bytes, which an editor
would silently repair. Run: python data/examples/make_mixed.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MIXED = Path(__file__).parent / "mixed"
BAD_BYTES = b"\xff\xfe"
PLACEHOLDER = "@@BAD_BYTES@@"


def dumps(record: Any) -> bytes:
    """Compact JSON with the placeholder swapped for raw invalid UTF-8."""
    return json.dumps(record, ensure_ascii=False).encode("utf-8").replace(PLACEHOLDER.encode(), BAD_BYTES)


def json_array(elements: list[bytes], broken_tail: bytes) -> bytes:
    """A JSON array whose last element is broken: everything before it must still be read."""
    return b"[\n" + b",\n".join([*elements, broken_tail]) + b"\n]\n"


def jsonl(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)


def sharegpt(*turns: str) -> list[dict[str, str]]:
    """ShareGPT turns from texts prefixed "H:" (human) or "G:" (gpt)."""
    roles = {"H": "human", "G": "gpt"}
    return [{"from": roles[t[0]], "value": t[2:]} for t in turns]


ALF_OPENING = (
    'H:Act in a household. Reply as "Thought: ...\\nAction: ...".',
    "G:OK",
)


def alf_turns(task: str, thing: str) -> list[dict[str, str]]:
    return sharegpt(
        *ALF_OPENING,
        f"H:You are in a room. You see a table 1 and a shelf 1.\nYour task is to: {task}",
        "G:Thought: Look on the table.\nAction: go to table 1",
        f"H:Observation: On the table 1, you see a {thing} 1.",
        f"G:Thought: Take it.\nAction: take {thing} 1 from table 1",
        f"H:Observation: You pick up the {thing} 1 from the table 1.",
    )


def eto_file() -> bytes:
    wrong_type = {"id": "pick_and_place_simple-Cup-None-Shelf-2", "conversations": alf_turns("x", "cup")}
    wrong_type["conversations"][2]["value"] = 42
    out_of_order = alf_turns("put a fork in shelf.", "fork")
    out_of_order.insert(5, {"from": "human", "value": "Observation: Nothing happens."})
    good = [
        {
            "id": "pick_and_place_simple-Apple-None-Shelf-1",
            "conversations": alf_turns("put an apple in shelf.", "apple"),
        },
        {
            "id": "pick_and_place_simple-Book-None-Shelf-2",
            "conversations": alf_turns("put a book in shelf.", "book"),
        },
        {
            "id": "pick_and_place_simple-Key-None-Shelf-3",
            "conversations": alf_turns("put a key in shelf.", "key"),
        },
    ]
    bad = [
        {"conversations": alf_turns("put a pen in shelf.", "pen")},
        wrong_type,
        {
            "id": "no-action",
            "conversations": sharegpt(*ALF_OPENING, "H:Your task is to: nothing", "G:Thought: Hmm."),
        },
        {
            "id": "pick_and_place_simple-Vase-None-Shelf-4",
            "conversations": alf_turns(f"put a {PLACEHOLDER}.", "vase"),
        },
        {"id": "pick_and_place_simple-Fork-None-Shelf-5", "conversations": out_of_order},
    ]
    elements = [dumps(r) for r in (good[0], good[1], *bad, good[2])]
    return json_array(
        elements, b'{"id": "broken", "conversations": [{"from": "human", "value": "unterminated}'
    )


def webshop_turns(query: str) -> list[dict[str, Any]]:
    turns = [
        {"from": "human", "value": "Shop for the item in the instruction.", "loss": None},
        {"from": "gpt", "value": "OK", "loss": False},
        {
            "from": "human",
            "value": f"WebShop [SEP] Instruction: [SEP] i want {query} [SEP] Search",
            "loss": None,
        },
        {"from": "gpt", "value": f"Thought:\nSearch.\n\nAction:\nsearch[{query}]", "loss": True},
        {"from": "human", "value": "Instruction: [SEP] results [SEP] B0ITEM0001", "loss": None},
        {"from": "gpt", "value": "Thought:\nOpen it.\n\nAction:\nclick[B0ITEM0001]", "loss": True},
        {"from": "human", "value": "Instruction: [SEP] item page [SEP] Buy Now", "loss": None},
        {"from": "gpt", "value": "Thought:\nBuy.\n\nAction:\nclick[Buy Now]", "loss": True},
    ]
    return turns


def agentgym_file() -> bytes:
    no_action = webshop_turns("a red lamp")
    no_action[5]["value"] = "Thought:\nI am not sure what to do."
    wrong_type = {"item_id": "webshop_12", "conversations": webshop_turns("a green rug"), "reward": "1.0"}
    action_first = webshop_turns("a blue hat")[3:]
    good = [
        {"item_id": "webshop_10", "conversations": webshop_turns("a wool scarf"), "reward": 1.0},
        {"item_id": "webshop_11", "conversations": webshop_turns("a steel bottle"), "reward": 0.5},
    ]
    bad = [
        {"conversations": webshop_turns("a paper map"), "reward": 1.0},
        wrong_type,
        {"item_id": "webshop_13", "conversations": no_action, "reward": 0.0},
        {"item_id": "webshop_14", "conversations": webshop_turns(f"a {PLACEHOLDER} mat"), "reward": 1.0},
        {"item_id": "webshop_15", "conversations": action_first, "reward": 1.0},
    ]
    elements = [dumps(r) for r in (good[0], *bad, good[1])]
    return json_array(elements, b'{"item_id": "webshop_16", "conversations": [}')


SCI_TASK = "Task Description:\nYour task is to {task}.\n\nObservation: This room is called the kitchen."


def messages(task: str, *actions: str) -> list[dict[str, str]]:
    """A system turn, the task turn, then each action followed by an observation."""
    turns = [
        {"role": "system", "content": "You act in a science simulator."},
        {"role": "user", "content": SCI_TASK.format(task=task)},
    ]
    for action in actions:
        turns.append({"role": "assistant", "content": action})
        turns.append({"role": "user", "content": "Observation: Done."})
    return turns


def messages_file() -> bytes:
    missing = messages("melt ice", "Thought:\nGo.\n\nAction:\nopen freezer")
    del missing[2]["content"]
    out_of_order = messages("mix paint", "Thought: a\nAction: look around", "Thought: b\nAction: open door")
    del out_of_order[3]
    unknown_role = messages("grow a plant", "<think>water</think><action>water plant</action>")
    unknown_role[3]["role"] = "tool"
    lines = [
        dumps({"messages": messages("boil water", "Thought:\nHeat.\n\nAction:\nactivate stove")}),
        b'{"messages": [this is not json',
        dumps({"messages": missing}),
        dumps({"messages": "boil water"}),
        dumps({"messages": messages("freeze water", "Thought: I do not know.")}),
        dumps({"messages": messages(f"heat {PLACEHOLDER}", "<think>x</think><action>look around</action>")}),
        dumps({"messages": out_of_order}),
        dumps({"messages": unknown_role}),
        dumps({"messages": messages("find a bee", "<think>It flies.</think><action>pick up bee</action>")}),
        b"",
        dumps({"task": "chemistry", "messages": messages("mix salt and water", "Action: mix cup")}),
    ]
    return jsonl(lines)


def native_step(observation: str, action: Any) -> dict[str, Any]:
    return {"observation": observation, "action": action}


def native_file() -> bytes:
    lines = [
        dumps(
            {
                "task": "count",
                "instruction": "Count the pens.",
                "steps": [native_step("A cup of pens.", "look in cup")],
            }
        ),
        b"not json at all",
        dumps({"task": "count", "steps": [native_step("A box.", "open box")]}),
        dumps({"task": "count", "instruction": "Count the cups.", "steps": [native_step("A shelf.", 7)]}),
        dumps({"task": "count", "instruction": "Count nothing.", "steps": []}),
        dumps(
            {
                "task": "count",
                "instruction": f"Count {PLACEHOLDER}.",
                "steps": [native_step("A bag.", "open bag")],
            }
        ),
        dumps(
            {
                "task": "sort",
                "environment": "scienceworld",
                "split": "test",
                "instruction": "Sort the rocks.",
                "steps": [native_step("Rocks lie on the floor.", "pick up rock")],
                "success": False,
            }
        ),
    ]
    return jsonl(lines)


def main() -> None:
    MIXED.mkdir(exist_ok=True)
    files = {
        "eto_alfworld.json": eto_file(),
        "agentgym_webshop.json": agentgym_file(),
        "messages_scienceworld.jsonl": messages_file(),
        "native.jsonl": native_file(),
        "notes.jsonl": jsonl([dumps({"note": "not an expert trajectory"}), dumps({"note": "neither"})]),
    }
    for name, data in files.items():
        (MIXED / name).write_bytes(data)


if __name__ == "__main__":
    main()
