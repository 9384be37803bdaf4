"""Your own data: `data convert --from table` and `--from preference` (judge.data.tables, judge.data.preference).

Covers: judge/data/table_read.py, judge/data/preference.py."""

import csv
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from judge.cli import main
from judge.core.errors import ConfigError, InputError
from judge.core.jsonl import read_items
from judge.core.records import PairItem, SingleItem
from judge.data.preference import preference_items
from judge.data.tables import parse_assignments, table_items

# A spreadsheet of pairwise human labels with its own column names and label codes (0 = A, 1 = B, 2 = tie).
LABELS = [
    {"Prompt": "What is 2+2?", "Response A": "4", "Response B": "5", "Human pref": 0, "annotator": "ann-1",
     "passages": ["2+2=4"]},
    {"Prompt": "Name a colour.", "Response A": "007", "Response B": "None", "Human pref": 1, "annotator": "ann-2",
     "passages": ["red", "blue"]},
    {"Prompt": "Say hi, twice.\nOn two lines.", "Response A": "hi\nhi", "Response B": "hi, hi", "Human pref": 2,
     "annotator": "ann-1", "passages": ["greeting, \"quoted\""]},
]
FIELDS = {"question": "Prompt", "answer1": "Response A", "answer2": "Response B", "winner": "Human pref",
          "context": "passages"}
CODES = {"0": "1", "1": "2", "2": "tie"}


def save(tmp_path, name: str, rows: list[dict]) -> str:
    """The same rows as JSONL, a JSON array, CSV (lists as JSON text, as spreadsheets hold them) or Parquet."""
    path = tmp_path / name
    if name.endswith(".jsonl"):
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif name.endswith(".json"):
        path.write_text(json.dumps(rows, indent=1))
    elif name.endswith(".csv"):
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows({k: json.dumps(v) if isinstance(v, list) else v for k, v in r.items()} for r in rows)
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    return str(path)


def test_the_same_rows_in_jsonl_json_csv_and_parquet_give_identical_items(tmp_path):
    results = {}
    for suffix in ("jsonl", "json", "csv", "parquet"):
        (tmp_path / suffix).mkdir()
        results[suffix] = table_items(save(tmp_path / suffix, f"labels.{suffix}", LABELS), FIELDS, CODES)
    assert results["jsonl"] == results["json"] == results["csv"] == results["parquet"]
    first, second, third = results["csv"]
    assert isinstance(first, PairItem) and (first.id, first.winner, first.context) == ("labels-1", "1", ["2+2=4"])
    assert (second.answer1, second.answer2, second.winner) == ("007", "None", "2")  # text stays text
    assert (third.question, third.answer1, third.winner) == ("Say hi, twice.\nOn two lines.", "hi\nhi", "tie")
    assert first.meta == {"annotator": "ann-1"} and "Human pref" not in first.meta


def test_single_answers_with_scores_ids_and_categories(tmp_path):
    rows = [{"uid": 10, "q": "Explain DNS.", "model answer": "It maps names.", "grade": 4, "task": "tech", "model": "m1"},
            {"uid": 11, "q": "Explain TCP.", "model answer": "A protocol.", "grade": "2.5", "task": "tech", "model": "m2"}]
    fields = {"id": "uid", "question": "q", "answer": "model answer", "score": "grade", "category": "task"}
    a, b = table_items(save(tmp_path, "grades.jsonl", rows), fields)
    assert isinstance(a, SingleItem) and (a.id, a.score, a.category, a.model) == ("10", 4.0, "tech", "m1")
    assert (b.id, b.score, b.meta) == ("11", 2.5, {})  # `model` read from the column of its own name


def test_a_field_not_named_is_read_from_its_own_column(tmp_path):
    rows = [{"id": "x", "question": "q", "answer1": "a", "answer2": "b", "winner": "Tie", "source": "web"}]
    (item,) = table_items(save(tmp_path, "mine.csv", rows), {})
    assert (item.id, item.winner, item.meta) == ("x", "tie", {"source": "web"})
    rows = [{**rows[0], "meta": {"annotators": [1, 2]}}]  # judgeforge's own format: meta merged, not nested
    (item,) = table_items(save(tmp_path, "mine.jsonl", rows), {})
    assert item.meta == {"annotators": [1, 2], "source": "web"}


