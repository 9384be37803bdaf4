"""`judgeforge eval` gives a right number or refuses: metrics that cannot mislead (unparsed verdicts
on both sides, one class set per gold file, the same items for every rate) and the files it refuses
(exit 2 with FILE:LINE)."""

import json

import pytest
from sklearn.metrics import f1_score

from judge.cli import main
from judge.evaluate import evaluate
from judge.jsonl import write_jsonl
from judge.records import PairItem, SingleItem, Verdict


def _gold(tmp_path, winners=("1", "2", "1", "2")):
    items = [PairItem(id=str(k), question=f"q{k}", answer1="a", answer2="b", winner=w) for k, w in enumerate(winners)]
    write_jsonl(tmp_path / "gold.jsonl", items)
    return items


def _write_rows(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _eval(tmp_path, *preds, gold="gold.jsonl", **kw):
    return evaluate([str(tmp_path / p) for p in preds], str(tmp_path / gold), None, n_resamples=0, **kw)


# ---- metrics that cannot mislead ---------------------------------------------------------------
def test_a_judge_that_parses_nothing_is_not_consistent(tmp_path):
    items = _gold(tmp_path)
    write_jsonl(tmp_path / "pred.jsonl", [Verdict(id=i.id, order=o, raw="???", parse_ok=False)
                                          for i in items for o in ("ab", "ba")])
    r = _eval(tmp_path, "pred.jsonl")
    assert r["consistency"] == 0.0
    assert r["position_bias"]["n_both_unparsed"] == 4 and r["position_bias"]["both_unparsed_rate"] == 1.0
    assert r["parse_failure_rate"] == 1.0


def test_parse_failure_rate_counts_the_items_of_accuracy(tmp_path):
    items = _gold(tmp_path)
    verdicts = [Verdict(id=i.id, order="ab", winner=i.winner, raw="x", parse_ok=True) for i in items]
    verdicts[0] = Verdict(id="0", order="ab", raw="???", parse_ok=False)
    verdicts.append(Verdict(id="not-in-gold", order="ab", raw="???", parse_ok=False))  # not an evaluated item
    write_jsonl(tmp_path / "pred.jsonl", verdicts)
    r = _eval(tmp_path, "pred.jsonl")
    assert r["n"] == 4 and r["n_unparsed"] == 1
    assert r["parse_failure_rate"] == 0.25
    assert r["parsing"]["verdicts"] == 4


def test_judges_side_by_side_average_over_the_gold_files_classes(tmp_path):
    items = _gold(tmp_path, winners=("1", "2", "1", "2", "1", "2"))  # no ties in gold
    write_jsonl(tmp_path / "a.jsonl", [Verdict(id=i.id, winner="tie" if k < 2 else i.winner, raw="x", parse_ok=True,
                                               judge="a") for k, i in enumerate(items)])
    write_jsonl(tmp_path / "b.jsonl", [Verdict(id=i.id, winner=i.winner if k else None, raw="x", parse_ok=bool(k),
                                               judge="b") for k, i in enumerate(items)])
    r = _eval(tmp_path, "a.jsonl", "b.jsonl", unparsed="wrong")
    assert r["macro_over"] == ["1", "2"]
    assert r["judges"]["a"]["macro_over"] == r["judges"]["b"]["macro_over"] == ["1", "2"]
    gold = [i.winner for i in items]
    pred_a = ["tie", "tie", "1", "2", "1", "2"]
    assert r["judges"]["a"]["f1"] == pytest.approx(f1_score(gold, pred_a, labels=["1", "2"], average="macro"), abs=1e-6)


def test_unparsed_policy_applies_to_pointwise(tmp_path):
    gold = [SingleItem(id=str(k), question="q", answer="a", score=s) for k, s in enumerate([1, 2, 3, 4, 5, 5])]
    write_jsonl(tmp_path / "gold.jsonl", gold)
    pred = [Verdict(id=g.id, scores=[g.score], raw="x", parse_ok=True) for g in gold[:4]]
    pred += [Verdict(id=g.id, raw="???", parse_ok=False) for g in gold[4:]]
    write_jsonl(tmp_path / "pred.jsonl", pred)
    drop, tie, wrong = (_eval(tmp_path, "pred.jsonl", unparsed=p) for p in ("drop", "tie", "wrong"))
    assert drop["n"] == 4 and tie["n"] == wrong["n"] == 6
    assert drop["n_unparsed"] == tie["n_unparsed"] == wrong["n_unparsed"] == 2
    assert drop["parse_failure_rate"] == tie["parse_failure_rate"] == pytest.approx(2 / 6, abs=1e-6)
    assert drop["mean_pred"] == pytest.approx(2.5)
    assert tie["mean_pred"] == pytest.approx((1 + 2 + 3 + 4 + 3 + 3) / 6)  # the middle of 1..5
    assert wrong["mean_pred"] == pytest.approx((1 + 2 + 3 + 4 + 1 + 1) / 6)  # the far end from 5
    assert tie["unparsed_policy"] == "tie" and drop["pearson"] == pytest.approx(1.0)


def test_unparsed_teacher_verdicts_used_as_gold_are_counted_and_shown(tmp_path):
    items = _gold(tmp_path, winners=("1",) * 6)
    teacher = [Verdict(id=i.id, order=o, winner="1", raw="1", parse_ok=True) for i in items for o in ("ab", "ba")]
    teacher[0] = Verdict(id="0", order="ab", raw="???", parse_ok=False)  # item 0: neither order parsed
    teacher[1] = Verdict(id="0", order="ba", raw="???", parse_ok=False)
    teacher[3] = Verdict(id="1", order="ba", raw="???", parse_ok=False)  # item 1: one order parsed
    write_jsonl(tmp_path / "teacher.jsonl", teacher)
    write_jsonl(tmp_path / "pred.jsonl", [Verdict(id=i.id, winner="1", raw="1", parse_ok=True) for i in items])
    r = evaluate([str(tmp_path / "pred.jsonl")], str(tmp_path / "teacher.jsonl"), str(tmp_path / "e"), n_resamples=0)
    assert r["n"] == 5
    assert r["gold_parsing"]["verdicts"] == 12 and r["gold_parsing"]["unparsed"] == 3
    assert r["gold_parsing"]["items_without_label"] == ["0"] and r["gold_parsing"]["items_one_order_parsed"] == 1
    assert r["missing"]["in_pred_gold_unparsed"] == 1 and r["missing"]["in_pred_not_gold"] == 0
    text = (tmp_path / "e" / "report.md").read_text()
    assert "Gold verdicts: 3 of 12 did not parse" in text and "Gold unparsed" in text


def test_bare_prediction_rows_count_as_parsed(tmp_path):
    items = _gold(tmp_path)
    _write_rows(tmp_path / "pred.jsonl", [{"id": i.id, "winner": i.winner} for i in items])
    r = _eval(tmp_path, "pred.jsonl")
    assert r["accuracy"] == 1.0 and r["parse_failure_rate"] == 0.0
    gold = [SingleItem(id=str(k), question="q", answer="a", score=s) for k, s in enumerate([1, 3, 5])]
    write_jsonl(tmp_path / "scores.jsonl", gold)
    _write_rows(tmp_path / "bare_scores.jsonl", [{"id": g.id, "score": g.score} for g in gold])
    r = _eval(tmp_path, "bare_scores.jsonl", gold="scores.jsonl")
    assert r["pearson"] == pytest.approx(1.0) and r["parse_failure_rate"] == 0.0


def test_repeated_samples_are_not_duplicates(tmp_path):
    items = _gold(tmp_path)
    write_jsonl(tmp_path / "pred.jsonl", [Verdict(id=i.id, winner=i.winner, raw="x", parse_ok=True, sample=s)
                                          for i in items for s in (0, 1, 2)])
    assert _eval(tmp_path, "pred.jsonl")["accuracy"] == 1.0


# ---- refusals: exit 2 with FILE:LINE ------------------------------------------------------------
def _cli(tmp_path, capsys, pred="pred.jsonl", gold="gold.jsonl", *extra):
    code = main(["eval", "--pred", str(tmp_path / pred), "--gold", str(tmp_path / gold), "--out", str(tmp_path / "e"),
                 "--bootstrap", "0", "--no-plots", *extra])
    return code, capsys.readouterr().err


def test_empty_predictions_are_refused(tmp_path, capsys):
    _gold(tmp_path)
    (tmp_path / "pred.jsonl").write_text("\n")
    code, err = _cli(tmp_path, capsys)
    assert code == 2 and f"{tmp_path / 'pred.jsonl'}: the file is empty" in err
    assert not (tmp_path / "e").exists()


def test_duplicate_ids_are_refused_with_file_and_line(tmp_path, capsys):
    _gold(tmp_path)
    write_jsonl(tmp_path / "pred.jsonl", [Verdict(id="0", winner="1", raw="1", parse_ok=True),
                                          Verdict(id="1", winner="1", raw="1", parse_ok=True),
                                          Verdict(id="0", winner="2", raw="2", parse_ok=True)])
    code, err = _cli(tmp_path, capsys)
    assert code == 2 and f"{tmp_path / 'pred.jsonl'}:3: duplicate verdict for id '0', order ab (first on line 1)" in err
    rows = [{"id": "a", "winner": "1"}, {"id": "b", "winner": "2"}, {"id": "a", "winner": "2"}]
    _write_rows(tmp_path / "gold.jsonl", rows)
    write_jsonl(tmp_path / "pred.jsonl", [Verdict(id="a", winner="1", raw="1", parse_ok=True)])
    code, err = _cli(tmp_path, capsys)
    assert code == 2 and f"{tmp_path / 'gold.jsonl'}:3: duplicate id 'a' (first on line 1)" in err


def test_no_id_in_common_is_refused_naming_both_files(tmp_path, capsys):
    _gold(tmp_path)
    write_jsonl(tmp_path / "pred.jsonl", [Verdict(id="other-7", winner="1", raw="1", parse_ok=True)])
    code, err = _cli(tmp_path, capsys)
    assert code == 2
    assert str(tmp_path / "pred.jsonl") in err and str(tmp_path / "gold.jsonl") in err
    assert "'other-7'" in err and "'0'" in err


def test_pointwise_predictions_against_pairwise_gold_are_refused(tmp_path, capsys):
    _gold(tmp_path)
    write_jsonl(tmp_path / "pred.jsonl", [Verdict(id="0", scores=[4.0], raw="4", parse_ok=True)])
    code, err = _cli(tmp_path, capsys)
    assert code == 2 and f"{tmp_path / 'pred.jsonl'}:1: a pointwise verdict" in err
    write_jsonl(tmp_path / "scores.jsonl", [SingleItem(id="0", question="q", answer="a", score=3)])
    write_jsonl(tmp_path / "pairs.jsonl", [Verdict(id="0", winner="1", raw="1", parse_ok=True)])
    code, err = _cli(tmp_path, capsys, "pairs.jsonl", "scores.jsonl")
    assert code == 2 and "a pairwise verdict" in err and "holds pointwise labels" in err


def test_a_gold_file_mixing_pairwise_and_pointwise_labels_is_refused(tmp_path, capsys):
    _write_rows(tmp_path / "gold.jsonl", [{"id": "a", "winner": "1"}, {"id": "b", "score": 3}])
    write_jsonl(tmp_path / "pred.jsonl", [Verdict(id="a", winner="1", raw="1", parse_ok=True)])
    code, err = _cli(tmp_path, capsys)
    assert code == 2 and f"{tmp_path / 'gold.jsonl'}:2: this pointwise label" in err


def test_items_must_cover_the_gold(tmp_path, capsys):
    _write_rows(tmp_path / "gold.jsonl", [{"id": "0", "winner": "1"}, {"id": "9", "winner": "2"}])
    _gold(tmp_path / "items")
    write_jsonl(tmp_path / "pred.jsonl", [Verdict(id="0", winner="1", raw="1", parse_ok=True)])
    code, err = _cli(tmp_path, capsys, "pred.jsonl", "gold.jsonl", "--items", str(tmp_path / "items" / "gold.jsonl"))
    assert code == 2 and "no item for gold id '9'" in err
