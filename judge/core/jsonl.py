"""JSON Lines in and out. Reading names the file and line of any bad row; writing is atomic
(a temp file in the same folder, then a rename), so a crash never leaves a half-written output."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from judge.core.errors import InputError
from judge.core.records import RowError, item_from_row, to_row

T = TypeVar("T")
_UMASK = os.umask(0)
os.umask(_UMASK)


class _NotJSON(ValueError):
    """A token Python's json accepts but JSON has not (NaN, Infinity, a number too large for a float)."""


def _refuse_constant(name: str):
    raise _NotJSON(f"{name} is not JSON (JSON has no NaN or Infinity); write null or a number")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _NotJSON(f"number {text} is too large for a float")
    return value


def loads(text: str) -> Any:
    """Strict JSON: `NaN`, `Infinity` and overflowing numbers are refused (Python's json reads them,
    and a NaN score would then poison every mean and correlation downstream)."""
    return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)


def _open_binary(path: str) -> BinaryIO:
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise InputError("file not found", path) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a file", path) from None
    except PermissionError:
        raise InputError("permission denied", path) from None


def _not_utf8(data: bytes, error: UnicodeDecodeError, path: str, number: int) -> InputError:
    """Name the line and the byte (spreadsheets often save Latin-1 or Windows-1252)."""
    column = error.start - data.rfind(b"\n", 0, error.start)
    return InputError(f"not UTF-8 (byte 0x{data[error.start]:02x} at byte {column} of the line); save the file "
                      "as UTF-8", path, number)


def _decode(raw: bytes, path: str, number: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _not_utf8(raw, e, path, number) from None


def read_text(path: str | os.PathLike) -> str:
    """A whole file as text: UTF-8 with a leading BOM dropped; another encoding is refused naming the line."""
    path = str(path)
    with _open_binary(path) as handle:
        data = handle.read()
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as e:
        raise _not_utf8(data, e, path, data.count(b"\n", 0, e.start) + 1) from None


def iter_json_rows(path: str | os.PathLike) -> Iterator[tuple[int, Any]]:
    """(line number, decoded row) for every non-blank line of a JSON Lines file. A UTF-8 BOM and CRLF
    line ends are accepted; a line that is not UTF-8 or not JSON raises InputError(file, line)."""
    path = str(path)
    with _open_binary(path) as handle:
        for number, raw in enumerate(handle, start=1):
            line = _decode(raw, path, number)
            if number == 1:
                line = line.removeprefix("\ufeff")  # spreadsheet and Windows exports start with one
            if not line.strip():
                continue
            try:
                yield number, loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"malformed JSON ({e.msg} at column {e.colno})", path, number) from None
            except _NotJSON as e:
                raise InputError(str(e), path, number) from None


def iter_table_rows(path: str | os.PathLike) -> Iterator[tuple[int, Any]]:
    """(position, row) from a JSON array (position = 1-based index) or a JSON Lines file (line number),
    whichever `path` holds: the public datasets come in both."""
    path = str(path)
    with _open_binary(path) as handle:
        head = handle.read(4096).removeprefix(b"\xef\xbb\xbf").lstrip()
    if head.startswith(b"["):
        data = read_json(path)
        yield from enumerate(data, start=1)
    else:
        yield from iter_json_rows(path)


def _parse_rows(path: str | os.PathLike, parse: Callable[[Any], T]) -> list[tuple[int, T]]:
    records = []
    for number, row in iter_json_rows(path):
        try:
            records.append((number, parse(row)))
        except RowError as e:
            raise InputError(str(e), str(path), number) from None
    return records


def read_jsonl(path: str | os.PathLike, parse: Callable[[Any], T]) -> list[T]:
    """Every row of `path` through `parse` (e.g. `item_from_row`); a row that does not fit raises
    InputError naming the file, the line and the field."""
    return [record for _, record in _parse_rows(path, parse)]


def read_items(path: str | os.PathLike) -> list:
    """PairItems/SingleItems from a JSONL file: at least one, ids unique (a repeated id would merge two
    items' verdicts into one)."""
    numbered = _parse_rows(path, item_from_row)
    if not numbered:
        raise InputError("no items in the file", str(path))
    check_unique_ids(((number, item.id) for number, item in numbered), str(path))
    return [item for _, item in numbered]


def check_unique_ids(numbered_ids: Iterable[tuple[int, str]], path: str) -> None:
    """Refuse a repeated id: `numbered_ids` are (line, id) pairs; the error names both lines."""
    seen: dict[str, int] = {}
    for number, record_id in numbered_ids:
        if record_id in seen:
            raise InputError(f"duplicate id {record_id!r} (first on line {seen[record_id]})", path, number)
        seen[record_id] = number


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
        return loads(read_text(path))
    except json.JSONDecodeError as e:
        raise InputError(f"malformed JSON ({e.msg} at column {e.colno})", path, e.lineno) from None
    except _NotJSON as e:
        raise InputError(str(e), path, _line_of_non_json(read_text(path))) from None


# A JSON string (skipped whole, so a "NaN" inside text never matches) or a bare constant or number.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|(NaN|-?Infinity|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)')


def _line_of_non_json(text: str) -> int | None:
    """The line of the first NaN/Infinity/overflowing number outside a string (json.loads does not say)."""
    for match in _TOKENS.finditer(text):
        token = match.group(1)
        if token and (token in ("NaN", "Infinity", "-Infinity") or math.isinf(float(token))):
            return text.count("\n", 0, match.start()) + 1
    return None


class AppendLog:
    """An append-only JSONL file for work in progress (resumable runs): each batch of rows is flushed
    and fsynced as it is written. A kill mid-write leaves a torn last line (no newline yet, perhaps
    half a UTF-8 character): reading ignores it and the next append cuts it away, so its work is
    redone. A bad line before the last one is not a torn write but a damaged file: InputError."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = None

    def rows(self) -> list[dict]:
        if not self.path.exists():
            return []
        data = self.path.read_bytes()
        lines = data.split(b"\n")[:-1]  # what follows the last newline is a torn write, or nothing
        rows = []
        for number, raw in enumerate(lines, start=1):
            try:
                row = json.loads(raw.decode("utf-8"))  # our own rows: Python's json wrote them
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise InputError(f"damaged log line ({e}); delete this line to redo its work, or start the run "
                                 "over", str(self.path), number) from None
            if not isinstance(row, dict):
                raise InputError(f"damaged log line (a JSON {type(row).__name__}, not an object); delete this line "
                                 "to redo its work, or start the run over", str(self.path), number)
            rows.append(row)
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
