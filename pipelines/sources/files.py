"""Expert trajectories from files in published formats (ETO, AgentGym, Early Experience, native).

A spec is `[FORMAT:]PATH`; PATH is a file or a folder (every *.json, *.jsonl and *.parquet under
it, sorted). Files are read as bytes so that one bad line or element is quarantined on its own
and every good record around it is still built.

Positions are 1-based: "line N" for JSONL (physical line number), "record N" for JSON-array
elements and Parquet rows, "whole file" for a file that cannot be read at all. For a folder spec
the position starts with the file's path relative to the folder, e.g. "eto/alfworld.json record 3".

Reason codes: invalid_json, undecodable_bytes, missing_field, wrong_type, unknown_role,
no_action, turn_order, unknown_format.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from actforge.pipelines.sources.base import FILE_FORMATS, Collected, quarantine
from actforge.pipelines.sources.conversation import BadRecord, ParsedConversation, parse_conversation
from actforge.pipelines.text.actions import expert_action_problem
from actforge.schemas import SPLITS, Quarantined, Step, Trajectory
from actforge.schemas.ids import split_for, trajectory_id

SUFFIXES: tuple[str, ...] = (".json", ".jsonl", ".parquet")
WIDE_NUL_SHARE = 8  # one NUL in every 8 bytes or more: a wide encoding or binary, not a stray NUL
# File-name fragments that name an environment, checked in order ("sciworld" is ETO's spelling).
_FILE_ENVIRONMENTS: tuple[tuple[str, str], ...] = (
    ("scienceworld", "scienceworld"),
    ("sciworld", "scienceworld"),
    ("alfworld", "alfworld"),
    ("webshop", "webshop"),
)
_ITEM_ENVIRONMENTS: dict[str, str] = {"sciworld": "scienceworld"}
_ALFWORLD_TASK_TYPE = re.compile(r"^([a-z]+(?:_[a-z]+)+)-")
_SURROGATES = re.compile(r"[\udc80-\udcff]")
_TYPE_NAMES: dict[type, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    list: "array",
    dict: "object",
}


@dataclass(frozen=True)
class _Raw:
    """One record as read: its text for quarantine, and either its value or why it has none."""

    position: str
    text: str
    value: Any = None
    error: BadRecord | None = None


@dataclass(frozen=True)
class _File:
    """Where a record comes from: the spec for provenance, the file name for hints."""

    source: str
    path: Path
    label: str

    def position(self, where: str) -> str:
        return f"{self.label} {where}" if self.label else where

    @property
    def environment(self) -> str:
        name = self.path.name.lower()
        return next((env for part, env in _FILE_ENVIRONMENTS if part in name), "generic")


def collect_files(spec: str, fmt: str | None = None, progress: bool = True) -> Collected:
    """Trajectories and quarantined records of `[FORMAT:]PATH`; `fmt` overrides the prefix.

    Raises FileNotFoundError for a missing path and ValueError for an unknown format name: those
    are mistakes in the command, not in the data.
    """
    prefix, path = _split_spec(spec)
    forced = fmt or prefix
    if forced is not None and forced not in FILE_FORMATS:
        raise ValueError(f"unknown file format {forced!r}; expected one of {', '.join(FILE_FORMATS)}")
    collected = Collected()
    with tqdm(desc=f"reading {spec}", unit="record", disable=not progress) as bar:
        for file in _files(spec, path):
            collected.extend(_collect_file(file, forced, bar))
    return collected


def detect_format(record: Any) -> str | None:
    """The format a decoded record looks like, or None when it matches none."""
    if not isinstance(record, dict):
        return None
    if "messages" in record:
        return "messages"
    if "conversations" in record:
        return "agentgym" if "item_id" in record else "eto"
    if "steps" in record:
        return "native"
    return None


def _split_spec(spec: str) -> tuple[str | None, Path]:
    head, sep, tail = spec.partition(":")
    if sep and head in FILE_FORMATS:
        return head, Path(tail)
    return None, Path(spec)


def source_files(spec: str) -> list[Path]:
    """The files a `[FORMAT:]PATH` spec reads, in reading order."""
    return [file.path for file in _files(spec, _split_spec(spec)[1])]


def _files(spec: str, path: Path) -> list[_File]:
    if path.is_file():
        return [_File(spec, path, "")]
    if not path.is_dir():
        raise FileNotFoundError(f"expert source {spec!r}: no such file or folder {str(path)!r}")
    found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
    if not found:
        raise FileNotFoundError(f"expert source {spec!r}: no {', '.join(SUFFIXES)} files under {path}")
    return [_File(spec, p, p.relative_to(path).as_posix()) for p in found]


def _collect_file(file: _File, forced: str | None, bar: tqdm) -> Collected:
    """One file's records; a file that cannot be read at all is one quarantine record saying why."""
    try:
        data = file.path.read_bytes()
    except OSError as err:
        return _unreadable(file, "unreadable_file", f"{type(err).__name__}: {err.strerror or err}")
    if not data.strip():
        return _unreadable(file, "empty_file", "the file is empty (or only whitespace)")
    if file.path.suffix.lower() == ".parquet":
        try:
            raws = _parquet_records(file)
        except pa.ArrowInvalid as err:
            return _unreadable(file, "not_parquet", f"not a readable Parquet file: {err}")
        return _build_all(file, forced or "native", raws, bar)
    data = data.removeprefix(codecs.BOM_UTF8)
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            data = data.decode("utf-16").encode("utf-8")
        except UnicodeError as err:
            return _unreadable(file, "encoding", f"a UTF-16 byte order mark, but not UTF-16: {err}")
    elif _wide_or_binary(data[:4096]):
        detail = (
            "NUL bytes throughout: UTF-16 or UTF-32 without a byte order mark, or binary; save it as UTF-8"
        )
        return _unreadable(file, "encoding", detail)
    raws = list(_json_records(file, data))
    fmt = forced or _detect(raws)
    if fmt is None:
        text = data.decode("utf-8", errors="replace")
        return _unknown_format(file, "no decodable record matches a known format", text)
    return _build_all(file, fmt, raws, bar)