def test_an_unmapped_label_is_refused_naming_file_row_column_and_the_values_seen(tmp_path):
    path = save(tmp_path, "labels.csv", LABELS)
    with pytest.raises(InputError) as e:
        table_items(path, FIELDS, {"0": "1", "1": "2"})
    assert str(e.value) == (f"{path}:4: column 'Human pref': label '2' is not mapped; values seen: '0', '1', '2'; "
                            "mapped: 0, 1")
    with pytest.raises(InputError, match=r"labels.csv:2: column 'Human pref': label '0' is not mapped; values seen: "
                                         r"'0', '1', '2'; map every code with --label VALUE=WINNER"):
        table_items(path, FIELDS)  # 0/1/2 are not guessed


@pytest.mark.parametrize("fields,labels,message", [
    ({**FIELDS, "question": "prompt"}, CODES, r"no column 'prompt'; the columns are: 'Prompt', 'Response A', "),
    ({**FIELDS, "verdict": "x"}, CODES, r"--field verdict=: not a record field"),
    ({**FIELDS, "score": "Human pref"}, CODES, r"--field score= does not apply to pairs .*winner=COLUMN"),
    ({"question": "Prompt", "answer1": "Response A"}, None, r"say which columns hold the answers"),
    (FIELDS, {"0": "A"}, r"--label 0=A: the winner must be 1, 2 or tie"),
])
def test_bad_mappings_are_refused(tmp_path, fields, labels, message):
    with pytest.raises((InputError, ConfigError), match=message):
        table_items(save(tmp_path, "labels.jsonl", LABELS), fields, labels)


def test_cell_refusals_name_the_row_and_column(tmp_path):
    rows = [dict(LABELS[0]), {**LABELS[1], "Prompt": None}]
    with pytest.raises(InputError, match=r"labels.jsonl:2: column 'Prompt' \(question\) is empty"):
        table_items(save(tmp_path, "labels.jsonl", rows), FIELDS, CODES)
    rows = [dict(LABELS[0]), {k: v for k, v in LABELS[1].items() if k != "Response B"}]
    with pytest.raises(InputError, match=r"labels.jsonl:2: column 'Response B' is missing in this row"):
        table_items(save(tmp_path, "labels.jsonl", rows), FIELDS, CODES)
    rows = [{"q": "q", "a": "a", "g": "high"}]
    with pytest.raises(InputError, match=r"g.csv:2: column 'g': expected a number \(the gold score\), got \"high\""):
        table_items(save(tmp_path, "g.csv", rows), {"question": "q", "answer": "a", "score": "g"})
    rows = [{"id": 1, "q": "q", "a": "a"}, {"id": 1.0, "q": "q", "a": "b"}]
    with pytest.raises(InputError, match=r"dup.parquet:2: duplicate id '1' \(first on line 1\)"):
        table_items(save(tmp_path, "dup.parquet", rows), {"question": "q", "answer": "a"})


def test_csv_short_rows_blank_cells_and_extra_fields_are_refused_naming_file_row_and_column(tmp_path):
    path = tmp_path / "t.csv"
    fields = {"question": "question", "answer1": "answer1", "answer2": "answer2", "winner": "winner"}
    path.write_text("question,answer1,answer2,winner\nq1,a,b,1\nq2,a\n")  # answer2 and its gold label missing
    with pytest.raises(InputError, match=r"t.csv:3: this row has 2 of the header's 4 fields: no cell for column "
                                         r"'answer2'"):
        table_items(str(path), fields)
    path.write_text("question,answer1,answer2,winner\nq1,a,b,1\nq2,a,  ,2\n")
    with pytest.raises(InputError, match=r"t.csv:3: column 'answer2' \(answer2\) is empty"):
        table_items(str(path), fields)
    path.write_text('question,answer1,answer2,winner\n"q1\non two lines",a,b,1\nq2,a,b,2,3\n')
    with pytest.raises(InputError, match=r"t.csv:4: 5 fields where the header has 4"):  # line 4: row 3
        table_items(str(path), fields)
    path.write_text("question,answer1,answer2,winner\nq1,a,b,1\nq2,a,b,\n")  # an unlabelled row is fine
    assert [i.winner for i in table_items(str(path), fields)] == ["1", None]


