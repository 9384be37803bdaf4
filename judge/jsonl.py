"""JSON Lines in and out. Reading names the file and line of any bad row; writing is atomic
(a temp file in the same folder, then a rename), so a crash never leaves a half-written output."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from .errors import InputError
from .records import RowError, item_from_row, to_row

T = TypeVar("T")
_UMASK = os.umask(0)
os.umask(_UMASK)


def iter_json_rows(path: str | os.PathLike) -> Iterator[tuple[int, Any]]:
    """(line number, decoded row) for every non-blank line; malformed JSON raises InputError(file, line)."""
    path = str(path)
    try:
        handle = open(path, encoding="utf-8")
    except FileNotFoundError:
        raise InputError("file not found", path) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a .jsonl file", path) from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"malformed JSON ({e.msg} at column {e.colno})", path, number) from None


def read_jsonl(path: str | os.PathLike, parse: Callable[[Any], T]) -> list[T]:
    """Every row of `path` through `parse` (e.g. `item_from_row`); a row that does not fit raises
    InputError naming the file, the line and the field."""
    records = []
    for number, row in iter_json_rows(path):
        try:
            records.append(parse(row))
        except RowError as e:
            raise InputError(str(e), str(path), number) from None
    return records


def read_items(path: str | os.PathLike, *, unique_ids: bool = True) -> list:
    """PairItems/SingleItems from a JSONL file, with ids checked to be unique."""
    items = read_jsonl(path, item_from_row)
    if unique_ids:
        check_unique_ids(items, str(path))
    return items


def check_unique_ids(records: Iterable, path: str) -> None:
    seen: dict[str, int] = {}
    for number, record in enumerate(records, start=1):
        if record.id in seen:
            raise InputError(f"duplicate id {record.id!r} (first seen in row {seen[record.id]})", path, number)
        seen[record.id] = number


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w"):
    """Write `path` through a temp file in the same folder, renamed over it only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual permissions
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def dumps(row: Any) -> str:
    return json.dumps(row, ensure_ascii=False)


def write_jsonl(path: str | os.PathLike, records: Iterable[Any]) -> int:
    """Write records (dataclasses or dicts) atomically; returns the count."""
    count = 0
    with atomic_open(path) as handle:
        for record in records:
            row = record if isinstance(record, dict) else to_row(record)
            handle.write(dumps(row) + "\n")
            count += 1
    return count


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_open(path) as handle:
        json.dump(obj, handle, ensure_ascii=False, indent=2, default=str)
        handle.write("\n")


def read_json(path: str | os.PathLike) -> Any:
    """A whole JSON document (the source formats of PandaLM, LLMBar, Prometheus are JSON arrays)."""
    path = str(path)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise InputError("file not found", path) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"malformed JSON ({e.msg} at column {e.colno})", path, e.lineno) from None


class AppendLog:
    """An append-only JSONL file for work in progress (resumable runs): each row is flushed and
    fsynced as it is written; on reading, a torn last line (a kill mid-write) is ignored."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = None

    def rows(self) -> list[dict]:
        if not self.path.exists():
            return []
        rows = []
        with open(self.path, encoding="utf-8") as handle:
            for line in handle:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    break  # a torn final line from a kill: the work it held is redone
        return rows

    def append(self, rows: Iterable[Any]) -> None:
        if self._handle is None:
            self._repair_tail()
            self._handle = open(self.path, "a", encoding="utf-8")
        for row in rows:
            self._handle.write(dumps(row if isinstance(row, dict) else to_row(row)) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def _repair_tail(self) -> None:
        """Cut a torn last line so new rows start on a line of their own."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            with open(self.path, "r+b") as handle:
                handle.truncate(data.rfind(b"\n") + 1)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)
