import json
import math

import numpy as np
import pytest

from judge.cascade.calibrate import ESCALATE_ALL, agreement_lower_bound, calibrate, search_threshold
from judge.cli import main
from judge.core.errors import ConfigError, InputError
from judge.core.jsonl import write_jsonl
from judge.core.records import PairItem, Verdict
from judge.templates import get_template


def hand_lower_bound(k, n, risk):
    """The p at which P(X >= k | n, p) = risk, by bisection on the binomial sum written out."""
    def tail(p):
        return sum(math.comb(n, j) * p ** j * (1 - p) ** (n - j) for j in range(k, n + 1))

    lo, hi = 0.0, 1.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if tail(mid) > risk else (mid, hi)
    return (lo + hi) / 2


@pytest.mark.parametrize("k,n,risk", [(10, 10, 0.1), (9, 10, 0.1), (4, 5, 0.2), (45, 50, 0.05), (1, 3, 0.3)])
def test_lower_bound_is_the_exact_binomial_bound(k, n, risk):
    assert agreement_lower_bound(k, n, risk) == pytest.approx(hand_lower_bound(k, n, risk), abs=1e-9)
    if k == n:
        assert agreement_lower_bound(k, n, risk) == pytest.approx(risk ** (1 / n))  # p^n = risk
    assert agreement_lower_bound(0, n, risk) == 0.0


def test_fixed_sequence_search_by_hand():
    """target 0.5, risk 0.2: a perfect record needs 3 items (0.2^(1/3) = 0.585 >= 0.5; 0.2^(1/2) = 0.447 < 0.5).
    Thresholds 1.000-0.951 keep nothing, 0.950-0.901 keep 2 (not tested: cannot pass), 0.900-0.801 keep
    3 agreeing (pass), 0.800-0.701 keep 5 with 4 agreeing (bound 0.5098 >= 0.5: pass), 0.700 keeps 6
    with 4 agreeing (P(X >= 4 | 6, 0.5) = 22/64 > 0.2: fail, stop). The lowest passing threshold: 0.701."""
    conf = [0.95, 0.95, 0.9, 0.8, 0.8, 0.7, 0.6]
    agree = [True, True, True, False, True, False, False]
    assert hand_lower_bound(4, 5, 0.2) == pytest.approx(0.5098, abs=1e-4)
    assert hand_lower_bound(4, 6, 0.2) < 0.5
    result = search_threshold(conf, agree, target=0.5, risk=0.2)
    assert result["met"] and result["threshold"] == 0.701
    assert result["search"]["first_tested"] == 0.9 and result["search"]["failed_at"] == 0.7
    assert result["search"]["fewest_items_tested"] == 3
    assert (result["n_accepted"], result["coverage"], result["agreement"]) == (5, round(5 / 7, 6), 0.8)
    assert result["agreement_lower_bound"] == pytest.approx(hand_lower_bound(4, 5, 0.2), abs=1e-6)
    # the items at 0.6 agree with nothing below: the search never gets there, whatever they hold
    assert search_threshold(conf[:-1] + [0.6], agree[:-1] + [True], target=0.5, risk=0.2)["threshold"] == 0.701


def test_an_unreachable_target_escalates_everything():
    conf = np.linspace(0.5, 1.0, 200)
    agree = np.arange(200) % 5 != 0  # 80% agreement at every threshold
    result = search_threshold(conf, agree, target=0.95, risk=0.1)
    assert not result["met"] and result["threshold"] == ESCALATE_ALL > 1
    assert result["n_accepted"] == 0 and result["coverage"] == 0.0
    assert search_threshold(conf, np.ones(200, bool), target=1.0, risk=0.1)["threshold"] == ESCALATE_ALL


@pytest.mark.parametrize("target,risk", [(0, 0.1), (1.2, 0.1), (0.9, 0), (0.9, 1)])
def test_levels_out_of_range_are_refused(target, risk):
    with pytest.raises(ConfigError):
        search_threshold([0.9], [True], target=target, risk=risk)


def test_the_guarantee_holds_over_many_calibration_sets():
    """A judge whose confidence c ~ U(0.5, 1) is right with probability c: the population agreement
    of the items kept at threshold t is (1 + t) / 2, so a threshold below 0.7 breaks a 0.85 target.
    Over 500 random calibration sets the chosen threshold breaks it in at most `risk` of them
    (plus three standard errors); choosing by the point estimate alone breaks it far more often."""
    rng = np.random.default_rng(0)
    target, risk, runs, n = 0.85, 0.1, 500, 400
    broken = naive_broken = met = 0
    for _ in range(runs):
        conf = np.round(rng.uniform(0.5, 1.0, n), 6)
        agree = rng.uniform(size=n) < conf
        result = search_threshold(conf, agree, target, risk)
        met += result["met"]
        broken += result["met"] and (1 + result["threshold"]) / 2 < target
        naive = [p["threshold"] for p in result["curve"] if p["agreement"] >= target]
        naive_broken += bool(naive) and (1 + min(naive)) / 2 < target
    assert met > 0.7 * runs  # the search does find thresholds, so the check below is not vacuous
    assert broken / runs <= risk + 3 * math.sqrt(risk * (1 - risk) / runs)
    assert naive_broken / runs > 0.4


# ---- the verb, from files ---------------------------------------------------------------------
PANDALM = get_template("pandalm")


