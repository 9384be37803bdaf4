"""Length-bias audit and per-category agreement in `judgeforge eval` (pairwise), checked by hand on a
small set and on PandaLM's published verdicts against the human labels."""

import json

import pytest

from datafiles import shared_file
from judge.cli import main
from judge.core.jsonl import write_jsonl
from judge.core.records import PairItem, Verdict
from judge.eval.evaluate import evaluate

# id: (answer1, answer2, gold, verdict ab, verdict ba, category); None = unparsed
SMALL = {
    "a": ("xxxx", "xx", "1", "1", "1", "math"),       # answer 1 longer
    "b": ("x", "xxx", "1", "2", "2", "math"),         # answer 2 longer, gold picks the shorter
    "c": ("xx", "yy", "1", "1", "2", "math"),         # equally long
    "d": ("xxxxx", "x", "tie", "tie", "1", "code"),   # answer 1 longer
    "e": ("x", "xxxxxx", "2", None, "2", "code"),     # answer 2 longer
    "f": ("yyy", "y", "2", "1", "2", "code"),         # answer 1 longer, gold picks the shorter
}


def _small(tmp_path, *, bare_gold=False):
    items = [PairItem(id=k, question="q", answer1=a1, answer2=a2, winner=g, category=c)
             for k, (a1, a2, g, _, _, c) in SMALL.items()]
    write_jsonl(tmp_path / "items.jsonl", items)
    if bare_gold:
        write_jsonl(tmp_path / "gold.jsonl", [{"id": i.id, "winner": i.winner} for i in items])
    verdicts = [Verdict(id=k, order=o, winner=w, raw="x" if w else "???", parse_ok=w is not None, judge="j")
                for k, row in SMALL.items() for o, w in (("ab", row[3]), ("ba", row[4]))]
    write_jsonl(tmp_path / "pred.jsonl", verdicts)


def test_length_bias_by_hand(tmp_path):
    _small(tmp_path)
    r = evaluate([str(tmp_path / "pred.jsonl")], str(tmp_path / "items.jsonl"), str(tmp_path / "e"), n_resamples=200)
    # judge, both orders: a 2/2, b 2/2, d 1/1 (its tie left out), e 1/1 (unparsed left out), f 1/2; c equal length
    assert r["prefer_longer_rate"] == pytest.approx(7 / 8)
    # gold: a longer, b shorter, e longer, f shorter; c equal length, d a tie
    assert r["gold_prefer_longer_rate"] == pytest.approx(2 / 4)
    judge = r["length_bias"]["judge"]
    assert (judge["n_verdicts"], judge["n_tie"], judge["n_unparsed"], judge["n_equal_length"]) == (8, 1, 1, 2)
    # headline (ab) agreement where gold picks the longer answer: a right, e wrong (unparsed = tie)
    split = r["length_bias"]["agreement_by_gold_winner"]
    assert split["gold_longer"]["n"] == 2 and split["gold_longer"]["agreement"] == 0.5
    assert split["gold_shorter"]["n"] == 2 and split["gold_shorter"]["agreement"] == 0.0  # b and f both wrong
    assert split["not_split"] == {"gold_tie": 1, "equal_length": 1}
    cats = r["category_level"]["categories"]
    assert cats["math"]["n"] == 3 and cats["math"]["agreement"] == pytest.approx(2 / 3)  # a, c right
    assert cats["code"]["n"] == 3 and cats["code"]["agreement"] == pytest.approx(1 / 3)  # d right
    lo, hi = r["ci95"]["prefer_longer_rate"]
    assert lo <= r["prefer_longer_rate"] <= hi
    text = (tmp_path / "e" / "report.md").read_text()
    assert "**Length bias**" in text and "| the shorter answer | 2 | 0.0000 |" in text
    assert "| math | 3 | 0.6667 |" in text
    assert (tmp_path / "e" / "length_bias.png").stat().st_size > 0 and "length_bias.png" in text


def test_bare_gold_needs_the_items_for_length_bias(tmp_path):
    _small(tmp_path, bare_gold=True)
    r = evaluate([str(tmp_path / "pred.jsonl")], str(tmp_path / "gold.jsonl"), str(tmp_path / "e"), n_resamples=0)
    assert r["prefer_longer_rate"] is None and r["gold_prefer_longer_rate"] is None
    assert "--items" in r["length_bias"]["reason"] and "--items" in (tmp_path / "e" / "report.md").read_text()
    with_items = evaluate([str(tmp_path / "pred.jsonl")], str(tmp_path / "gold.jsonl"), None, n_resamples=0,
                          items_path=str(tmp_path / "items.jsonl"))
    assert with_items["prefer_longer_rate"] == pytest.approx(7 / 8)
    assert with_items["category_level"]["categories"]["math"]["n"] == 3


def test_side_by_side_shows_both_bias_rates(tmp_path):
    _small(tmp_path)
    write_jsonl(tmp_path / "short.jsonl", [  # always the shorter answer (answer 1 when equal)
        Verdict(id=k, winner="1" if len(a1) <= len(a2) else "2", raw="x", parse_ok=True, judge="shorty")
        for k, (a1, a2, *_) in SMALL.items()])
    r = evaluate([str(tmp_path / "pred.jsonl"), str(tmp_path / "short.jsonl")], str(tmp_path / "items.jsonl"),
                 str(tmp_path / "e"), n_resamples=0)
    assert r["judges"]["shorty"]["prefer_longer_rate"] == 0.0
    assert r["judges"]["shorty"]["gold_prefer_longer_rate"] == 0.5
    text = (tmp_path / "e" / "report.md").read_text()
    assert "| prefer longer (95% CI) | gold prefer longer |" in text
    assert "| shorty | 6 |" in text and " | 0.0000 n/a | 0.5000 |" in text


PANDALM_LENGTH_BIAS = {  # prefer_longer_rate of the published verdicts; the human majority: 0.6753
    "gpt-3.5-turbo": ("gpt-3.5-turbo-testset-v1.json", 0.6192),
    "pandalm-7b": ("pandalm-7b-testset-v1.json", 0.6553),
}


def test_pandalm_length_bias_through_the_cli(tmp_path, capsys):
    gold = tmp_path / "gold.jsonl"
    assert main(["data", "convert", "--from", "pandalm", str(shared_file("pandalm", "testset-v1.json")),
                 "--out", str(gold)]) == 0
    preds = []
    for name, (source, _) in PANDALM_LENGTH_BIAS.items():
        preds += ["--pred", str(tmp_path / f"{name}.jsonl")]
        assert main(["data", "convert", "--from", "pandalm-verdicts", str(shared_file("pandalm", source)),
                     "--out", preds[-1]]) == 0
    assert main(["eval", *preds, "--gold", str(gold), "--out", str(tmp_path / "e"), "--bootstrap", "50"]) == 0
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    for name, (_, rate) in PANDALM_LENGTH_BIAS.items():
        m = metrics["judges"][name]
        assert round(m["prefer_longer_rate"], 4) == rate
        assert round(m["gold_prefer_longer_rate"], 4) == 0.6753
        assert sum(c["n"] for c in m["category_level"]["categories"].values()) == 999
    assert len(metrics["judges"]["gpt-3.5-turbo"]["category_level"]["categories"]) == 50
    assert metrics["judges"]["gpt-3.5-turbo"]["length_bias"]["gold"]["n_verdicts"] == 887
