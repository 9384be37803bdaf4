"""Covers: judge/eval/card.py, judge/eval/report_benchmarks.py, judge/eval/metrics_benchmarks.py."""

import json

import pytest

from datafiles import shared_file
from judge.cli import main
from judge.eval.evaluate import evaluate
from judge.eval.metrics_benchmarks import judgebench_sum

# (category, gold winner, ab verdict, ba verdict, correct under JudgeBench's rule); verdicts mapped back, None unparsed
JUDGEBENCH_TABLE = [
    ("knowledge", "1", "1", "1", True),      # both right
    ("knowledge", "1", "1", "tie", True),    # a right game and a tie
    ("knowledge", "2", "tie", "2", True),
    ("reasoning", "1", "1", "2", False),     # +1 -1 = 0: not correct
    ("reasoning", "2", None, "2", True),     # a null game counts 0
    ("math", "1", None, None, False),        # both games null
    ("math", "2", "tie", "tie", False),
    ("coding", "1", "2", "tie", False),
    ("coding", "2", "2", None, True),
    ("coding", "1", "2", "2", False),
]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def verdict(item_id, order, winner, judge="j"):
    return {"id": item_id, "order": order, "winner": winner, "raw": str(winner), "parse_ok": winner is not None,
            "judge": judge}


def judgebench_files(tmp_path, table, judge="j"):
    gold = write_jsonl(tmp_path / "gold.jsonl", [
        {"id": f"p{k}", "question": "q", "answer1": "a", "answer2": "b", "winner": g, "category": c}
        for k, (c, g, *_rest) in enumerate(table)])
    pred = write_jsonl(tmp_path / f"{judge}.jsonl", [verdict(f"p{k}", o, w, judge)
                                                     for k, (_c, _g, ab, ba, _ok) in enumerate(table)
                                                     for o, w in (("ab", ab), ("ba", ba))])
    return gold, pred


def test_judgebench_rule_by_hand(tmp_path):
    for _c, g, ab, ba, ok in JUDGEBENCH_TABLE:
        assert (judgebench_sum(g, ab, ba) > 0) == ok
    gold, pred = judgebench_files(tmp_path, JUDGEBENCH_TABLE)
    jb = evaluate([pred], gold, str(tmp_path / "out"), protocol="judgebench", n_resamples=0, plots=False)["judgebench"]
    assert (jb["overall"], jb["knowledge"], jb["reasoning"], jb["math"], jb["coding"]) == (0.5, 1.0, 0.5, 0.0, 0.333333)
    assert jb["n"] == {"overall": 10, "knowledge": 3, "reasoning": 2, "math": 2, "coding": 3}
    assert jb["n_correct"] == 5 and jb["n_verdicts_unparsed_or_missing"] == 4
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["judgebench"]["overall"] == 0.5 and metrics["accuracy"] is not None  # beside the usual metrics
    assert "| 1 | j | 50.00" in (tmp_path / "out" / "report.md").read_text()


def test_several_judges_ranked_side_by_side(tmp_path):
    gold, weak = judgebench_files(tmp_path, JUDGEBENCH_TABLE, "weak")
    strong_table = [(c, g, g, g, True) for c, g, *_ in JUDGEBENCH_TABLE]
    _, strong = judgebench_files(tmp_path, strong_table, "strong")
    report = evaluate([weak, strong], gold, str(tmp_path / "out"), protocol="judgebench", n_resamples=0, plots=False)
    assert report["judges"]["strong"]["judgebench"]["overall"] == 1.0
    text = (tmp_path / "out" / "report.md").read_text()
    assert text.index("| 1 | strong | 100.00") < text.index("| 2 | weak | 50.00")


def test_judgebench_refuses_a_tie_label(tmp_path, capsys):
    gold, pred = judgebench_files(tmp_path, [("math", "tie", "1", "1", False)])
    assert main(["eval", "--pred", pred, "--gold", gold, "--protocol", "judgebench", "--out", str(tmp_path / "o")]) == 2
    assert "gold.jsonl:1: --protocol judgebench needs a winner 1 or 2" in capsys.readouterr().err


PUBLISHED = {  # JudgeBench's published figures for the shared judged files (percent)
    ("pairs-gpt-4o.jsonl", "judged-gpt-4o-pairs-by-reward_model-GRM-Gemma-2B.jsonl"):
        {"knowledge": 62.99, "reasoning": 53.06, "math": 64.29, "coding": 54.76, "overall": 59.43},
    ("pairs-claude-3.5-sonnet.jsonl", "judged-claude-3.5-sonnet-pairs-by-arena_hard-claude-3-haiku.jsonl"):
        {"knowledge": 37.66, "reasoning": 29.41, "math": 32.35, "coding": 9.68, "overall": 32.22},
}


