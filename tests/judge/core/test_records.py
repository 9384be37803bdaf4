import json

import pytest

from judge.core.errors import InputError
from judge.core.jsonl import AppendLog, atomic_open, read_items, read_jsonl, write_jsonl
from judge.core.records import PairItem, RowError, SingleItem, Verdict, from_row, item_from_row, to_row


def test_item_from_row_picks_the_record_by_fields():
    assert isinstance(item_from_row({"id": 1, "question": "q", "answer1": "a", "answer2": "b"}), PairItem)
    assert isinstance(item_from_row({"id": "x", "question": "q", "answer": "a"}), SingleItem)


def test_numeric_ids_become_strings_and_unknown_keys_go_to_meta():
    item = item_from_row({"id": 7, "question": "q", "answer1": "a", "answer2": "b", "source": "web", "winner": 0})
    assert item.id == "7" and item.meta == {"source": "web"} and item.winner == "tie"
    assert to_row(item) == {"id": "7", "question": "q", "answer1": "a", "answer2": "b", "winner": "tie", "meta": {"source": "web"}}


@pytest.mark.parametrize("row,field", [
    ({"id": "1", "question": "q", "answer1": "a"}, "answer2"),
    ({"id": "1", "question": 3, "answer1": "a", "answer2": "b"}, "question"),
    ({"id": "1", "question": "q", "answer1": "a", "answer2": "b", "context": "not a list"}, "context"),
    ({"id": "1", "question": "q", "answer1": "a", "answer2": "b", "winner": "A"}, "winner"),
    ({"id": "1", "question": "q", "answer": "a", "score": "high"}, "score"),
])
def test_bad_rows_name_the_field(row, field):
    with pytest.raises(RowError) as e:
        item_from_row(row)
    assert field in str(e.value)


def test_verdict_rejects_unknown_fields_and_orders():
    with pytest.raises(RowError, match="unknown field"):
        from_row(Verdict, {"id": "1", "verdict": "1"}, extra_to_meta=False)
    with pytest.raises(RowError, match="order"):
        from_row(Verdict, {"id": "1", "order": "ac"})


def test_swapped_pair():
    item = PairItem(id="1", question="q", answer1="a", answer2="b", model1="m1", model2="m2", winner="1")
    s = item.swapped()
    assert (s.answer1, s.answer2, s.model1, s.model2, s.winner) == ("b", "a", "m2", "m1", "2")


def test_read_jsonl_names_file_and_line(tmp_path):
    path = tmp_path / "items.jsonl"
    lines = [json.dumps({"id": i, "question": "q", "answer1": "a", "answer2": "b"}) for i in range(6)]
    lines.append('{"id": 6, "question": "q", "answer1": "a", "answer2": ')  # line 7: broken JSON
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as e:
        read_items(path)
    assert e.value.line == 7 and str(path) in str(e.value) and "malformed JSON" in str(e.value)


def test_missing_field_names_line(tmp_path):
    path = tmp_path / "items.jsonl"
    path.write_text('{"id": 1, "question": "q", "answer1": "a", "answer2": "b"}\n\n{"id": 2, "question": "q", "answer1": "a"}\n')
    with pytest.raises(InputError, match=r"items.jsonl:3: missing field 'answer2'"):
        read_items(path)


def test_duplicate_ids_are_rejected(tmp_path):
    path = tmp_path / "items.jsonl"
    path.write_text('{"id": 1, "question": "q", "answer": "a"}\n{"id": 1, "question": "q", "answer": "b"}\n')
    with pytest.raises(InputError, match="duplicate id '1'"):
        read_items(path)


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    out = tmp_path / "out.jsonl"

    def rows():
        yield {"id": "1"}
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_jsonl(out, rows())
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_keeps_old_file_until_success(tmp_path):
    out = tmp_path / "out.txt"
    out.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(out) as handle:
            handle.write("new")
            raise RuntimeError
    assert out.read_text() == "old"


def test_append_log_survives_a_torn_last_line(tmp_path):
    log = AppendLog(tmp_path / "work.jsonl")
    log.append([{"id": "1"}, {"id": "2"}])
    log.close()
    with open(tmp_path / "work.jsonl", "a") as handle:
        handle.write('{"id": "3", "ra')  # killed mid-write
    assert [r["id"] for r in log.rows()] == ["1", "2"]
    log.append([{"id": "3"}])
    log.close()
    assert [r["id"] for r in log.rows()] == ["1", "2", "3"]


def test_read_jsonl_roundtrip(tmp_path):
    items = [PairItem(id=str(i), question="q", answer1="a", answer2="b", context=["c"]) for i in range(3)]
    write_jsonl(tmp_path / "x.jsonl", items)
    assert read_jsonl(tmp_path / "x.jsonl", item_from_row) == items
