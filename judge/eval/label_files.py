"""Reading eval's label files, gold and predictions alike: numbered rows from JSONL or any `data
convert` source format, and duplicates refused at their second line. An empty file is refused too:
it cannot give a right number."""

from __future__ import annotations

from judge.core.errors import InputError
from judge.core.jsonl import iter_json_rows
from judge.core.records import RowError, Verdict
from judge.data.convert import SOURCES, source_records

FORMATS = ["jsonl", *SOURCES]  # what --gold-format / --pred-format accept: every `data convert` source


def numbered_rows(path: str, fmt: str, parse_row) -> list[tuple[int, object]]:
    """(line, record) for every row of `path`: JSONL through `parse_row`, any other format through
    its importer (numbered by record: a `table` or `preference` source with columns named as the
    record fields, as `data convert` reads them without --field). An empty file is refused."""
    if fmt != "jsonl":
        numbered = list(enumerate(source_records(fmt, path), start=1))
    else:
        numbered = []
        for number, row in iter_json_rows(path):
            try:
                numbered.append((number, parse_row(row)))
            except RowError as e:
                raise InputError(str(e), path, number) from None
    if not numbered:
        raise InputError("the file is empty (no rows)", path)
    return numbered


def refuse_duplicates(keyed: list[tuple[tuple, int]], path: str, what) -> None:
    """`keyed` holds (key, line); a key seen twice is refused at its second line."""
    first: dict[tuple, int] = {}
    for key, line in keyed:
        if key in first:
            raise InputError(f"duplicate {what(key)} (first on line {first[key]})", path, line)
        first[key] = line


def verdict_key(v: Verdict) -> tuple:
    return v.id, v.order, v.sample


def describe_verdict_key(key: tuple) -> str:
    item_id, order, sample = key
    return f"verdict for id {item_id!r}, order {order}" + (f", sample {sample}" if sample else "")