def _wide_or_binary(sample: bytes) -> bool:
    """UTF-16 or UTF-32 text without a byte order mark, or binary: NULs in a large share of the bytes
    (ASCII in UTF-16 is half NULs, in UTF-32 three quarters). A stray NUL in UTF-8 text is not this:
    it spoils only its own record, which the line or element reader quarantines alone."""
    return sample.count(0) * WIDE_NUL_SHARE >= len(sample)


def _build_all(file: _File, fmt: str, raws: list[_Raw], bar: tqdm) -> Collected:
    trajectories: list[Trajectory] = []
    quarantined: list[Quarantined] = []
    for raw in raws:
        bar.update(1)
        bad = raw.error
        if bad is None:
            try:
                trajectories.append(_BUILDERS[fmt](raw.value, file))
            except BadRecord as err:
                bad = err
            except RecursionError:
                bad = BadRecord("too_deep", "nested deeper than this reader follows")
            except UnicodeEncodeError as err:
                bad = BadRecord(
                    "unencodable_text", f"text that is not valid Unicode (a lone surrogate?): {err}"
                )
            except Exception as err:  # one record never stops a build; the reason names the error
                bad = BadRecord("unreadable_record", f"{type(err).__name__}: {err}")
        if bad is not None:
            quarantined.append(quarantine(file.source, raw.position, bad.reason, bad.detail, raw.text))
    return Collected.of(trajectories, quarantined)


def _detect(raws: list[_Raw]) -> str | None:
    """Format of the first record that looks like one, so a note or a bad first line is one bad
    record and does not hide the format of the rest."""
    formats = (detect_format(raw.value) for raw in raws if raw.error is None)
    return next((fmt for fmt in formats if fmt is not None), None)


def _unknown_format(file: _File, detail: str, text: str) -> Collected:
    """One quarantine record for a whole file whose format cannot be told."""
    return _unreadable(file, "unknown_format", detail, text)


def _unreadable(file: _File, reason: str, detail: str, text: str = "") -> Collected:
    """One quarantine record for a whole file, with the reason it cannot be read."""
    return Collected.of([], [quarantine(file.source, file.position("whole file"), reason, detail, text)])


# --- reading -------------------------------------------------------------------------------------


def _json_records(file: _File, data: bytes) -> Iterator[_Raw]:
    if data.lstrip().startswith(b"["):
        return _array_records(file, data.decode("utf-8", errors="surrogateescape"))
    if data.lstrip().startswith(b"{") and b"\n" in data.strip():  # maybe one pretty-printed object
        try:
            whole = _decoded(file.position("record 1"), data.decode("utf-8"))
        except UnicodeDecodeError:  # read line by line: the bad lines are quarantined alone
            whole = None
        if whole is not None and whole.error is None:
            return iter([whole])
    return _jsonl_records(file, data)


