import json

import numpy as np
import pytest
from scipy import stats

from datafiles import shared_file
from judge.core.jsonl import write_jsonl
from judge.core.records import PairItem, Verdict
from judge.data.convert import convert
from judge.eval.evaluate import evaluate

PANDALM_TABLE = {  # PandaLM paper / README, single pass against the 3-annotator majority
    "gpt-3.5-turbo": ("gpt-3.5-turbo-testset-v1.json", (0.7107, 0.5879, 0.5736, 0.5755)),
    "pandalm-7b": ("pandalm-7b-testset-v1.json", (0.6677, 0.5738, 0.5750, 0.5743)),
}


@pytest.mark.parametrize("judge", sorted(PANDALM_TABLE))
def test_reproduces_pandalm_published_table(tmp_path, judge):
    source, expected = PANDALM_TABLE[judge]
    convert("pandalm", str(shared_file("pandalm", "testset-v1.json")), str(tmp_path / "gold.jsonl"))
    convert("pandalm-verdicts", str(shared_file("pandalm", source)), str(tmp_path / "pred.jsonl"))
    report = evaluate([str(tmp_path / "pred.jsonl")], str(tmp_path / "gold.jsonl"), str(tmp_path / "eval"), n_resamples=50)
    got = tuple(round(report[k], 4) for k in ("accuracy", "precision", "recall", "f1"))
    assert got == expected
    assert report["n"] == 999 and report["judge"] == judge
    assert (tmp_path / "eval" / "metrics.json").exists() and (tmp_path / "eval" / "report.md").exists()


def test_prometheus_gpt4_run_against_the_other_two(tmp_path):
    """One GPT-4 run's scores vs the mean of the other two: eval's correlations equal scipy's on the
    same vectors; system level groups by response_source."""
    path = shared_file("prometheus", "vicuna_eval.json")
    convert("prometheus-absolute", str(path), str(tmp_path / "items.jsonl"))
    items = [json.loads(line) for line in open(tmp_path / "items.jsonl")]
    pred, gold_rows = [], []
    for item in items:
        runs = item["meta"]["gpt4_score"]
        pred.append(Verdict(id=item["id"], scores=[float(runs[0])], raw=f"[RESULT] {runs[0]}", parse_ok=True, judge="gpt4-run0"))
        gold_rows.append({**item, "score": (runs[1] + runs[2]) / 2})
    write_jsonl(tmp_path / "pred.jsonl", pred)
    write_jsonl(tmp_path / "gold.jsonl", gold_rows)
    report = evaluate([str(tmp_path / "pred.jsonl")], str(tmp_path / "gold.jsonl"), str(tmp_path / "eval"), n_resamples=50)
    p = np.array([v.scores[0] for v in pred])
    g = np.array([r["score"] for r in gold_rows])
    assert report["pearson"] == pytest.approx(stats.pearsonr(p, g).statistic, abs=1e-6)
    assert report["spearman"] == pytest.approx(stats.spearmanr(p, g).statistic, abs=1e-6)
    assert report["kendall"] == pytest.approx(stats.kendalltau(p, g).statistic, abs=1e-6)
    sources = sorted({r["model"] for r in gold_rows})
    assert sorted(report["system_level"]["means"]) == sources
    means_p = [p[[r["model"] == s for r in gold_rows]].mean() for s in sources]
    means_g = [g[[r["model"] == s for r in gold_rows]].mean() for s in sources]
    assert report["system_level"]["pearson"] == pytest.approx(stats.pearsonr(means_p, means_g).statistic, abs=1e-6)
    assert report["group_level"]["n_groups"] == 80  # 80 questions, 4 answers each
    assert (tmp_path / "eval" / "scatter_gpt4-run0.png").exists()


def _pairs(n=40):
    rng = np.random.default_rng(3)
    return [PairItem(id=str(i), question=f"q{i}", answer1="a", answer2="b", winner=str(rng.choice(["1", "2", "tie"])))
            for i in range(n)]


def test_both_orders_give_consistency_and_swap_protocol(tmp_path):
    items = _pairs()
    verdicts = []
    for k, item in enumerate(items):
        verdicts.append(Verdict(id=item.id, order="ab", winner=item.winner, raw="x", parse_ok=True, judge="j"))
        flipped = "1" if k % 4 == 0 else item.winner  # a quarter prefer the answer shown first
        verdicts.append(Verdict(id=item.id, order="ba", winner=flipped, raw="x", parse_ok=True, judge="j"))
    write_jsonl(tmp_path / "gold.jsonl", items)
    write_jsonl(tmp_path / "pred.jsonl", verdicts)
    r = evaluate([str(tmp_path / "pred.jsonl")], str(tmp_path / "gold.jsonl"), str(tmp_path / "e"), n_resamples=20)
    assert r["accuracy"] == 1.0  # headline = order ab
    changed = sum(1 for k, i in enumerate(items) if k % 4 == 0 and i.winner != "1")
    assert r["consistency"] == pytest.approx(1 - changed / 40)
    assert r["swap_protocol"]["accuracy"] < 1.0 or changed == 0
    text = (tmp_path / "e" / "report.md").read_text()
    assert "Position bias" in text and "Swap protocol" in text


def test_missing_ids_are_reported(tmp_path):
    items = _pairs(10)
    write_jsonl(tmp_path / "gold.jsonl", items)
    write_jsonl(tmp_path / "pred.jsonl", [Verdict(id=i.id, winner="1", raw="1", parse_ok=True) for i in items[:7]]
                + [Verdict(id="extra", winner="1", raw="1", parse_ok=True)])
    r = evaluate([str(tmp_path / "pred.jsonl")], str(tmp_path / "gold.jsonl"), str(tmp_path / "e"), n_resamples=0)
    assert r["n"] == 7
    assert r["missing"]["in_gold_not_pred"] == 3 and r["missing"]["in_pred_not_gold"] == 1
    assert "Missing ids" in (tmp_path / "e" / "report.md").read_text()


def test_compare_judges_side_by_side(tmp_path):
    items = _pairs()
    write_jsonl(tmp_path / "gold.jsonl", items)
    write_jsonl(tmp_path / "a.jsonl", [Verdict(id=i.id, winner=i.winner, raw="", parse_ok=True, judge="teacher") for i in items])
    write_jsonl(tmp_path / "b.jsonl", [Verdict(id=i.id, winner="1", raw="", parse_ok=True, judge="student") for i in items])
    r = evaluate([str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")], str(tmp_path / "gold.jsonl"), str(tmp_path / "e"), n_resamples=20)
    assert r["accuracy"] == 1.0 and set(r["judges"]) == {"teacher", "student"}
    (pair,) = r["between_judges"]["pairs"]
    share_1 = sum(i.winner == "1" for i in items) / len(items)
    assert pair["agreement"] == pytest.approx(share_1)
    text = (tmp_path / "e" / "report.md").read_text()
    assert "Judges side by side" in text and "Cohen's kappa" in text
