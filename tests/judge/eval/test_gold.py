"""Gold labels for eval (judge.eval.gold): items, bare labels, a teacher's verdicts reduced per item, and
the gold files refused (a duplicate id, two kinds of label, items that do not cover the labels)."""

import json

import pytest

from judge.core.errors import InputError
from judge.core.jsonl import write_jsonl
from judge.core.records import PairItem, Verdict
from judge.eval.evaluate import evaluate
from judge.eval.gold import attach_items, load_gold


def _items(n=6, winners=None):
    return [PairItem(id=str(k), question=f"q{k}", answer1="a", answer2="bb", winner=(winners or "1" * n)[k])
            for k in range(n)]


def _write_rows(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_teacher_verdicts_as_gold(tmp_path):
    items = _items(6)
    teacher = [Verdict(id=i.id, order=o, winner="1", raw="", parse_ok=True) for i in items for o in ("ab", "ba")]
    teacher[1].winner = "2"  # item 0: the orders conflict -> tie under the swap protocol
    write_jsonl(tmp_path / "teacher.jsonl", teacher)
    gold = load_gold(str(tmp_path / "teacher.jsonl"))
    assert gold.mode == "pairwise" and gold.labels["0"].winner == "tie"
    assert [gold.labels[i.id].winner for i in items[1:]] == ["1"] * 5
    write_jsonl(tmp_path / "pred.jsonl", [Verdict(id=i.id, winner="1", raw="", parse_ok=True) for i in items])
    r = evaluate([str(tmp_path / "pred.jsonl")], str(tmp_path / "teacher.jsonl"), None, n_resamples=0)
    assert r["accuracy"] == pytest.approx(5 / 6)


def test_unparsed_teacher_verdicts_used_as_gold_are_counted_and_shown(tmp_path):
    items = _items(6)
    write_jsonl(tmp_path / "gold.jsonl", items)
    teacher = [Verdict(id=i.id, order=o, winner="1", raw="1", parse_ok=True) for i in items for o in ("ab", "ba")]
    teacher[0] = Verdict(id="0", order="ab", raw="???", parse_ok=False)  # item 0: neither order parsed
    teacher[1] = Verdict(id="0", order="ba", raw="???", parse_ok=False)
    teacher[3] = Verdict(id="1", order="ba", raw="???", parse_ok=False)  # item 1: one order parsed
    write_jsonl(tmp_path / "teacher.jsonl", teacher)
    gold = load_gold(str(tmp_path / "teacher.jsonl"))
    assert "0" not in gold.labels and gold.unlabelled == {"0"} and gold.labels["1"].winner == "1"
    write_jsonl(tmp_path / "pred.jsonl", [Verdict(id=i.id, winner="1", raw="1", parse_ok=True) for i in items])
    r = evaluate([str(tmp_path / "pred.jsonl")], str(tmp_path / "teacher.jsonl"), str(tmp_path / "e"), n_resamples=0)
    assert r["n"] == 5
    assert r["gold_parsing"]["verdicts"] == 12 and r["gold_parsing"]["unparsed"] == 3
    assert r["gold_parsing"]["items_without_label"] == ["0"] and r["gold_parsing"]["items_one_order_parsed"] == 1
    assert r["missing"]["in_pred_gold_unparsed"] == 1 and r["missing"]["in_pred_not_gold"] == 0
    text = (tmp_path / "e" / "report.md").read_text()
    assert "Gold verdicts: 3 of 12 did not parse" in text and "Gold unparsed" in text


def test_a_duplicate_gold_id_is_refused_with_file_and_line(tmp_path):
    _write_rows(tmp_path / "gold.jsonl", [{"id": "a", "winner": "1"}, {"id": "b", "winner": "2"}, {"id": "a", "winner": "2"}])
    with pytest.raises(InputError) as e:
        load_gold(str(tmp_path / "gold.jsonl"))
    assert str(e.value) == f"{tmp_path / 'gold.jsonl'}:3: duplicate id 'a' (first on line 1)"


def test_a_gold_file_mixing_pairwise_and_pointwise_labels_is_refused(tmp_path):
    _write_rows(tmp_path / "gold.jsonl", [{"id": "a", "winner": "1"}, {"id": "b", "score": 3}])
    with pytest.raises(InputError, match="this pointwise label") as e:
        load_gold(str(tmp_path / "gold.jsonl"))
    assert (e.value.path, e.value.line) == (str(tmp_path / "gold.jsonl"), 2)


def test_items_give_bare_labels_their_lengths_and_must_cover_the_gold(tmp_path):
    write_jsonl(tmp_path / "items.jsonl", _items(2))
    _write_rows(tmp_path / "gold.jsonl", [{"id": "0", "winner": "1"}, {"id": "1", "winner": "2"}])
    gold = load_gold(str(tmp_path / "gold.jsonl"))
    assert gold.labels["0"].lengths is None
    attach_items(gold, str(tmp_path / "items.jsonl"))
    assert gold.labels["0"].lengths == (1, 2) and gold.labels["1"].question == "q1"
    _write_rows(tmp_path / "gold.jsonl", [{"id": "0", "winner": "1"}, {"id": "9", "winner": "2"}])
    with pytest.raises(InputError, match="no item for gold id '9'"):
        attach_items(load_gold(str(tmp_path / "gold.jsonl")), str(tmp_path / "items.jsonl"))