def _jsonl_records(file: _File, data: bytes) -> Iterator[_Raw]:
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        position = file.position(f"line {number}")
        try:
            text = line.rstrip(b"\r").decode("utf-8")
        except UnicodeDecodeError as err:
            text = line.rstrip(b"\r").decode("utf-8", errors="replace")
            yield _Raw(position, text, error=BadRecord("undecodable_bytes", f"invalid UTF-8: {err}"))
            continue
        yield _decoded(position, text)


def _decoded(position: str, text: str) -> _Raw:
    try:
        return _Raw(position, text, json.loads(text))
    except json.JSONDecodeError as err:
        return _Raw(position, text, error=BadRecord("invalid_json", f"not JSON: {err}"))
    except RecursionError:
        return _Raw(
            position, text, error=BadRecord("too_deep", "JSON nested deeper than this reader follows")
        )


def _array_records(file: _File, text: str) -> Iterator[_Raw]:
    """Elements of a JSON array one by one; a broken element quarantines the rest of the file."""
    decoder = json.JSONDecoder()
    index = text.index("[") + 1
    number = 0
    while True:
        index = _skip_separators(text, index)
        if index >= len(text) or text[index] == "]":
            break
        number += 1
        position = file.position(f"record {number}")
        try:
            value, end = decoder.raw_decode(text, index)
        except (json.JSONDecodeError, RecursionError) as err:
            reason = "too_deep" if isinstance(err, RecursionError) else "invalid_json"
            detail = f"not readable from here to the end of the file: {reason.replace('_', ' ')} {err}"
            yield _Raw(position, _printable(text[index:]), error=BadRecord(reason, detail))
            return
        yield _array_element(position, text[index:end], value)
        index = end
    trailing = text[index + 1 :].strip()
    if trailing:
        position = file.position(f"record {number + 1}")
        yield _Raw(position, _printable(trailing), error=BadRecord("invalid_json", "data after the array"))


def _skip_separators(text: str, index: int) -> int:
    while index < len(text) and (text[index].isspace() or text[index] == ","):
        index += 1
    return index


def _array_element(position: str, text: str, value: Any) -> _Raw:
    if _SURROGATES.search(text):
        detail = "invalid UTF-8 bytes (stored here as U+FFFD)"
        return _Raw(position, _printable(text), error=BadRecord("undecodable_bytes", detail))
    return _Raw(position, text, value)


def _printable(text: str) -> str:
    """Text with undecodable bytes (surrogate escapes) replaced so it can be stored as a string."""
    return _SURROGATES.sub("\ufffd", text)


def _parquet_records(file: _File) -> list[_Raw]:
    rows = pq.read_table(file.path).to_pylist()
    return [
        _Raw(file.position(f"record {n}"), json.dumps(row, ensure_ascii=False, default=str), row)
        for n, row in enumerate(rows, start=1)
    ]


# --- validation ----------------------------------------------------------------------------------


def _get(obj: dict[str, Any], key: str, types: tuple[type, ...], path: str, optional: bool = False) -> Any:
    """obj[key] checked against `types` (bool is not a number); None is allowed only if optional."""
    name = f"{path}.{key}" if path else key
    if key not in obj:
        if optional:
            return None
        raise BadRecord("missing_field", f"{name} is missing")
    value = obj[key]
    if value is None and optional:
        return None
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        expected = " or ".join(_TYPE_NAMES[t] for t in types)
        raise BadRecord("wrong_type", f"{name} should be {expected}, got {_type_name(value)}")
    return value


def _type_name(value: Any) -> str:
    return "null" if value is None else _TYPE_NAMES.get(type(value), type(value).__name__)


