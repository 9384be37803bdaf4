"""Reading a table for `data convert --from table` and `--from preference` (judge.data.tables,
judge.data.preference): JSON arrays and JSON Lines through `judge.core.jsonl` (exact line numbers, strict JSON,
and rows may differ in shape: a preference file may hold text in one row and a chat list in the
next, which no Arrow schema can hold); CSV/TSV through the csv module (cells are the text they are:
`007` stays `007`, `None` stays `None`; a row with too few or too many fields is refused at its
row); Parquet and `hf:NAME[:SPLIT]` through `datasets`, with its Arrow cache in a temporary folder so
nothing is left under ~/.cache."""

from __future__ import annotations

import csv
import io
import tempfile
from dataclasses import dataclass
from pathlib import Path

from judge.core.errors import ConfigError, InputError
from judge.core.jsonl import iter_table_rows, read_text


@dataclass
class Table:
    """Rows of one source: `rows` are (position, row); the position is what a user finds the row by
    (JSONL: the line; CSV: the spreadsheet row, header = 1; JSON array, Parquet, Hub: the row)."""

    source: str  # the path or hf:NAME:SPLIT, as errors name it
    stem: str  # for ids: {stem}-{row}
    columns: list[str]
    rows: list[tuple[int, dict]]

    def refuse(self, message: str, position: int | None = None) -> InputError:
        return InputError(message, self.source, position)

    def need_column(self, column: str) -> None:
        if column not in self.columns:
            raise self.refuse(f"no column {column!r}; the columns are: {', '.join(map(repr, self.columns))}")


# ---- reading ----------------------------------------------------------------------------------------
def read_table(source: str) -> Table:
    """A JSON array, JSONL, CSV/TSV or Parquet file, or `hf:NAME[:SPLIT]` (a Hub dataset or a local
    dataset folder), as a Table with at least one row."""
    if source.startswith("hf:"):
        table = _read_hub(source)
    else:
        path = Path(source)
        suffix = path.suffix.lower()
        if suffix in (".json", ".jsonl"):
            table = _read_json(source)
        elif not path.exists():
            raise InputError("file not found", source)
        elif suffix in (".csv", ".tsv"):
            table = _read_csv(source, "\t" if suffix == ".tsv" else ",")
        elif suffix in (".parquet", ".pq"):
            table = _from_dataset(source, path.stem, lambda cache: _datasets().Dataset.from_parquet(source, cache_dir=cache))
        else:
            raise InputError(f"cannot tell the format from the suffix {suffix!r}: use .json, .jsonl, .csv, .tsv or "
                             ".parquet, or hf:NAME[:SPLIT] for a dataset", source)
    if not table.rows:
        raise table.refuse("no rows")
    return table


def _read_json(source: str) -> Table:
    rows, columns = [], {}
    for position, row in iter_table_rows(source):
        if not isinstance(row, dict):
            raise InputError(f"expected a JSON object, got {type(row).__name__}", source, position)
        rows.append((position, row))
        columns.update(dict.fromkeys(row))
    return Table(source, Path(source).stem, list(columns), rows)


def _datasets():
    import datasets  # lazy: `data convert` of the named formats, `eval` and `--help` stay light

    return datasets


def _from_dataset(source: str, stem: str, load) -> Table:
    """Rows through `load(cache_dir)` (a datasets call); any failure becomes an InputError naming the
    source with the library's own reason."""
    datasets = _datasets()
    bars_were_on, verbosity = datasets.is_progress_bar_enabled(), datasets.logging.get_verbosity()
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity(datasets.logging.CRITICAL)  # its errors come back as our message, once
    try:
        with tempfile.TemporaryDirectory(prefix="judgeforge-datasets-") as cache:
            dataset = load(cache)
            rows = dataset.to_list()  # before the temporary Arrow cache goes
            columns = list(dataset.column_names)
    except InputError:
        raise
    except Exception as e:  # pandas, pyarrow and datasets each raise their own kinds for a bad file
        cause = e.__cause__ or e
        raise InputError(f"cannot read it: {type(cause).__name__}: {str(cause).strip()}", source) from None
    finally:
        datasets.logging.set_verbosity(verbosity)
        if bars_were_on:
            datasets.enable_progress_bars()
    return Table(source, stem, columns, [(i, row) for i, row in enumerate(rows, start=1)])


def _read_csv(source: str, sep: str) -> Table:
    """Rows through the csv module, one record at a time, so a row with fewer fields than the header
    (a lost cell would become an empty answer, its gold label dropped) or more (an unquoted separator)
    is refused where it is. Blank lines are skipped; positions are spreadsheet rows (header = 1)."""
    text = read_text(source)  # refuses a non-UTF-8 byte naming its line
    records = csv.reader(io.StringIO(text), delimiter=sep)
    try:
        header = next(records, [])
        names = [name or f"Unnamed: {i}" for i, name in enumerate(header)]  # pandas' name for an empty header cell
        seen: set[str] = set()
        for name in names:
            if name in seen:
                raise InputError(f"column {name!r} appears twice in the header", source, 1)
            seen.add(name)
        rows = []
        for record in records:
            if not record:
                continue
            position = len(rows) + 2
            if len(record) < len(names):
                raise InputError(f"this row has {len(record)} of the header's {len(names)} fields: no cell for "
                                 f"column {names[len(record)]!r}", source, position)
            if len(record) > len(names):
                raise InputError(f"{len(record)} fields where the header has {len(names)} (an unquoted {sep!r} in "
                                 f"a cell?)", source, records.line_num)
            rows.append((position, dict(zip(names, record, strict=True))))
    except csv.Error as e:
        raise InputError(f"cannot read it: {e}", source, records.line_num) from None
    return Table(source, Path(source).stem, names, rows)


def _read_hub(source: str) -> Table:
    name, _, split = source.removeprefix("hf:").partition(":")
    if not name:
        raise ConfigError("hf: needs a dataset name: hf:NAME or hf:NAME:SPLIT")

    def load(cache):
        loaded = _datasets().load_dataset(name, cache_dir=cache)
        splits = list(loaded)
        if not split and len(splits) > 1:
            raise InputError(f"the dataset has several splits ({', '.join(splits)}); name one: hf:{name}:SPLIT", source)
        if split and split not in loaded:
            raise InputError(f"no split {split!r}; the splits are: {', '.join(splits)}", source)
        return loaded[split or splits[0]]

    return _from_dataset(source, Path(name.rstrip("/")).name, load)
