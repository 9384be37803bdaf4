"""`data export --to preference` (judge.distill.export): verdicts, filter's training rows and gold-labelled
pairs -> prompt/chosen/rejected rows for trl; ties, unparsed and inconsistent items left out and
counted; export -> import gives back the same pairs."""

import json

import pytest

from judge.cli import main
from judge.core.errors import InputError
from judge.core.jsonl import write_jsonl
from judge.core.records import PairItem, SingleItem
from judge.data.preference import preference_items
from judge.distill.export import export_preference, preference_rows
from judge.distill.filter import FilterConfig, filter_verdicts
from judge.templates import get_template
from teacher_replies import FLIPPED, REPLIES as TEACHER_REPLIES

JUDGELM = get_template("judgelm")
REPLIES = {"fair": TEACHER_REPLIES["fair"], "flipped": FLIPPED} | TEACHER_REPLIES  # item 1 is the flipped one


def distill_run(tmp_path, n=10):
    """A distill folder: items.jsonl and both orders' verdicts of every item."""
    kinds = list(REPLIES)
    items = [PairItem(id=f"p{i}", question=f"Question {i}?", answer1=f"first {i}", answer2=f"second {i}",
                      category=kinds[i % len(kinds)]) for i in range(n)]
    verdicts = [JUDGELM.verdict(p.id, order, REPLIES[p.category][order], judge="teacher")
                for p in items for order in ("ab", "ba")]
    folder = tmp_path / "distill"
    folder.mkdir()
    write_jsonl(folder / "items.jsonl", items)
    write_jsonl(folder / "verdicts.jsonl", verdicts)
    return folder, items


def expected(items):
    """(question, chosen, rejected) of the items a consistent judge decided."""
    out = []
    for item in items:
        if item.category == "fair":
            out.append((item.question, item.answer1, item.answer2))
        elif item.category == "flipped":
            out.append((item.question, item.answer2, item.answer1))
    return out


