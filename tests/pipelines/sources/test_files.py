"""collect_files(): the example files in data/examples and hand-written files in tmp_path."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from actforge.pipelines.sources.conversation import (
    BadRecord,
    extract_instruction,
    parse_conversation,
    strip_observation_label,
)
from actforge.pipelines.sources.files import collect_files, detect_format
from actforge.pipelines.sources.registry import collect
from actforge.schemas import Step
from actforge.schemas.ids import split_for, trajectory_id
from tests.support.factories import EXAMPLES, Records, records_of

MIXED = EXAMPLES / "mixed"


def _collect(path: Path | str, fmt: str | None = None) -> Records:
    return records_of(collect_files(str(path), fmt=fmt, progress=False))


def _bad(collected: Records) -> list[tuple[str, str]]:
    return [(q.position, q.reason) for q in collected.quarantined]


# --- good records --------------------------------------------------------------------------------


def test_eto_records_become_alfworld_trajectories() -> None:
    spec = str(EXAMPLES / "eto_alfworld.json")
    got = _collect(spec)
    assert got.quarantined == []
    assert [t.task for t in got.trajectories] == [
        "pick_and_place_simple",
        "pick_clean_then_place_in_recep",
        "pick_heat_then_place_in_recep",
        "alfworld",
    ]
    first = got.trajectories[0]
    assert (first.source, first.environment, first.success, first.reward) == (spec, "alfworld", None, None)
    assert first.instruction == "put a pencil in shelf."
    assert first.steps[0].observation == (
        "You are in the middle of a room. Looking quickly around you, you see a bed 1, a desk 1, "
        "a drawer 1, and a shelf 1.\nYour task is to: put a pencil in shelf."
    )
    assert [s.action for s in first.steps] == [
        "go to desk 1",
        "take pencil 1 from desk 1",
        "go to shelf 1",
        "put pencil 1 in/on shelf 1",
    ]
    assert first.steps[1].observation == "On the desk 1, you see a book 2, and a pencil 1."
    assert first.final_observation == "You put the pencil 1 in/on the shelf 1."
    last = got.trajectories[3]
    assert [s.action for s in last.steps] == ["go to desk 1", "take book 1 from desk 1", "use desklamp 1"]
    assert last.steps[2].observation == "You pick up the book 1 from the desk 1."
    assert last.final_observation is None


def test_agentgym_records_take_environment_and_reward() -> None:
    got = _collect(EXAMPLES / "agentgym_webshop.json")
    assert got.quarantined == []
    assert [(t.environment, t.task, t.reward, t.success) for t in got.trajectories] == [
        ("webshop", "webshop", 1.0, True),
        ("webshop", "webshop", 0.75, False),
        ("webshop", "webshop", None, None),
    ]
    first = got.trajectories[0]
    assert first.instruction == "i need blue running shoes in size 9, price lower than 60.00 dollars"
    assert [s.action for s in first.steps] == [
        "search[blue running shoes size 9]",
        "click[B0RUN00001]",
        "click[9]",
        "click[Buy Now]",
    ]
    assert first.steps[0].observation == (
        "WebShop [SEP] Instruction: [SEP] i need blue running shoes in size 9, price lower than "
        "60.00 dollars [SEP] Search"
    )
    assert first.steps[3].observation == "You have clicked 9."
    assert (
        first.final_observation
        == "Thank you for shopping with us! [SEP] Your score (min 0.0, max 1.0) [SEP] 1.0"
    )
    assert got.trajectories[1].final_observation is None


def test_messages_records_with_both_action_styles() -> None:
    got = _collect(EXAMPLES / "messages_scienceworld.jsonl")
    assert got.quarantined == []
    boil, bee, measure = got.trajectories
    assert [t.environment for t in got.trajectories] == ["scienceworld"] * 3
    assert [t.task for t in got.trajectories] == ["scienceworld", "find-living-thing", "scienceworld"]
    assert boil.instruction == "Your task is to boil water."
    assert [s.action for s in boil.steps] == [
        "move pot to sink",
        "activate sink",
        "move pot to stove",
        "activate stove",
    ]
    assert boil.steps[0].observation == (
        "Task Description:\nYour task is to boil water.\n\n"
        "Observation: This room is called the kitchen. In it, you see: a stove, a sink, a pot."
    )
    assert boil.steps[1].observation == "You move the pot to the sink."
    assert boil.final_observation == "The stove is now activated. The water boils."
    assert [s.action for s in bee.steps] == ["pick up bee", "move bee to red box"]
    assert bee.steps[1].observation == "You move the bee to the inventory."
    assert measure.instruction == "Your task is to measure the temperature of the water."
    assert [s.action for s in measure.steps] == ["pick up thermometer", "use thermometer on cup of water"]
    assert measure.final_observation is None


def test_native_records_keep_their_fields_and_recompute_ids() -> None:
    got = _collect(EXAMPLES / "native.jsonl")
    assert got.quarantined == []
    boil, count = got.trajectories
    assert boil.steps == (
        Step(
            "You are in the kitchen. You see a pot of water and a stove.",
            "move pot to stove",
            ("move pot to stove", "look around"),
        ),
        Step("You move the pot to the stove.", "activate stove", ("activate stove", "look around")),
    )
    assert (boil.task, boil.environment, boil.split) == ("boil", "scienceworld", "validation")
    assert (boil.success, boil.reward) == (True, 1.0)
    assert boil.final_observation == "The stove is now activated. The water boils."
    assert boil.trajectory_id == trajectory_id(
        "boil", "scienceworld", "Your task is to boil water.", boil.steps
    )
    assert (count.environment, count.final_observation, count.success, count.reward) == (
        "generic",
        None,
        None,
        None,
    )
    assert count.split == split_for(count.trajectory_id)


# --- turn logic ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "action"),
    [
        ("Thought: the desk.\nAction: go to desk 1", "go to desk 1"),
        ("Thought:\nI should search.\n\nAction:\nsearch[red lamp]", "search[red lamp]"),
        ("<think>It is alive.</think><action>pick up bee</action>", "pick up bee"),
        ("Action: look", "look"),
    ],
)
def test_action_styles(reply: str, action: str) -> None:
    parsed = parse_conversation(
        [("human", "Your task is to: act"), ("gpt", reply), ("human", "Observation: ok")]
    )
    assert parsed.steps == (Step("Your task is to: act", action),)
    assert parsed.final_observation == "ok"


def test_opening_drops_instructions_and_ok() -> None:
    parsed = parse_conversation(
        [
            ("system", "General rules. Reply as Action: X"),
            ("user", "More rules."),
            ("assistant", "OK"),
            ("user", "Observation: You are in a hall.\nYour task is to: open the door."),
            ("assistant", "Action: open door"),
        ]
    )
    assert parsed.instruction == "open the door."
    assert parsed.steps == (Step("You are in a hall.\nYour task is to: open the door.", "open door"),)
    assert parsed.final_observation is None


@pytest.mark.parametrize(
    ("turns", "reason", "detail"),
    [
        (
            [("user", "task"), ("assistant", "Thought: hm")],
            "no_action",
            "no assistant turn contains an action",
        ),
        (
            [("user", "task"), ("assistant", "Action: a"), ("user", "o"), ("assistant", "Thought: hm")],
            "no_action",
            "turn 3: assistant turn has no action",
        ),
        (
            [("assistant", "Action: a"), ("user", "o")],
            "turn_order",
            "turn 0: assistant action before any user turn",
        ),
        (
            [("user", "task"), ("assistant", "Action: a"), ("assistant", "Action: b")],
            "turn_order",
            "turn 2: expected user turn, got assistant",
        ),
        (
            [("user", "task"), ("assistant", "Action: a"), ("user", "o"), ("user", "o2")],
            "turn_order",
            "turn 3: expected assistant turn, got user",
        ),
        (
            [("user", "task"), ("assistant", "OK"), ("assistant", "Action: a")],
            "turn_order",
            "turn 2: expected user turn, got assistant",
        ),
        ([("user", "task"), ("tool", "x")], "unknown_role", "turn 1: unknown role 'tool'"),
    ],
)
def test_bad_turns(turns: list[tuple[str, str]], reason: str, detail: str) -> None:
    with pytest.raises(BadRecord) as caught:
        parse_conversation(turns)
    assert (caught.value.reason, caught.value.detail) == (reason, detail)


@pytest.mark.parametrize(
    ("text", "instruction"),
    [
        ("WebShop [SEP] Instruction: [SEP] i need a lamp [SEP] Search", "i need a lamp"),
        ("Task Description:\nYour task is to boil water.\nMore text.", "Your task is to boil water."),
        ("You see a bed 1.\nYour task is to: make the bed.", "make the bed."),
        ("Instruction: find the key\nYou are in a cave.", "find the key"),
        ("\n  You are in a cave.\nFind the key.", "You are in a cave."),
    ],
)
def test_extract_instruction(text: str, instruction: str) -> None:
    assert extract_instruction(text) == instruction


def test_strip_observation_label_only_at_start() -> None:
    assert (
        strip_observation_label("Observation:\n You see: an Observation: x ") == "You see: an Observation: x"
    )


# --- bad records in the mixed files --------------------------------------------------------------


def test_mixed_eto() -> None:
    got = _collect(MIXED / "eto_alfworld.json")
    assert [t.instruction for t in got.trajectories] == [
        "put an apple in shelf.",
        "put a book in shelf.",
        "put a key in shelf.",
    ]
    assert _bad(got) == [
        ("record 3", "missing_field"),
        ("record 4", "wrong_type"),
        ("record 5", "no_action"),
        ("record 6", "undecodable_bytes"),
        ("record 7", "turn_order"),
        ("record 9", "invalid_json"),
    ]
    details = [q.detail for q in got.quarantined]
    assert details[:2] == ["id is missing", "conversations[2].value should be string, got integer"]
    assert details[4] == "turn 5: expected assistant turn, got user"
    undecodable, broken = got.quarantined[3], got.quarantined[5]
    assert "put a \ufffd\ufffd." in undecodable.raw
    assert broken.raw == '{"id": "broken", "conversations": [{"from": "human", "value": "unterminated}\n]\n'


def test_mixed_agentgym() -> None:
    got = _collect(MIXED / "agentgym_webshop.json")
    assert [(t.instruction, t.reward, t.success) for t in got.trajectories] == [
        ("i want a wool scarf", 1.0, True),
        ("i want a steel bottle", 0.5, False),
    ]
    assert _bad(got) == [
        ("record 2", "missing_field"),
        ("record 3", "wrong_type"),
        ("record 4", "no_action"),
        ("record 5", "undecodable_bytes"),
        ("record 6", "turn_order"),
        ("record 8", "invalid_json"),
    ]
    assert [q.detail for q in got.quarantined[:3]] == [
        "item_id is missing",
        "reward should be integer or number, got string",
        "turn 5: assistant turn has no action",
    ]


def test_mixed_messages() -> None:
    got = _collect(MIXED / "messages_scienceworld.jsonl")
    assert [(t.task, t.instruction) for t in got.trajectories] == [
        ("scienceworld", "Your task is to boil water."),
        ("scienceworld", "Your task is to find a bee."),
        ("chemistry", "Your task is to mix salt and water."),
    ]
    assert _bad(got) == [
        ("line 2", "invalid_json"),
        ("line 3", "missing_field"),
        ("line 4", "wrong_type"),
        ("line 5", "no_action"),
        ("line 6", "undecodable_bytes"),
        ("line 7", "turn_order"),
        ("line 8", "unknown_role"),
    ]
    lines = (MIXED / "messages_scienceworld.jsonl").read_bytes().decode("utf-8", errors="replace").split("\n")
    assert [q.raw for q in got.quarantined] == lines[1:8]
    assert got.quarantined[0].raw == '{"messages": [this is not json'
    assert got.quarantined[1].detail == "messages[2].content is missing"


def test_mixed_native() -> None:
    got = _collect(MIXED / "native.jsonl")
    assert [(t.task, t.instruction, t.split) for t in got.trajectories] == [
        ("count", "Count the pens.", split_for(got.trajectories[0].trajectory_id)),
        ("sort", "Sort the rocks.", "test"),
    ]
    assert got.trajectories[1].success is False
    assert _bad(got) == [
        ("line 2", "invalid_json"),
        ("line 3", "missing_field"),
        ("line 4", "wrong_type"),
        ("line 5", "no_action"),
        ("line 6", "undecodable_bytes"),
    ]
    assert [q.detail for q in got.quarantined[1:4]] == [
        "instruction is missing",
        "steps[0].action should be string, got integer",
        "steps is empty",
    ]
    assert got.quarantined[4].raw.startswith('{"task": "count", "instruction": "Count \ufffd\ufffd."')


def test_undetectable_file_is_one_quarantine_record() -> None:
    spec = str(MIXED / "notes.jsonl")
    got = _collect(spec)
    assert got.trajectories == []
    assert [(q.source, q.position, q.reason) for q in got.quarantined] == [
        (spec, "whole file", "unknown_format")
    ]
    assert got.quarantined[0].raw == (MIXED / "notes.jsonl").read_text()


def test_mixed_files_regenerate_byte_for_byte(tmp_path: Path) -> None:
    copy = tmp_path / "make_mixed.py"
    shutil.copy(EXAMPLES / "make_mixed.py", copy)
    spec = importlib.util.spec_from_file_location("make_mixed_copy", copy)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main()
    for path in sorted(MIXED.iterdir()):
        assert (tmp_path / "mixed" / path.name).read_bytes() == path.read_bytes(), path.name


# --- detection, override, folders ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "fmt"),
    [
        ({"messages": [], "conversations": []}, "messages"),
        ({"item_id": "webshop_1", "conversations": []}, "agentgym"),
        ({"id": 1, "conversations": []}, "eto"),
        ({"steps": []}, "native"),
        ({"note": 1}, None),
        ([{"steps": []}], None),
    ],
)
def test_detect_format(record: object, fmt: str | None) -> None:
    assert detect_format(record) == fmt


def test_auto_detection_ignores_file_names(tmp_path: Path) -> None:
    for i, name in enumerate(["eto_alfworld.json", "agentgym_webshop.json", "messages_scienceworld.jsonl"]):
        shutil.copy(EXAMPLES / name, tmp_path / f"file{i}{Path(name).suffix}")
    got = _collect(tmp_path)
    assert got.quarantined == []
    # No environment in the file names: ETO and messages fall back to "generic", AgentGym uses item_id.
    assert [t.environment for t in got.trajectories] == ["generic"] * 4 + ["webshop"] * 3 + ["generic"] * 3


def test_detection_skips_a_broken_first_line(tmp_path: Path) -> None:
    good = json.dumps(
        {"messages": [{"role": "user", "content": "go"}, {"role": "assistant", "content": "Action: go"}]}
    )
    path = tmp_path / "chat.jsonl"
    path.write_text("{oops\n" + good + "\n")
    got = _collect(path)
    assert [t.steps for t in got.trajectories] == [(Step("go", "go"),)]
    assert _bad(got) == [("line 1", "invalid_json")]


def test_prefix_and_fmt_override_detection() -> None:
    path = EXAMPLES / "agentgym_webshop.json"
    forced = _collect(f"eto:{path}")
    assert forced.trajectories == []
    assert [(q.position, q.reason, q.detail) for q in forced.quarantined] == [
        (f"record {n}", "missing_field", "id is missing") for n in (1, 2, 3)
    ]
    assert {q.source for q in forced.quarantined} == {f"eto:{path}"}
    # The fmt argument (the CLI's --format) wins over the prefix.
    overridden = _collect(f"eto:{path}", fmt="agentgym")
    assert (len(overridden.trajectories), overridden.quarantined) == (3, [])
    assert overridden.trajectories[0].source == f"eto:{path}"
    assert _collect(path, fmt="messages").quarantined[0].detail == "messages is missing"


def test_folder_spec_reads_every_file_recursively() -> None:
    spec = str(EXAMPLES)
    got = records_of(collect(spec, progress=False))
    assert len(got.trajectories) == 22
    assert len(got.quarantined) == 25
    assert {t.source for t in got.trajectories} | {q.source for q in got.quarantined} == {spec}
    assert [q.position for q in got.quarantined if q.position.startswith("mixed/native")] == [
        f"mixed/native.jsonl line {n}" for n in range(2, 7)
    ]
    assert got.quarantined[-1].position == "mixed/notes.jsonl whole file"
    assert len({q.quarantine_id for q in got.quarantined}) == 25


def test_ids_are_deterministic_and_content_based(tmp_path: Path) -> None:
    first = [t.trajectory_id for t in _collect(EXAMPLES).trajectories]
    assert first == [t.trajectory_id for t in _collect(EXAMPLES).trajectories]
    records = json.loads((EXAMPLES / "eto_alfworld.json").read_text())
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "alfworld_train.json").write_text(json.dumps(records))
    (tmp_path / "b" / "more_alfworld.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    from_array = _collect(tmp_path / "a")
    from_lines = _collect(tmp_path / "b")
    array_ids = [t.trajectory_id for t in from_array.trajectories]
    assert array_ids == [t.trajectory_id for t in from_lines.trajectories]
    assert array_ids == [t.trajectory_id for t in _collect(EXAMPLES / "eto_alfworld.json").trajectories]
    assert len(set(array_ids)) == 4


def test_missing_path_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        _collect(tmp_path / "nope.json")
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        _collect(f"eto:{tmp_path / 'nope'}")
    with pytest.raises(FileNotFoundError, match="no .json, .jsonl, .parquet files"):
        _collect(tmp_path)
    with pytest.raises(ValueError, match="unknown file format 'csv'"):
        _collect(EXAMPLES / "native.jsonl", fmt="csv")


# --- parquet and JSON-array edge cases -----------------------------------------------------------


def test_native_parquet_quarantines_bad_rows(tmp_path: Path) -> None:
    rows = [json.loads(line) for line in (EXAMPLES / "native.jsonl").read_text().splitlines()]
    rows.insert(1, {"task": "count", "instruction": None, "steps": [{"observation": "o", "action": "a"}]})
    path = tmp_path / "trajectories.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    got = _collect(path)
    expected = _collect(EXAMPLES / "native.jsonl").trajectories
    assert [(t.trajectory_id, t.steps, t.split, t.reward) for t in got.trajectories] == [
        (t.trajectory_id, t.steps, t.split, t.reward) for t in expected
    ]
    assert [(q.position, q.reason, q.detail) for q in got.quarantined] == [
        ("record 2", "wrong_type", "instruction should be string, got null")
    ]
    assert json.loads(got.quarantined[0].raw)["instruction"] is None


def test_unreadable_parquet_is_not_parquet(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"not parquet")
    got = _collect(path)
    assert [(q.position, q.reason, q.raw) for q in got.quarantined] == [("whole file", "not_parquet", "")]


@pytest.mark.parametrize(("name", "content"), [("e.jsonl", b""), ("e.json", b"\n  \n"), ("e.parquet", b"")])
def test_an_empty_file_is_quarantined_whole_as_empty(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    got = _collect(path)
    assert [(q.position, q.reason) for q in got.quarantined] == [("whole file", "empty_file")]
    assert not got.trajectories


def test_data_after_a_json_array_is_quarantined(tmp_path: Path) -> None:
    record = {"steps": [{"observation": "o", "action": "a"}], "task": "t", "instruction": "i"}
    path = tmp_path / "n.json"
    path.write_text(json.dumps([record, record]) + "\n{extra}\n")
    got = _collect(path)
    assert len(got.trajectories) == 2
    assert [(q.position, q.reason, q.raw) for q in got.quarantined] == [
        ("record 3", "invalid_json", "{extra}")
    ]


# --- files and records that used to stop a build or hide good records (issue 9) -----------------

NATIVE = {
    "task": "boil",
    "environment": "scienceworld",
    "instruction": "Boil water.",
    "steps": [{"observation": "A kitchen.", "action": "activate stove"}],
}


def _native(**changes: object) -> dict:
    return NATIVE | changes


def _step_action(action: str) -> dict:
    return _native(steps=[{"observation": "A kitchen.", "action": action}])


def test_one_bad_record_never_stops_the_file(tmp_path: Path) -> None:
    deep = "[" * 100_000 + "]" * 100_000  # deeper than Python's recursion limit
    lines = [
        json.dumps(_native(instruction="first good")),
        json.dumps(_native(instruction="deep", extra=None))[:-1] + f', "deep": {deep}}}',
        json.dumps(_native(instruction="surrogate")).replace('"surrogate"', '"bad \\ud800 text"'),
        json.dumps(_native(instruction="last good")),
    ]
    path = tmp_path / "native.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    got = _collect(path)
    assert [t.instruction for t in got.trajectories] == ["first good", "last good"]
    assert sorted(_bad(got)) == [
        ("line 2", "too_deep"),
        ("line 3", "unencodable_text"),
    ]


def test_deep_nesting_in_a_json_array_is_quarantined(tmp_path: Path) -> None:
    path = tmp_path / "records.json"
    path.write_text(
        "[" + json.dumps(_native()) + ", " + "[" * 100_000 + "]" * 100_000 + "]", encoding="utf-8"
    )
    got = _collect(path, fmt="native")
    assert len(got.trajectories) == 1
    assert [reason for _, reason in _bad(got)] == ["too_deep"]


@pytest.mark.parametrize(
    ("action", "reason"),
    [
        ("", "empty_action"),
        ("   \t ", "empty_action"),
        ("open\x1b[31m door", "control_characters"),
        ("ring\x07", "control_characters"),
        ("nul\x00here", "control_characters"),
        ("go " * 400, "overlong_action"),
    ],
)
def test_bad_expert_actions_are_quarantined(tmp_path: Path, action: str, reason: str) -> None:
    path = tmp_path / "native.jsonl"
    good = json.dumps(_native(instruction="good"))
    path.write_text(json.dumps(_step_action(action)) + "\n" + good + "\n", encoding="utf-8")
    got = _collect(path)
    assert [t.instruction for t in got.trajectories] == ["good"]
    [(position, got_reason)] = _bad(got)
    assert (position, got_reason) == ("line 1", reason)
    assert "step 0" in got.quarantined[0].detail


def test_a_pretty_printed_object_is_one_record(tmp_path: Path) -> None:
    path = tmp_path / "one.json"
    path.write_text(json.dumps(_native(), indent=2), encoding="utf-8")
    got = _collect(path)
    assert got.quarantined == [] and [t.task for t in got.trajectories] == ["boil"]


@pytest.mark.parametrize("first", ['"a stray string"', '{"note": "exported 2026-11-26"}'])
def test_a_note_on_line_one_is_one_bad_record(tmp_path: Path, first: str) -> None:
    path = tmp_path / "native.jsonl"
    path.write_text(first + "\n" + json.dumps(_native()) + "\n", encoding="utf-8")
    got = _collect(path)
    assert [t.task for t in got.trajectories] == ["boil"]
    assert [position for position, _ in _bad(got)] == ["line 1"]


def test_utf16_files_are_read_and_unmarked_ones_say_encoding(tmp_path: Path) -> None:
    text = json.dumps(_native(instruction="Koche Wasser, bitte: ä")) + "\n"
    marked = tmp_path / "marked.jsonl"
    marked.write_bytes(text.encode("utf-16"))  # with a byte order mark
    got = _collect(marked)
    assert got.quarantined == [] and got.trajectories[0].instruction == "Koche Wasser, bitte: ä"
    unmarked = tmp_path / "unmarked.jsonl"
    unmarked.write_bytes(text.encode("utf-16-le"))
    got = _collect(unmarked)
    assert got.trajectories == []
    [record] = got.quarantined
    assert (record.reason, record.position) == ("encoding", "whole file")
    assert "UTF-8" in record.detail


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_unmarked_wide_encodings_say_encoding(tmp_path: Path, codec: str) -> None:
    path = tmp_path / "unmarked.jsonl"
    path.write_bytes((json.dumps(_native()) + "\n").encode(codec))
    got = _collect(path)
    assert got.trajectories == []
    assert [(q.position, q.reason) for q in got.quarantined] == [("whole file", "encoding")]


def test_a_raw_nul_in_utf8_spoils_only_its_line(tmp_path: Path) -> None:
    # A raw NUL byte inside a JSON string is not JSON; it is no sign of a wide encoding either.
    path = tmp_path / "native.jsonl"
    good = json.dumps(_native(instruction="good")).encode()
    undecodable = json.dumps(_native(instruction="latin-1: XX")).encode().replace(b"XX", b"\xe9t\xe9")
    with_nul = json.dumps(_native(instruction="nul: XX")).encode().replace(b"XX", b"a\x00b")
    path.write_bytes(b"\n".join([good, undecodable, with_nul]) + b"\n")
    got = _collect(path)
    assert [t.instruction for t in got.trajectories] == ["good"]
    assert sorted(_bad(got)) == [("line 2", "undecodable_bytes"), ("line 3", "invalid_json")]
    raw = {q.position: q.raw for q in got.quarantined}
    assert "a\x00b" in raw["line 3"]  # the record is kept as it was, for the user to mend
