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
from pathlib import Path

import pyarrow as pa
from tqdm import tqdm

from actforge.pipelines.sources.base import FILE_FORMATS, Collected, quarantine
from actforge.pipelines.sources.conversation import BadRecord
from actforge.pipelines.sources.formats import BUILDERS, detect_format
from actforge.pipelines.sources.records import Raw, SourceFile, json_records, parquet_records, wide_or_binary
from actforge.schemas import Quarantined, Trajectory

SUFFIXES: tuple[str, ...] = (".json", ".jsonl", ".parquet")


def collect_files(spec: str, fmt: str | None = None, progress: bool = True) -> Collected:
    """Trajectories and quarantined records of `[FORMAT:]PATH`; `fmt` overrides the prefix.

    Raises FileNotFoundError for a missing path and ValueError for an unknown format name: those
    are mistakes in the command, not in the data.
    """
    prefix, path = _split_spec(spec)
    forced = _known_format(fmt or prefix)
    return _collect(spec, _files(spec, path), forced, progress)


def collect_paths(
    source: str, paths: list[tuple[Path, str]], fmt: str | None = None, progress: bool = True
) -> Collected:
    """Trajectories and quarantined records of these files (path, label for positions), recorded
    as coming from `source`: how a downloaded Hub snapshot is read (`sources.hub`)."""
    files = [SourceFile(source, path, label) for path, label in paths]
    return _collect(source, files, _known_format(fmt), progress)


def _known_format(fmt: str | None) -> str | None:
    if fmt is not None and fmt not in FILE_FORMATS:
        raise ValueError(f"unknown file format {fmt!r}; expected one of {', '.join(FILE_FORMATS)}")
    return fmt


def _collect(spec: str, files: list[SourceFile], forced: str | None, progress: bool) -> Collected:
    collected = Collected()
    with tqdm(desc=f"reading {spec}", unit="record", disable=not progress) as bar:
        for file in files:
            collected.extend(_collect_file(file, forced, bar))
    return collected


def _split_spec(spec: str) -> tuple[str | None, Path]:
    head, sep, tail = spec.partition(":")
    if sep and head in FILE_FORMATS:
        return head, Path(tail)
    return None, Path(spec)


def source_files(spec: str) -> list[Path]:
    """The files a `[FORMAT:]PATH` spec reads, in reading order."""
    return [file.path for file in _files(spec, _split_spec(spec)[1])]


def _files(spec: str, path: Path) -> list[SourceFile]:
    if path.is_file():
        return [SourceFile(spec, path, "")]
    if not path.is_dir():
        raise FileNotFoundError(f"expert source {spec!r}: no such file or folder {str(path)!r}")
    found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
    if not found:
        raise FileNotFoundError(f"expert source {spec!r}: no {', '.join(SUFFIXES)} files under {path}")
    return [SourceFile(spec, p, p.relative_to(path).as_posix()) for p in found]


def _collect_file(file: SourceFile, forced: str | None, bar: tqdm) -> Collected:
    """One file's records; a file that cannot be read at all is one quarantine record saying why."""
    try:
        data = file.path.read_bytes()
    except OSError as err:
        return _unreadable(file, "unreadable_file", f"{type(err).__name__}: {err.strerror or err}")
    if not data.strip():
        return _unreadable(file, "empty_file", "the file is empty (or only whitespace)")
    if file.path.suffix.lower() == ".parquet":
        try:
            raws = parquet_records(file)
        except pa.ArrowInvalid as err:
            return _unreadable(file, "not_parquet", f"not a readable Parquet file: {err}")
        return _build_all(file, forced or _detect(raws) or "native", raws, bar)
    data = data.removeprefix(codecs.BOM_UTF8)
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            data = data.decode("utf-16").encode("utf-8")
        except UnicodeError as err:
            return _unreadable(file, "encoding", f"a UTF-16 byte order mark, but not UTF-16: {err}")
    elif wide_or_binary(data[:4096]):
        detail = (
            "NUL bytes throughout: UTF-16 or UTF-32 without a byte order mark, or binary; save it as UTF-8"
        )
        return _unreadable(file, "encoding", detail)
    raws = list(json_records(file, data))
    fmt = forced or _detect(raws)
    if fmt is None:
        text = data.decode("utf-8", errors="replace")
        return _unknown_format(file, "no decodable record matches a known format", text)
    return _build_all(file, fmt, raws, bar)


def _build_all(file: SourceFile, fmt: str, raws: list[Raw], bar: tqdm) -> Collected:
    trajectories: list[Trajectory] = []
    quarantined: list[Quarantined] = []
    for raw in raws:
        bar.update(1)
        bad = raw.error
        if bad is None:
            try:
                trajectories.append(BUILDERS[fmt](raw.value, file))
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


def _detect(raws: list[Raw]) -> str | None:
    """Format of the first record that looks like one, so a note or a bad first line is one bad
    record and does not hide the format of the rest."""
    formats = (detect_format(raw.value) for raw in raws if raw.error is None)
    return next((fmt for fmt in formats if fmt is not None), None)


def _unknown_format(file: SourceFile, detail: str, text: str) -> Collected:
    """One quarantine record for a whole file whose format cannot be told."""
    return _unreadable(file, "unknown_format", detail, text)


def _unreadable(file: SourceFile, reason: str, detail: str, text: str = "") -> Collected:
    """One quarantine record for a whole file, with the reason it cannot be read."""
    return Collected.of([], [quarantine(file.source, file.position("whole file"), reason, detail, text)])
