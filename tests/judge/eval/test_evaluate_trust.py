"""`judgeforge eval` gives a right number or refuses: metrics that cannot mislead (unparsed verdicts
on both sides, one class set per gold file, the same items for every rate) and a refused file ending
the CLI with exit 2 and FILE:LINE (what is refused: tests/judge/eval/test_gold.py, tests/judge/eval/test_predictions.py)."""

import pytest
from sklearn.metrics import f1_score

from judge.cli import main
from judge.core.jsonl import write_jsonl
from judge.core.records import PairItem, SingleItem, Verdict
from judge.eval.evaluate import evaluate


def _gold(tmp_path, winners=("1", "2", "1", "2")):
    items = [PairItem(id=str(k), question=f"q{k}", answer1="a", answer2="b", winner=w) for k, w in enumerate(winners)]
    write_jsonl(tmp_path / "gold.jsonl", items)
    return items


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


# ---- a refusal: exit 2 with FILE:LINE -------------------------------------------------------------
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