@pytest.mark.parametrize("pairs, judged", list(PUBLISHED))
def test_published_judges_reproduce_judgebench(tmp_path, pairs, judged):
    items, pred, out = tmp_path / "items.jsonl", tmp_path / "pred.jsonl", tmp_path / "eval"
    assert main(["data", "convert", "--from", "judgebench", str(shared_file("judgebench", pairs)),
                 "--out", str(items)]) == 0
    assert main(["data", "convert", "--from", "judgebench-judgments", str(shared_file("judgebench", judged)),
                 "--out", str(pred)]) == 0
    assert main(["eval", "--pred", str(pred), "--gold", str(items), "--protocol", "judgebench", "--bootstrap", "0",
                 "--no-plots", "--out", str(out)]) == 0
    jb = json.loads((out / "metrics.json").read_text())["judgebench"]
    assert {k: round(100 * jb[k], 2) for k in PUBLISHED[pairs, judged]} == PUBLISHED[pairs, judged]


def bias_items(tmp_path):
    """Two bias groups, the better answer first or second (balanced as the importer does)."""
    rows = [{"id": f"len-{k}", "question": "q", "answer1": "a", "answer2": "b", "winner": w, "category": "length"}
            for k, w in enumerate("1212")]
    rows += [{"id": f"nest-{k}", "question": "q", "answer1": "a", "answer2": "b", "winner": w, "category": "nested"}
             for k, w in enumerate("12")]
    return write_jsonl(tmp_path / "bias.jsonl", rows)


def test_evalbiasbench_per_bias_accuracy_and_card(tmp_path):
    gold = bias_items(tmp_path)
    # length: always answer 1 (the first shown in ab, so "2" in ba): right in ab on len-0, len-2
    # nested: right in both orders on nest-0, a tie and an unparsed verdict on nest-1
    rows = [verdict(f"len-{k}", o, w) for k in range(4) for o, w in (("ab", "1"), ("ba", "2"))]
    rows += [verdict("nest-0", "ab", "1"), verdict("nest-0", "ba", "1"),
             verdict("nest-1", "ab", "tie"), verdict("nest-1", "ba", None)]
    pred = write_jsonl(tmp_path / "j.jsonl", rows)
    first = evaluate([pred], gold, str(tmp_path / "first"), protocol="evalbiasbench", card=True, n_resamples=50,
                     plots=False)
    length, nested = (first["evalbiasbench"]["groups"][g] for g in ("length", "nested"))
    assert (length["n"], length["accuracy"], length["accuracy_both_orders"], length["consistency"]) == (4, 0.5, 0.0, 0.0)
    assert (length["n_fell_for"], length["fell_for_rate"]) == (4, 0.5)
    assert (nested["accuracy"], nested["accuracy_both_orders"], nested["n_fell_for"]) == (0.5, 0.5, 0)
    assert (nested["n_tie_verdicts"], nested["n_unparsed_verdicts"]) == (1, 1)
    # a second run's card carries the first run's benchmark too
    again = evaluate([pred], gold, str(tmp_path / "second"), card_include=[str(tmp_path / "first")], n_resamples=0,
                     plots=False)
    assert [b["benchmark"] for b in again["card"]["benchmarks"]] == ["evalbiasbench", "bias"]
    text = (tmp_path / "second" / "report.md").read_text()
    assert "## Judge card: j" in text and "- length: followed the position more than the content: 4 of 8" in text
    ci = first["card"]["benchmarks"][0]["judges"][0]["numbers"]["accuracy"]["ci95"]
    assert ci is not None and ci[0] <= 0.5 <= ci[1]


def test_refusals_name_the_file(tmp_path, capsys):
    gold, pred = judgebench_files(tmp_path, JUDGEBENCH_TABLE[:2])
    bare = write_jsonl(tmp_path / "bare.jsonl", [{"id": "p0", "winner": "1"}, {"id": "p1", "winner": "1"}])
    assert main(["eval", "--pred", pred, "--gold", bare, "--protocol", "evalbiasbench", "--out", str(tmp_path / "a")]) == 2
    assert "bare.jsonl:1: --protocol evalbiasbench needs each item's bias type" in capsys.readouterr().err
    (tmp_path / "plain").mkdir()
    assert main(["eval", "--pred", pred, "--gold", gold, "--card", "--card-include", str(tmp_path / "plain"),
                 "--out", str(tmp_path / "b")]) == 2
    assert "plain: no metrics.json here" in capsys.readouterr().err