@pytest.mark.parametrize("name,content,fields", [
    ("t.csv", "prompt,answer1,answer2\nq1,a,b\n", {"answer1": "answer1", "answer2": "answer2"}),
    ("t.jsonl", '{"answer": "a", "score": 3}\n', {}),
])
def test_a_missing_required_column_is_a_clear_exit_2(tmp_path, capsys, name, content, fields):
    path = tmp_path / name
    path.write_text(content)
    flags = [a for f, c in fields.items() for a in ("--field", f"{f}={c}")]
    assert main(["data", "convert", "--from", "table", str(path), "--out", str(tmp_path / "o.jsonl"), *flags]) == 2
    err = capsys.readouterr().err
    assert f"{name}: no column for the question: name it with --field question=COLUMN" in err
    assert "Traceback" not in err and not (tmp_path / "o.jsonl").exists()


def test_csv_bom_crlf_accepted_latin1_and_missing_files_refused(tmp_path):
    path = tmp_path / "win.csv"
    path.write_bytes(b"\xef\xbb\xbfq,a\r\nhow?,fine\r\n")
    (item,) = table_items(str(path), {"question": "q", "answer": "a"})
    assert (item.id, item.question, item.answer) == ("win-1", "how?", "fine")
    path.write_bytes(b"q,a\r\nhow?,fine\r\ncaf\xe9,x\r\n")
    with pytest.raises(InputError, match=r"win.csv:3: not UTF-8"):
        table_items(str(path), {"question": "q", "answer": "a"})
    path.write_bytes(b"q,a\r\nhow?,fine\r\nx,y,z\r\n")
    with pytest.raises(InputError, match=r"win.csv:3: 3 fields where the header has 2 \(an unquoted ','"):
        table_items(str(path), {"question": "q", "answer": "a"})
    for content in (b"", b"q,a\r\n"):
        path.write_bytes(content)
        with pytest.raises(InputError, match=r"win.csv: no rows"):
            table_items(str(path), {"question": "q", "answer": "a"})
    for name in ("nope.csv", "nope.parquet", "nope.jsonl"):
        with pytest.raises(InputError, match=rf"{name}: file not found"):
            table_items(str(tmp_path / name), {"question": "q", "answer": "a"})
    (tmp_path / "data.xlsx").write_bytes(b"PK")
    with pytest.raises(InputError, match=r"cannot tell the format from the suffix '.xlsx'"):
        table_items(str(tmp_path / "data.xlsx"), {})


def test_hf_source_reads_a_local_dataset_folder(tmp_path):
    folder = tmp_path / "my-dataset"
    folder.mkdir()
    save(folder, "train.parquet", LABELS)
    items = table_items(f"hf:{folder}", FIELDS, CODES)
    assert [i.winner for i in items] == ["1", "2", "tie"] and items[0].id == "my-dataset-1"
    assert items == table_items(f"hf:{folder}:train", FIELDS, CODES)
    with pytest.raises(InputError, match=r"no split 'test'; the splits are: train"):
        table_items(f"hf:{folder}:test", FIELDS, CODES)


def test_parse_assignments():
    assert parse_assignments(["question=My col = x", "answer=a"], "--field") == {"question": "My col = x", "answer": "a"}
    assert parse_assignments(["a=b=1", " 2 =tie"], "--label", split_last=True) == {"a=b": "1", "2": "tie"}
    with pytest.raises(ConfigError, match="expected FIELD=COLUMN"):
        parse_assignments(["question"], "--field")


