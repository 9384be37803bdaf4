"""A judge's prediction file for eval (judge.eval.predictions): verdict rows and bare labels, repeated
samples, and what cannot be measured against the gold refused with FILE:LINE."""

import json

import pytest

from judge.core.errors import InputError
from judge.core.jsonl import write_jsonl
from judge.core.records import PairItem, SingleItem, Verdict
from judge.eval.gold import load_gold
from judge.eval.predictions import check_matches, load_predictions


def _gold(tmp_path, winners=("1", "2", "1", "2")):
    items = [PairItem(id=str(k), question=f"q{k}", answer1="a", answer2="b", winner=w) for k, w in enumerate(winners)]
    write_jsonl(tmp_path / "gold.jsonl", items)
    return load_gold(str(tmp_path / "gold.jsonl"))


def _write_rows(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_bare_prediction_rows_count_as_parsed(tmp_path):
    _write_rows(tmp_path / "pred.jsonl", [{"id": "0", "winner": "2"}, {"id": "1", "score": 4}, {"id": "2"}])
    pred = load_predictions(str(tmp_path / "pred.jsonl"))
    (first,), (second,), (third,) = (pred.verdicts[i]["ab"] for i in ("0", "1", "2"))
    assert first.parse_ok and first.winner == "2"
    assert second.parse_ok and second.score == 4
    assert not third.parse_ok and third.error == "bare row without a label"
    assert pred.name == "pred"  # no judge named in the rows: the file's stem


def test_repeated_samples_are_not_duplicates(tmp_path):
    write_jsonl(tmp_path / "pred.jsonl", [Verdict(id="0", winner="1", raw="x", parse_ok=True, sample=s, judge="j")
                                          for s in (0, 1, 2)])
    pred = load_predictions(str(tmp_path / "pred.jsonl"))
    assert len(pred.verdicts["0"]["ab"]) == 3 and pred.name == "j"


def test_empty_predictions_are_refused(tmp_path):
    (tmp_path / "pred.jsonl").write_text("\n")
    with pytest.raises(InputError, match="the file is empty"):
        load_predictions(str(tmp_path / "pred.jsonl"))


def test_a_duplicate_verdict_is_refused_with_file_and_line(tmp_path):
    write_jsonl(tmp_path / "pred.jsonl", [Verdict(id="0", winner="1", raw="1", parse_ok=True),
                                          Verdict(id="1", winner="1", raw="1", parse_ok=True),
                                          Verdict(id="0", winner="2", raw="2", parse_ok=True)])
    with pytest.raises(InputError) as e:
        load_predictions(str(tmp_path / "pred.jsonl"))
    assert str(e.value) == f"{tmp_path / 'pred.jsonl'}:3: duplicate verdict for id '0', order ab (first on line 1)"


def test_no_id_in_common_is_refused_naming_both_files(tmp_path):
    gold = _gold(tmp_path)
    write_jsonl(tmp_path / "pred.jsonl", [Verdict(id="other-7", winner="1", raw="1", parse_ok=True)])
    with pytest.raises(InputError) as e:
        check_matches(load_predictions(str(tmp_path / "pred.jsonl")), gold)
    err = str(e.value)
    assert str(tmp_path / "pred.jsonl") in err and str(tmp_path / "gold.jsonl") in err
    assert "'other-7'" in err and "'0'" in err


def test_ids_in_common_are_those_measured(tmp_path):
    gold = _gold(tmp_path)
    write_jsonl(tmp_path / "pred.jsonl", [Verdict(id=i, winner="1", raw="1", parse_ok=True) for i in ("2", "0", "x")])
    assert check_matches(load_predictions(str(tmp_path / "pred.jsonl")), gold) == ["0", "2"]


def test_pointwise_predictions_against_pairwise_gold_are_refused(tmp_path):
    gold = _gold(tmp_path)
    write_jsonl(tmp_path / "pred.jsonl", [Verdict(id="0", scores=[4.0], raw="4", parse_ok=True)])
    with pytest.raises(InputError) as e:
        check_matches(load_predictions(str(tmp_path / "pred.jsonl")), gold)
    assert str(e.value).startswith(f"{tmp_path / 'pred.jsonl'}:1: a pointwise verdict")
    write_jsonl(tmp_path / "scores.jsonl", [SingleItem(id="0", question="q", answer="a", score=3)])
    write_jsonl(tmp_path / "pairs.jsonl", [Verdict(id="0", winner="1", raw="1", parse_ok=True)])
    with pytest.raises(InputError, match="a pairwise verdict .* holds pointwise labels"):
        check_matches(load_predictions(str(tmp_path / "pairs.jsonl")), load_gold(str(tmp_path / "scores.jsonl")))
