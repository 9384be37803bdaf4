"""Your own data: any table -> judgeforge items (`data convert --from table`), with the columns named
on the command line.

Reading (`read_table`, judge.data.table_read): JSON, JSONL, CSV/TSV, Parquet or `hf:NAME[:SPLIT]`.

Converting (`table_items`): `--field RECORD_FIELD=COLUMN` names the column of each record field (a
field not named is read from a column of the same name when there is one); `--label VALUE=WINNER`
maps the gold codes. Without `--label` only 1, 2 and tie are accepted as winners: codes such as
0/1/2 mean different things in different datasets, so guessing would silently turn gold around.
Every refusal names the file, the row and the column.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterable
from typing import Any

from judge.core.errors import ConfigError
from judge.core.jsonl import check_unique_ids
from judge.core.records import PairItem, SingleItem
from judge.data.table_read import Table, read_table

PAIR_FIELDS = ("id", "question", "answer1", "answer2", "reference", "rubric", "context", "category", "winner",
               "model1", "model2")
SINGLE_FIELDS = ("id", "question", "answer", "reference", "rubric", "context", "category", "score", "model")
RECORD_FIELDS = tuple(dict.fromkeys(PAIR_FIELDS + SINGLE_FIELDS))
WINNER_CODES = ("1", "2", "tie")
REQUIRED = {PairItem: ("question", "answer1", "answer2"), SingleItem: ("question", "answer")}


# ---- cell values ----------------------------------------------------------------------------------
def is_empty(value: Any) -> bool:
    """No value: a missing cell, or one holding only spaces (never an answer, an id or a gold label)."""
    return value is None or (isinstance(value, str) and not value.strip())


def cell_text(table: Table, position: int, column: str, value: Any) -> str:
    """A text cell; a number or boolean becomes its text (spreadsheets and Arrow type such cells)."""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (bool, int, float)):
        return str(value)
    raise table.refuse(f"column {column!r}: expected text, got {type(value).__name__} {_short(value)}", position)


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _label_key(value: Any) -> str:
    """A gold code as text, so `0` (JSON), `"0"` (CSV) and `0.0` (Parquet) are one code."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _json_safe(value: Any) -> Any:
    """A meta value as JSON can hold it (Parquet and the Hub give dates, bytes, NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return str(value)


def meta_of(row: dict, used: Iterable[str]) -> dict:
    """The columns no field took, so nothing in the user's data is lost (empty cells left out). A
    `meta` object (a file already in judgeforge's format) is merged, not nested."""
    used = set(used)
    meta = {column: _json_safe(value) for column, value in row.items() if column not in used and value is not None}
    if isinstance(meta.get("meta"), dict):
        meta = {**meta.pop("meta"), **meta}
    return meta


def parse_assignments(specs: list[str] | None, flag: str, *, split_last: bool = False) -> dict[str, str]:
    """`--field A=B` / `--label A=B` flags as a dict (a column name may hold spaces and `=`; a label
    value may hold `=`, which is why --label splits at the last one)."""
    mapping: dict[str, str] = {}
    for spec in specs or []:
        if "=" not in spec:
            raise ConfigError(f"{flag} {spec!r}: expected {'VALUE=WINNER' if split_last else 'FIELD=COLUMN'}")
        key, value = spec.rsplit("=", 1) if split_last else spec.split("=", 1)
        key = key.strip()
        if key in mapping:
            raise ConfigError(f"{flag} {key}= is given twice")
        mapping[key] = value if not split_last else value.strip()
    return mapping


def item_id(table: Table, position: int, index: int, row: dict, column: str | None) -> str:
    """The id column's value, else `{stem}-{index}` (index: the 1-based data row, the same for one
    table saved as JSONL, CSV or Parquet)."""
    if column is None:
        return f"{table.stem}-{index}"
    value = row.get(column)
    if is_empty(value):
        raise table.refuse(f"column {column!r} (the id) is empty", position)
    return cell_text(table, position, column, value)


# ---- table -> items ---------------------------------------------------------------------------------
def _resolve_fields(table: Table, explicit: dict[str, str]) -> tuple[dict[str, str], type]:
    """field -> column: the --field flags, plus same-name columns for the fields left; and the record
    kind (pairs when answer1/answer2 are mapped, single answers when answer is)."""
    unknown = sorted(set(explicit) - set(RECORD_FIELDS))
    if unknown:
        raise ConfigError(f"--field {unknown[0]}=: not a record field; the fields are: {', '.join(RECORD_FIELDS)}")
    answers = set(explicit) & {"answer", "answer1", "answer2"}
    if not answers:  # none named: take the columns named like the fields, if that is unambiguous
        pair, single = {"answer1", "answer2"} <= set(table.columns), "answer" in table.columns
        answers = {"answer1", "answer2"} if pair and not single else {"answer"} if single and not pair else set()
    if answers == {"answer"}:
        kind, fields = SingleItem, SINGLE_FIELDS
    elif answers == {"answer1", "answer2"}:
        kind, fields = PairItem, PAIR_FIELDS
    else:
        raise ConfigError("say which columns hold the answers: --field answer1=COLUMN --field answer2=COLUMN for "
                          "pairs, or --field answer=COLUMN for single answers")
    misplaced = sorted(set(explicit) - set(fields))
    if misplaced:
        what = "pairs" if kind is PairItem else "single answers"
        hint = "; a pair's gold is --field winner=COLUMN" if "score" in misplaced else \
            "; a single answer's gold is --field score=COLUMN" if "winner" in misplaced else ""
        raise ConfigError(f"--field {misplaced[0]}= does not apply to {what} (fields: {', '.join(fields)}){hint}")
    taken = set(explicit.values())
    mapping = dict(explicit)
    for field in fields:
        if field not in mapping and field in table.columns and field not in taken:
            mapping[field] = field
    for column in explicit.values():
        table.need_column(column)
    for field in REQUIRED[kind]:
        if field not in mapping:
            raise table.refuse(f"no column for the {field}: name it with --field {field}=COLUMN; the columns are: "
                               f"{', '.join(map(repr, table.columns))}")
    return mapping, kind


def _context(table: Table, position: int, column: str, value: Any) -> list[str]:
    """RAG passages: a list of strings, or one text (a CSV cell holding a JSON list is read as the list)."""
    if isinstance(value, str) and value.lstrip().startswith("["):
        with contextlib.suppress(json.JSONDecodeError):
            value = json.loads(value)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise table.refuse(f"column {column!r}: expected a list of passages (strings), got {_short(value)}", position)


def _score(table: Table, position: int, column: str, value: Any) -> float:
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise table.refuse(f"column {column!r}: expected a number (the gold score), got {_short(value)}", position)
    return number


class _Winners:
    """Gold codes -> "1" | "2" | "tie": through --label when given, else only 1/2/tie themselves."""

    def __init__(self, table: Table, column: str, labels: dict[str, str]):
        self.table, self.column = table, column
        self.labels = {value: _winner_code(value, winner) for value, winner in labels.items()}
        self.seen = sorted({_label_key(row[column]) for _, row in table.rows if not is_empty(row.get(column))})

    def __call__(self, position: int, value: Any) -> str:
        key = _label_key(value)
        if self.labels:
            if key in self.labels:
                return self.labels[key]
            hint = f"mapped: {', '.join(sorted(self.labels))}"
        elif key.lower() in WINNER_CODES:
            return key.lower()
        else:
            hint = "map every code with --label VALUE=WINNER (e.g. --label 0=1 --label 1=2 --label 2=tie)"
        raise self.table.refuse(f"column {self.column!r}: label {key!r} is not mapped; values seen: "
                                f"{', '.join(map(repr, self.seen[:20]))}{' ...' if len(self.seen) > 20 else ''}; {hint}",
                                position)


def _winner_code(value: str, winner: str) -> str:
    code = winner.strip().lower()
    if code not in WINNER_CODES:
        raise ConfigError(f"--label {value}={winner}: the winner must be 1, 2 or tie")
    return code


def table_items(source: str, fields: dict[str, str], labels: dict[str, str] | None = None) -> list:
    """`data convert --from table`: PairItems (answer1/answer2 mapped) or SingleItems (answer mapped),
    with the unmapped columns under `meta`."""
    table = read_table(source)
    mapping, kind = _resolve_fields(table, fields)
    if labels and "winner" not in mapping:
        raise ConfigError("--label maps the winner column's codes; name that column with --field winner=COLUMN")
    winners = _Winners(table, mapping["winner"], labels or {}) if "winner" in mapping else None
    required = REQUIRED[kind]
    items, numbered_ids = [], []
    for index, (position, row) in enumerate(table.rows, start=1):
        values: dict[str, Any] = {}
        for field, column in mapping.items():
            if field == "id":
                continue
            if column not in row:
                if field in required:
                    raise table.refuse(f"column {column!r} is missing in this row (it has: "
                                       f"{', '.join(map(repr, row))})", position)
                continue
            value = row[column]
            if is_empty(value):
                if field in required:
                    raise table.refuse(f"column {column!r} ({field}) is empty", position)
                continue
            if field == "winner":
                values[field] = winners(position, value)
            elif field == "score":
                values[field] = _score(table, position, column, value)
            elif field == "context":
                values[field] = _context(table, position, column, value)
            else:
                values[field] = cell_text(table, position, column, value)
        values["id"] = item_id(table, position, index, row, mapping.get("id"))
        items.append(kind(**values, meta=meta_of(row, mapping.values())))
        numbered_ids.append((position, values["id"]))
    check_unique_ids(numbered_ids, source)
    return items