def local_verdict(item_id, order, winner, p):
    other = "2" if winner == "1" else "1"
    return Verdict(id=item_id, order=order, winner=winner, raw=winner, parse_ok=True, judge="local-judge",
                   template=PANDALM.key, template_hash=PANDALM.text_hash, logprobs={"probs": {winner: p, other: 1 - p}})


def write_set(tmp_path, n=120):
    """Items q0..q{n-1}, gold winner 1; the local judge is sure and right on 3 of 4, unsure and wrong on the rest."""
    items, verdicts = [], []
    for i in range(n):
        items.append(PairItem(id=f"q{i}", question="?", answer1="a", answer2="b", winner="1"))
        sure = i % 4 != 0
        for order in ("ab", "ba"):
            verdicts.append(local_verdict(f"q{i}", order, "1" if sure else "2", 0.98 if sure else 0.6))
    write_jsonl(tmp_path / "gold.jsonl", items)
    write_jsonl(tmp_path / "pred.jsonl", verdicts)
    return str(tmp_path / "pred.jsonl"), str(tmp_path / "gold.jsonl")


def test_calibrate_writes_the_cascade_and_its_plot(tmp_path, capsys):
    pred, gold = write_set(tmp_path)
    code = main(["calibrate", "--pred", pred, "--gold", gold, "--target-agreement", "0.9", "--risk", "0.1",
                 "--out", str(tmp_path / "cascade.json")])
    assert code == 0
    cascade = json.loads((tmp_path / "cascade.json").read_text())
    assert cascade["met"] and 0.6 < cascade["threshold"] <= 0.98
    assert (cascade["n"], cascade["n_accepted"], cascade["agreement"]) == (120, 90, 1.0)
    assert cascade["agreement_lower_bound"] == pytest.approx(0.1 ** (1 / 90), abs=1e-6)
    assert (cascade["judge"], cascade["template"], cascade["template_hash"]) == ("local-judge", "pandalm@1",
                                                                                PANDALM.text_hash)
    assert cascade["swap"] is True and cascade["mode"] == "pairwise"
    assert (tmp_path / "cascade.png").read_bytes()[:4] == b"\x89PNG"
    assert "keeps 75.0% of 120 items" in capsys.readouterr().out


def test_calibrate_says_so_when_no_threshold_passes(tmp_path, capsys):
    pred, gold = write_set(tmp_path, n=20)
    cascade = calibrate(pred, gold, target=0.99, risk=0.05, out=str(tmp_path / "c.json"), plot=False)
    assert not cascade["met"] and cascade["threshold"] == ESCALATE_ALL
    assert json.loads((tmp_path / "c.json").read_text())["threshold"] == ESCALATE_ALL


def test_predictions_without_logprobs_are_refused_with_the_fix(tmp_path, capsys):
    pred, gold = write_set(tmp_path, n=4)
    rows = [json.loads(line) for line in open(pred)]
    for row in rows:
        row.pop("logprobs")
    write_jsonl(pred, rows)
    assert main(["calibrate", "--pred", pred, "--gold", gold, "--target-agreement", "0.9",
                 "--out", str(tmp_path / "c.json")]) == 2
    assert "--mode logprob" in capsys.readouterr().err
    assert not (tmp_path / "c.json").exists()


def test_predictions_of_two_judges_are_refused(tmp_path):
    pred, gold = write_set(tmp_path, n=4)
    rows = [json.loads(line) for line in open(pred)]
    rows[0]["judge"] = "another"
    write_jsonl(pred, rows)
    with pytest.raises(InputError, match="one judge"):
        calibrate(pred, gold, target=0.9, risk=0.1, out=str(tmp_path / "c.json"))


def test_pointwise_calibration_counts_a_grade_within_half_a_point(tmp_path):
    """Graded items: the judge is sure (mass 0.95 on one grade) and within half a point of gold on 60
    items, and spread over distant grades on 20 (expected score 3.2, confidence 0.2: the mass on
    grade 3; gold 5)."""
    template = get_template("prometheus-absolute")
    items, verdicts = [], []
    for i in range(80):
        sure = i >= 20
        probs = {"4": 0.95, "5": 0.05} if sure else {"4": 0.5, "2": 0.3, "3": 0.2}
        expected = sum(float(k) * p for k, p in probs.items())
        items.append({"id": f"s{i}", "question": "?", "answer": "a", "score": 4 if sure else 5})
        verdicts.append(Verdict(id=f"s{i}", scores=[expected], parse_ok=True, judge="grader", template=template.key,
                                template_hash=template.text_hash,
                                logprobs={"expected_score": expected, "score_probs": probs}))
    verdicts.append(Verdict(id="s80", parse_ok=False, error="prompt too long", judge="grader",
                            template=template.key, template_hash=template.text_hash))
    items.append({"id": "s80", "question": "?", "answer": "a", "score": 3})
    write_jsonl(tmp_path / "gold.jsonl", items)
    write_jsonl(tmp_path / "pred.jsonl", verdicts)
    cascade = calibrate(str(tmp_path / "pred.jsonl"), str(tmp_path / "gold.jsonl"), target=0.9, risk=0.1,
                        out=str(tmp_path / "c.json"), plot=False)
    assert cascade["mode"] == "pointwise" and cascade["swap"] is False
    assert cascade["met"] and 0.2 < cascade["threshold"] <= 0.95
    # the failed verdict stays in the denominator and is never kept
    assert (cascade["n"], cascade["n_accepted"], cascade["agreement"]) == (81, 60, 1.0)
