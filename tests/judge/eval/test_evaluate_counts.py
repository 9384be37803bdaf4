"""`judgeforge eval`: one definition per count (DESIGN, Metrics). `parse_failure_rate` is unparsed
verdicts / every verdict the judge gave (both orders counted), the same value wherever the key
appears; item-level counts have names of their own; several judges get a section each, and the top
level says whose headline it repeats; the report names the protocol behind accuracy."""

import json

import pytest

from judge.core.jsonl import write_jsonl
from judge.core.records import PairItem, Verdict
from judge.eval.evaluate import evaluate


def _values(obj, key):
    """Every value of `key` anywhere in a nested JSON object."""
    if isinstance(obj, dict):
        return [v for k, v in obj.items() if k == key] + [x for v in obj.values() for x in _values(v, key)]
    if isinstance(obj, list):
        return [x for v in obj for x in _values(v, key)]
    return []


def _two_orders(tmp_path, name="j", failed=(("4", "ba"),)):
    """Five items judged in both orders (ten verdicts), the verdicts in `failed` unparsed."""
    items = [PairItem(id=str(k), question=f"q{k}", answer1="a" * (k + 1), answer2="bb", winner="1") for k in range(5)]
    write_jsonl(tmp_path / "gold.jsonl", items)
    verdicts = [Verdict(id=i.id, order=o, winner=None if (i.id, o) in failed else "1", raw="x",
                        parse_ok=(i.id, o) not in failed, judge=name) for i in items for o in ("ab", "ba")]
    write_jsonl(tmp_path / f"{name}.jsonl", verdicts)
    return items


def test_one_parse_failure_rate_for_one_judge_with_two_orders(tmp_path):
    _two_orders(tmp_path)
    r = evaluate([str(tmp_path / "j.jsonl")], str(tmp_path / "gold.jsonl"), str(tmp_path / "e"), n_resamples=0,
                 plots=False)
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert set(_values(metrics, "parse_failure_rate")) == {0.1}  # 1 unparsed of 10 verdicts, everywhere
    assert metrics["n_unparsed"] == 1 and metrics["parsing"]["verdicts"] == 10
    assert metrics["n_items_with_unparsed"] == 1 and metrics["both_unparsed_rate"] == 0.0
    assert metrics["n_items_unparsed"] == 0  # no headline (ab) label missing
    assert metrics["swap_protocol"]["n_items_unparsed"] == 1  # the combined label of item 4 is missing
    assert r["headline_protocol"] == "ab"
    text = (tmp_path / "e" / "report.md").read_text()
    assert "Unparsed verdicts: 1 of 10 (parse failure rate 0.1000)" in text
    assert "Unparsed verdicts: 0" not in text
    assert "Parse failures**: 1 of 10 verdicts" in text
    assert "Accuracy, precision, recall and F1 above are those of the `ab` verdicts" in text


def test_both_orders_unparsed_is_an_item_level_rate(tmp_path):
    _two_orders(tmp_path, failed=(("3", "ab"), ("3", "ba"), ("4", "ba")))
    r = evaluate([str(tmp_path / "j.jsonl")], str(tmp_path / "gold.jsonl"), None, n_resamples=0)
    assert r["parse_failure_rate"] == pytest.approx(0.3)
    assert r["n_items_with_unparsed"] == 2 and r["both_unparsed_rate"] == pytest.approx(0.2)
    assert r["position_bias"]["both_unparsed_rate"] == r["both_unparsed_rate"]
    assert set(_values(r, "parse_failure_rate")) == {0.3}


def test_several_judges_each_have_a_section_and_the_top_level_says_whose_headline(tmp_path):
    _two_orders(tmp_path, "a")
    _two_orders(tmp_path, "b", failed=())
    evaluate([str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")], str(tmp_path / "gold.jsonl"),
             str(tmp_path / "e"), n_resamples=0, plots=False)
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert metrics["headline_judge"] == "a"
    assert sorted(metrics["judges"]) == ["a", "b"]
    assert metrics["judges"]["a"]["parse_failure_rate"] == metrics["parse_failure_rate"] == 0.1
    assert metrics["judges"]["b"]["parse_failure_rate"] == 0.0
    assert metrics["judges"]["b"]["n_unparsed"] == 0