def test_verdicts_export_keeps_clear_preferences_and_counts_the_rest(tmp_path):
    folder, items = distill_run(tmp_path)
    rows, left_out = preference_rows(str(folder / "verdicts.jsonl"))  # items.jsonl found beside the verdicts
    assert dict(left_out) == {"ties": 2, "inconsistent": 2, "unparsed": 2}
    assert [(r["prompt"][0]["content"], r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in rows] \
        == expected(items)
    assert rows[0] == {"prompt": [{"role": "user", "content": "Question 0?"}],
                       "chosen": [{"role": "assistant", "content": "first 0"}],
                       "rejected": [{"role": "assistant", "content": "second 0"}]}
    plain, _ = preference_rows(str(folder / "verdicts.jsonl"), fmt="standard")
    assert plain[1] == {"prompt": "Question 1?", "chosen": "second 1", "rejected": "first 1"}


def test_filter_training_rows_export_through_the_manifest_items(tmp_path):
    folder, items = distill_run(tmp_path)
    filter_verdicts(FilterConfig(verdicts=str(folder / "verdicts.jsonl"), out=str(tmp_path / "data"), val_fraction=0))
    out = tmp_path / "prefs.jsonl"
    result = export_preference(str(tmp_path / "data" / "train.jsonl"), str(out), fmt="standard")
    assert result["left_out"] == {"ties": 2}  # filter already dropped the inconsistent and unparsed
    assert [(r["prompt"], r["chosen"], r["rejected"]) for r in map(json.loads, out.read_text().splitlines())] \
        == expected(items)
    with pytest.raises(InputError, match=r"dropped.jsonl:1: a dropped row"):
        preference_rows(str(tmp_path / "data" / "dropped.jsonl"))


def test_export_then_import_gives_the_same_pairs_up_to_position(tmp_path):
    """Gold-labelled pairs -> preference rows -> PairItems: the same question, answers and winner,
    whichever position the import drew for the chosen answer."""
    items = [PairItem(id=f"x{i}", question=f"Q{i}\nwith two lines", answer1=f"A{i}", answer2=f"B{i}",
                      winner=["1", "2", "tie"][i % 3]) for i in range(30)]
    write_jsonl(tmp_path / "gold.jsonl", items)
    for fmt in ("conversational", "standard"):
        out = tmp_path / f"{fmt}.jsonl"
        result = export_preference(str(tmp_path / "gold.jsonl"), str(out), fmt=fmt)
        assert result == {"rows": 20, "left_out": {"ties": 10}, "out": str(out)}
        back = preference_items(str(out), seed=7)

        def pair(item):
            chosen, rejected = (item.answer1, item.answer2) if item.winner == "1" else (item.answer2, item.answer1)
            return item.question, chosen, rejected

        assert [pair(i) for i in back] == [pair(i) for i in items if i.winner != "tie"]


def test_export_refusals(tmp_path, capsys):
    folder, _ = distill_run(tmp_path)
    (tmp_path / "alone").mkdir()
    (tmp_path / "alone" / "v.jsonl").write_bytes((folder / "verdicts.jsonl").read_bytes())
    with pytest.raises(InputError, match=r"v.jsonl: verdicts and training rows hold only ids; .* pass --items"):
        preference_rows(str(tmp_path / "alone" / "v.jsonl"))
    write_jsonl(tmp_path / "single.jsonl", [SingleItem(id="s", question="q", answer="a", score=3.0)])
    with pytest.raises(InputError, match=r"item 's' is a single answer"):
        preference_rows(str(tmp_path / "single.jsonl"))
    write_jsonl(tmp_path / "ties.jsonl", [PairItem(id="t", question="q", answer1="a", answer2="b", winner="tie")])
    assert main(["data", "export", "--to", "preference", "--input", str(tmp_path / "ties.jsonl"),
                 "--out", str(tmp_path / "o.jsonl")]) == 2
    assert "no preference rows: every item was left out (ties 1)" in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists()


def test_cli_export_prints_what_was_left_out(tmp_path, capsys):
    folder, _ = distill_run(tmp_path)
    out = tmp_path / "prefs.jsonl"
    assert main(["data", "export", "--to", "preference", "--input", str(folder / "verdicts.jsonl"), "--out", str(out)]) == 0
    assert f"wrote 4 preference rows to {out} (left out: inconsistent 2, ties 2, unparsed 2)" in capsys.readouterr().out


def test_a_run_that_judged_both_orders_exports_only_items_judged_in_both(tmp_path, capsys):
    """distill stopped by --max-cost before p0's second order: p0 is not exported on one order's say
    (filter would drop it too), and it is counted as "one order only"."""
    folder, items = distill_run(tmp_path)
    verdicts = [json.loads(line) for line in (folder / "verdicts.jsonl").read_text().splitlines()]
    write_jsonl(folder / "verdicts.jsonl", [v for v in verdicts if (v["id"], v["order"]) != ("p0", "ba")])
    out = tmp_path / "prefs.jsonl"
    assert main(["data", "export", "--to", "preference", "--input", str(folder / "verdicts.jsonl"), "--out", str(out)]) == 0
    assert (f"wrote 3 preference rows to {out} (left out: inconsistent 2, one order only 1, ties 2, unparsed 2)"
            in capsys.readouterr().out)
    assert "Question 0?" not in out.read_text()
    # a run judged in one order on purpose (no ba verdict at all): each item's one order is its judgement
    write_jsonl(folder / "verdicts.jsonl", [v for v in verdicts if v["order"] == "ab"])
    rows, left_out = preference_rows(str(folder / "verdicts.jsonl"))
    assert "one order only" not in left_out and rows[0]["chosen"][0]["content"] == "first 0"
    # ... unless the run's manifest says it judged both (distill --swap stopped before any ba)
    (folder / "manifest.json").write_text(json.dumps({"stage": "distill", "config": {"swap": True}}))
    rows, left_out = preference_rows(str(folder / "verdicts.jsonl"))
    assert rows == [] and left_out == {"one order only": 10}