# ---- preference -----------------------------------------------------------------------------------
def preference_rows(n: int) -> list[dict]:
    """Half text rows (prompt/chosen/rejected), half chat lists holding the whole conversation."""
    rows = []
    for i in range(n):
        if i % 2:
            rows.append({"prompt": f"question {i}", "chosen": f"good answer {i}", "rejected": f"bad answer {i}",
                         "source": "text"})
        else:
            history = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"question {i}"}]
            rows.append({"chosen": history + [{"role": "assistant", "content": f"good answer {i}"}],
                         "rejected": history + [{"role": "assistant", "content": f"bad answer {i}"}]})
    return rows


def test_preference_rows_mix_text_and_chat_lists_and_positions_are_balanced_and_seeded(tmp_path):
    path = save(tmp_path, "prefs.jsonl", preference_rows(200))
    items = preference_items(path, seed=0)
    assert len(items) == 200 and all(isinstance(i, PairItem) for i in items)
    chosen_first = [i.winner == "1" for i in items]
    assert 70 <= sum(chosen_first) <= 130  # within 35-65% chosen first
    for item in items:
        good = item.answer1 if item.winner == "1" else item.answer2
        assert good.startswith("good answer") and (item.answer2 if item.winner == "1" else item.answer1).startswith("bad")
    assert items[0].question == "System: Be brief.\n\nUser: question 0"
    assert (items[1].question, items[1].meta) == ("question 1", {"source": "text"})
    assert preference_items(path, seed=0) == items
    other = preference_items(path, seed=1)
    assert [i.id for i in other] == [i.id for i in items]  # ids do not depend on the seed
    assert [i.winner for i in other] != [i.winner for i in items]


def test_preference_explicit_prompt_lists_renamed_columns_and_refusals(tmp_path):
    rows = [{"q": [{"role": "user", "content": "Hi?"}], "good": [{"role": "assistant", "content": "Hello."}],
             "bad": [{"role": "assistant", "content": [{"type": "text", "text": "Go"}, {"type": "text", "text": "away"}]}]}]
    fields = {"question": "q", "chosen": "good", "rejected": "bad"}
    (item,) = preference_items(save(tmp_path, "p.parquet", rows), fields)
    assert item.question == "Hi?" and {item.answer1, item.answer2} == {"Hello.", "Go\naway"}
    bad = [{"prompt": "q", "chosen": [{"role": "user", "content": "x"}], "rejected": "r"}]
    with pytest.raises(InputError, match=r"p.jsonl:1: column 'chosen': the last message is the user's"):
        preference_items(save(tmp_path, "p.jsonl", bad))
    with pytest.raises(InputError, match=r"p.jsonl:1: no question: column 'prompt' is missing"):
        preference_items(save(tmp_path, "p.jsonl", [{"chosen": "a", "rejected": "b"}]))
    with pytest.raises(InputError, match=r"no column 'rejected'; the columns are: 'prompt', 'chosen'"):
        preference_items(save(tmp_path, "p.jsonl", [{"prompt": "q", "chosen": "a"}]))


def test_cli_convert_table_and_preference(tmp_path, capsys):
    src = save(tmp_path, "labels.csv", LABELS)
    out = tmp_path / "items.jsonl"
    argv = ["data", "convert", "--from", "table", src, "--out", str(out), "--field", "question=Prompt",
            "--field", "answer1=Response A", "--field", "answer2=Response B", "--field", "winner=Human pref"]
    assert main([*argv, "--label", "0=1", "--label", "1=2", "--label", "2=tie"]) == 0
    assert "wrote 3 rows (3 with gold labels)" in capsys.readouterr().out
    assert [i.winner for i in read_items(out)] == ["1", "2", "tie"]
    out.unlink()
    assert main([*argv, "--label", "0=1"]) == 2
    assert f"{src}:3: column 'Human pref': label '1' is not mapped" in capsys.readouterr().err
    assert not out.exists()
    prefs = save(tmp_path, "prefs.jsonl", preference_rows(4))
    assert main(["data", "convert", "--from", "preference", prefs, "--out", str(out), "--seed", "3"]) == 0
    assert len(read_items(out)) == 4
    assert main(["data", "convert", "--from", "judgelm", prefs, "--out", str(out), "--field", "question=q"]) == 2
    assert "--field and --label name the columns of --from table or preference" in capsys.readouterr().err