def _record(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRecord("wrong_type", f"record should be object, got {_type_name(value)}")
    return value


def _turns(record: dict[str, Any], key: str, role_key: str, text_key: str) -> list[tuple[str, str]]:
    turns = _get(record, key, (list,), "")
    result = []
    for i, turn in enumerate(turns):
        path = f"{key}[{i}]"
        if not isinstance(turn, dict):
            raise BadRecord("wrong_type", f"{path} should be object, got {_type_name(turn)}")
        result.append((_get(turn, role_key, (str,), path), _get(turn, text_key, (str,), path)))
    return result


# --- building ------------------------------------------------------------------------------------


def _trajectory(
    file: _File,
    task: str,
    environment: str,
    instruction: str,
    steps: tuple[Step, ...],
    final_observation: str | None = None,
    success: bool | None = None,
    reward: float | None = None,
    split: str | None = None,
) -> Trajectory:
    for i, step in enumerate(steps):
        problem = expert_action_problem(step.action)
        if problem is not None:
            raise BadRecord(problem[0], f"step {i}: {problem[1]}")
    tid = trajectory_id(task, environment, instruction, steps)
    return Trajectory(
        trajectory_id=tid,
        source=file.source,
        task=task,
        environment=environment,
        split=split if split in SPLITS else split_for(tid),
        instruction=instruction,
        steps=steps,
        final_observation=final_observation,
        success=success,
        reward=reward,
    )


def _from_conversation(
    file: _File, task: str, environment: str, conversation: ParsedConversation, reward: float | None = None
) -> Trajectory:
    return _trajectory(
        file,
        task,
        environment,
        conversation.instruction,
        conversation.steps,
        conversation.final_observation,
        success=None if reward is None else reward >= 1.0,
        reward=reward,
    )


def _build_eto(value: Any, file: _File) -> Trajectory:
    record = _record(value)
    record_id = _get(record, "id", (str, int), "")
    conversation = parse_conversation(_turns(record, "conversations", "from", "value"))
    environment = file.environment
    match = _ALFWORLD_TASK_TYPE.match(str(record_id)) if environment == "alfworld" else None
    return _from_conversation(file, match.group(1) if match else environment, environment, conversation)


def _build_agentgym(value: Any, file: _File) -> Trajectory:
    record = _record(value)
    item_id = _get(record, "item_id", (str,), "")
    turns = _turns(record, "conversations", "from", "value")
    for i, turn in enumerate(record["conversations"]):
        _get(turn, "loss", (bool,), f"conversations[{i}]", optional=True)
    conversation = parse_conversation(turns)
    reward = _get(record, "reward", (int, float), "", optional=True)
    environment = _item_environment(item_id)
    return _from_conversation(
        file, environment, environment, conversation, None if reward is None else float(reward)
    )


def _item_environment(item_id: str) -> str:
    prefix = item_id.rpartition("_")[0].lower()
    return _ITEM_ENVIRONMENTS.get(prefix, prefix) or "generic"


def _build_messages(value: Any, file: _File) -> Trajectory:
    record = _record(value)
    task = _get(record, "task", (str,), "", optional=True)
    conversation = parse_conversation(_turns(record, "messages", "role", "content"))
    environment = file.environment
    return _from_conversation(file, task or environment, environment, conversation)


def _build_native(value: Any, file: _File) -> Trajectory:
    record = _record(value)
    task = _get(record, "task", (str,), "")
    instruction = _get(record, "instruction", (str,), "")
    steps = tuple(
        _native_step(step, f"steps[{i}]") for i, step in enumerate(_get(record, "steps", (list,), ""))
    )
    if not steps:
        raise BadRecord("no_action", "steps is empty")
    reward = _get(record, "reward", (int, float), "", optional=True)
    return _trajectory(
        file,
        task,
        _get(record, "environment", (str,), "", optional=True) or "generic",
        instruction,
        steps,
        final_observation=_get(record, "final_observation", (str,), "", optional=True),
        success=_get(record, "success", (bool,), "", optional=True),
        reward=None if reward is None else float(reward),
        split=_get(record, "split", (str,), "", optional=True),
    )


def _native_step(step: Any, path: str) -> Step:
    if not isinstance(step, dict):
        raise BadRecord("wrong_type", f"{path} should be object, got {_type_name(step)}")
    admissible = _get(step, "admissible", (list,), path, optional=True)
    if admissible is not None and not all(isinstance(a, str) for a in admissible):
        raise BadRecord("wrong_type", f"{path}.admissible should be array of strings")
    return Step(
        observation=_get(step, "observation", (str,), path),
        action=_get(step, "action", (str,), path),
        admissible=None if admissible is None else tuple(admissible),
    )


_BUILDERS: dict[str, Callable[[Any, _File], Trajectory]] = {
    "native": _build_native,
    "eto": _build_eto,
    "agentgym": _build_agentgym,
    "messages": _build_messages,
}
