"""Raw records from the bytes of an expert file: JSON arrays, JSONL lines, pretty-printed objects,
Parquet rows. Each record keeps its text for quarantine and its 1-based position ("line N",
"record N"), and one that cannot be decoded carries why, so the rest of the file is still read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from actforge.pipelines.sources.conversation import BadRecord
from actforge.schemas.vocab import ALFWORLD, GENERIC, SCIENCEWORLD, WEBSHOP

WIDE_NUL_SHARE = 8  # one NUL in every 8 bytes or more: a wide encoding or binary, not a stray NUL
# File-name fragments that name an environment, checked in order ("sciworld" is ETO's spelling).
_FILE_ENVIRONMENTS: tuple[tuple[str, str], ...] = (
    ("scienceworld", SCIENCEWORLD),
    ("sciworld", SCIENCEWORLD),
    ("alfworld", ALFWORLD),
    ("webshop", WEBSHOP),
)
_SURROGATES = re.compile(r"[\udc80-\udcff]")


@dataclass(frozen=True)
class Raw:
    """One record as read: its text for quarantine, and either its value or why it has none."""

    position: str
    text: str
    value: Any = None
    error: BadRecord | None = None


@dataclass(frozen=True)
class SourceFile:
    """Where a record comes from: the spec for provenance, the file name for hints."""

    source: str
    path: Path
    label: str

    def position(self, where: str) -> str:
        return f"{self.label} {where}" if self.label else where

    @property
    def environment(self) -> str:
        """The environment the file's name, or its path inside a folder or repo, names."""
        name = (self.label or self.path.name).lower()
        return next((env for part, env in _FILE_ENVIRONMENTS if part in name), GENERIC)


def wide_or_binary(sample: bytes) -> bool:
    """UTF-16 or UTF-32 text without a byte order mark, or binary: NULs in a large share of the bytes
    (ASCII in UTF-16 is half NULs, in UTF-32 three quarters). A stray NUL in UTF-8 text is not this:
    it spoils only its own record, which the line or element reader quarantines alone."""
    return sample.count(0) * WIDE_NUL_SHARE >= len(sample)


def json_records(file: SourceFile, data: bytes) -> Iterator[Raw]:
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


def _jsonl_records(file: SourceFile, data: bytes) -> Iterator[Raw]:
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        position = file.position(f"line {number}")
        try:
            text = line.rstrip(b"\r").decode("utf-8")
        except UnicodeDecodeError as err:
            text = line.rstrip(b"\r").decode("utf-8", errors="replace")
            yield Raw(position, text, error=BadRecord("undecodable_bytes", f"invalid UTF-8: {err}"))
            continue
        yield _decoded(position, text)


def _decoded(position: str, text: str) -> Raw:
    try:
        return Raw(position, text, json.loads(text))
    except json.JSONDecodeError as err:
        return Raw(position, text, error=BadRecord("invalid_json", f"not JSON: {err}"))
    except RecursionError:
        return Raw(position, text, error=BadRecord("too_deep", "JSON nested deeper than this reader follows"))


def _array_records(file: SourceFile, text: str) -> Iterator[Raw]:
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
            yield Raw(position, _printable(text[index:]), error=BadRecord(reason, detail))
            return
        yield _array_element(position, text[index:end], value)
        index = end
    trailing = text[index + 1 :].strip()
    if trailing:
        position = file.position(f"record {number + 1}")
        yield Raw(position, _printable(trailing), error=BadRecord("invalid_json", "data after the array"))


def _skip_separators(text: str, index: int) -> int:
    while index < len(text) and (text[index].isspace() or text[index] == ","):
        index += 1
    return index


def _array_element(position: str, text: str, value: Any) -> Raw:
    if _SURROGATES.search(text):
        detail = "invalid UTF-8 bytes (stored here as U+FFFD)"
        return Raw(position, _printable(text), error=BadRecord("undecodable_bytes", detail))
    return Raw(position, text, value)


def _printable(text: str) -> str:
    """Text with undecodable bytes (surrogate escapes) replaced so it can be stored as a string."""
    return _SURROGATES.sub("\ufffd", text)


def parquet_records(file: SourceFile) -> list[Raw]:
    rows = pq.read_table(file.path).to_pylist()
    return [
        Raw(file.position(f"record {n}"), json.dumps(row, ensure_ascii=False, default=str), row)
        for n, row in enumerate(rows, start=1)
    ]
