"""Reading eval's label files (judge.eval.label_files): numbered rows from JSONL or an importer's format,
a bad row or an empty file refused at its place, a duplicate at its second line."""

import pytest

from datafiles import shared_file
from judge.core.errors import InputError
from judge.core.records import PairItem, RowError
from judge.eval.label_files import describe_verdict_key, numbered_rows, refuse_duplicates


def _row(row):
    if "id" not in row:
        raise RowError("missing field 'id'", "id")
    return row["id"]


def test_jsonl_rows_are_numbered_by_line_and_a_bad_row_names_its_line(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"id": "a"}\n\n{"id": "b"}\n')
    assert numbered_rows(str(path), "jsonl", _row) == [(1, "a"), (3, "b")]
    path.write_text('{"id": "a"}\n{"name": "b"}\n')
    with pytest.raises(InputError) as e:
        numbered_rows(str(path), "jsonl", _row)
    assert (e.value.path, e.value.line) == (str(path), 2) and "'id'" in e.value.reason


def test_an_importer_s_rows_are_numbered_by_row():
    rows = numbered_rows(str(shared_file("pandalm", "testset-v1.json")), "pandalm", _row)
    assert [line for line, _ in rows] == list(range(1, 1000)) and isinstance(rows[0][1], PairItem)


def test_an_empty_file_is_refused(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(InputError, match="the file is empty"):
        numbered_rows(str(tmp_path / "empty.jsonl"), "jsonl", _row)


def test_a_duplicate_is_refused_at_its_second_line():
    keyed = [(("x", "ab", 0), 1), (("x", "ab", 1), 2), (("x", "ab", 1), 5)]
    with pytest.raises(InputError) as e:
        refuse_duplicates(keyed, "pred.jsonl", describe_verdict_key)
    assert str(e.value) == "pred.jsonl:5: duplicate verdict for id 'x', order ab, sample 1 (first on line 2)"


def _choices(parser, verb: str, flag: str) -> list[str]:
    """The choices of `judgeforge VERB ... FLAG` as the CLI parses them."""
    import argparse

    verbs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    sub = verbs.choices[verb]
    if verb == "data":
        sub = next(a for a in sub._actions if isinstance(a, argparse._SubParsersAction)).choices["convert"]
    return list(next(a for a in sub._actions if flag in a.option_strings).choices)


def test_eval_formats_are_every_data_convert_source():
    from judge.cli import build_parser

    parser = build_parser()
    sources = _choices(parser, "data", "--from")
    assert {"table", "preference", "evalbiasbench"} <= set(sources)
    for flag in ("--gold-format", "--pred-format"):
        assert _choices(parser, "eval", flag) == ["jsonl", *sources]


def test_a_csv_table_is_a_gold_file(tmp_path, capsys):
    from judge.cli import main

    (tmp_path / "gold.csv").write_text("id,question,answer1,answer2,winner\nq1,Q?,yes,no,1\nq2,Q2?,a,bb,2\n")
    (tmp_path / "pred.jsonl").write_text('{"id": "q1", "winner": "1"}\n{"id": "q2", "winner": "1"}\n')
    code = main(["eval", "--pred", str(tmp_path / "pred.jsonl"), "--gold", str(tmp_path / "gold.csv"),
                 "--gold-format", "table", "--out", str(tmp_path / "e"), "--bootstrap", "0", "--no-plots", "--no-html"])
    assert code == 0, capsys.readouterr().err
    import json

    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert metrics["n"] == 2 and metrics["accuracy"] == 0.5
