"""judge.core.jsonl: strict reading (file:line for every bad byte, token and id), BOM and CRLF accepted,
and the append log's torn-tail repair."""

import json

import pytest

from judge.core.errors import InputError
from judge.core.jsonl import AppendLog, check_unique_ids, iter_json_rows, iter_table_rows, read_items, read_json

PAIR = {"id": "1", "question": "q", "answer1": "a", "answer2": "b"}


def test_bom_and_crlf_are_accepted(tmp_path):
    path = tmp_path / "items.jsonl"
    rows = [PAIR, {**PAIR, "id": "2", "question": "é"}]
    path.write_bytes(b"\xef\xbb\xbf" + b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\r\n" for r in rows))
    assert [(i.id, i.question) for i in read_items(path)] == [("1", "q"), ("2", "é")]


def test_bom_is_accepted_in_a_json_array(tmp_path):
    path = tmp_path / "rows.json"
    path.write_bytes(b"\xef\xbb\xbf[\r\n" + json.dumps(PAIR).encode() + b"\r\n]\r\n")
    assert read_json(path) == [PAIR]
    assert list(iter_table_rows(path)) == [(1, PAIR)]


def test_not_utf8_names_the_line_and_byte(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(json.dumps(PAIR).encode() + b"\n" + '{"id": "2", "question": "caf\xe9"}\n'.encode("latin-1"))
    with pytest.raises(InputError, match=r"latin1.jsonl:2: not UTF-8 \(byte 0xe9 at byte 29 of the line\)"):
        list(iter_json_rows(path))


def test_not_utf8_in_a_json_array_names_the_line(tmp_path):
    path = tmp_path / "latin1.json"
    path.write_bytes(b'[\n{"q": "ok"},\n{"q": "caf\xe9"}\n]\n')
    with pytest.raises(InputError, match=r"latin1.json:3: not UTF-8"):
        read_json(path)


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_nan_and_infinity_are_refused(tmp_path, token):
    path = tmp_path / "scores.jsonl"
    path.write_text(json.dumps(PAIR) + "\n" + '{"id": "2", "question": "q", "answer": "a", "score": ' + token + "}\n")
    with pytest.raises(InputError, match=r"scores.jsonl:2: .*(not JSON|too large)"):
        list(iter_json_rows(path))


def test_nan_in_a_json_array_names_its_line_not_one_inside_a_string(tmp_path):
    path = tmp_path / "rows.json"
    path.write_text('[\n{"q": "NaN and Infinity are words here", "x": 1e5},\n{"q": "x", "score": NaN}\n]\n')
    with pytest.raises(InputError, match=r"rows.json:3: NaN is not JSON"):
        read_json(path)


def test_duplicate_ids_name_both_lines(tmp_path):
    path = tmp_path / "items.jsonl"
    path.write_text(json.dumps(PAIR) + "\n\n" + json.dumps({**PAIR, "id": "2"}) + "\n" + json.dumps(PAIR) + "\n")
    with pytest.raises(InputError, match=r"items.jsonl:4: duplicate id '1' \(first on line 1\)"):
        read_items(path)


def test_check_unique_ids_takes_line_numbers():
    check_unique_ids([(1, "a"), (3, "b")], "gold.jsonl")
    with pytest.raises(InputError, match=r"gold.jsonl:7: duplicate id 'a' \(first on line 1\)"):
        check_unique_ids([(1, "a"), (3, "b"), (7, "a")], "gold.jsonl")


@pytest.mark.parametrize("content", [b"", b"\n\r\n  \n", b"\xef\xbb\xbf"])
def test_an_empty_items_file_is_refused(tmp_path, content):
    path = tmp_path / "items.jsonl"
    path.write_bytes(content)
    with pytest.raises(InputError, match=r"items.jsonl: no items"):
        read_items(path)


def test_missing_file_and_directory_are_input_errors(tmp_path):
    with pytest.raises(InputError, match=r"nope.jsonl: file not found"):
        read_items(tmp_path / "nope.jsonl")
    with pytest.raises(InputError, match="is a directory"):
        list(iter_table_rows(tmp_path))


# ---- the append log -------------------------------------------------------------------------------
def _log_with(tmp_path, tail: bytes) -> AppendLog:
    log = AppendLog(tmp_path / "work.jsonl")
    log.append([{"id": "1", "raw": "é"}, {"id": "2"}])
    log.close()
    with open(log.path, "ab") as handle:
        handle.write(tail)
    return log


@pytest.mark.parametrize("tail", [
    b'{"id": "3", "ra',  # killed mid-row
    '{"id": "3", "raw": "日'.encode()[:-1],  # killed inside a multibyte character
    b"\xe6",  # a lone lead byte
])
def test_append_log_repairs_a_torn_last_line(tmp_path, tail):
    log = _log_with(tmp_path, tail)
    assert [r["id"] for r in log.rows()] == ["1", "2"]
    log.append([{"id": "3", "raw": "日本"}])
    log.close()
    assert log.path.read_bytes().count(b"\n") == 3  # the torn bytes were cut, not kept before row 3
    assert [(r["id"], r.get("raw")) for r in log.rows()] == [("1", "é"), ("2", None), ("3", "日本")]


@pytest.mark.parametrize("damage", [b'{"id": "x", "ra\n', b"\xff\xfe\n", b"[1, 2]\n"])
def test_append_log_refuses_a_damaged_line_in_the_middle(tmp_path, damage):
    log = _log_with(tmp_path, damage + b'{"id": "4"}\n')
    with pytest.raises(InputError, match=r"work.jsonl:3: damaged log line"):
        log.rows()
