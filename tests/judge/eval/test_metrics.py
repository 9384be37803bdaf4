import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import cohen_kappa_score, f1_score

from judge.eval import metrics as M


def test_classification_matches_sklearn_and_reports_ci():
    rng = np.random.default_rng(1)
    gold = list(rng.choice(M.LABELS, 300))
    pred = [g if rng.random() < 0.7 else rng.choice(M.LABELS) for g in gold]
    out = M.classification(gold, pred, n_resamples=200)
    assert out["accuracy"] == pytest.approx(np.mean([g == p for g, p in zip(gold, pred)]), abs=1e-6)
    assert out["f1"] == pytest.approx(f1_score(gold, pred, average="macro"), abs=1e-6)
    lo, hi = out["ci95"]["accuracy"]
    assert lo < out["accuracy"] < hi
    assert sum(map(sum, out["confusion_matrix"]["counts"])) == 300


@pytest.mark.parametrize("policy,n,accuracy", [("tie", 4, 0.75), ("drop", 3, 2 / 3), ("wrong", 4, 0.5)])
def test_unparsed_policies(policy, n, accuracy):
    gold, pred = ["1", "2", "tie", "1"], ["1", "1", None, "1"]
    out = M.classification(gold, pred, unparsed=policy, n_resamples=0)
    assert out["n"] == n and out["accuracy"] == pytest.approx(accuracy, abs=1e-6)
    assert out["n_items_unparsed"] == 1 and "parse_failure_rate" not in out  # verdict level: the judge's


def test_consistency_and_position_bias_follow_judgelm():
    # both orders mapped back to the original answers
    ab = ["1", "2", "tie", "1", "2"]
    ba = ["1", "1", "1", "2", "tie"]
    out = M.consistency(ab, ba)
    # item 0 same; item 1: answer 2 won shown second, answer 1 won shown second -> prefer second
    # item 2: tie then answer 1 wins shown second -> prefer second; item 3: shown-first wins both -> first
    # item 4: answer 2 wins shown second (ab), tie shown first -> prefer second
    assert out["consistency"] == 0.2
    assert out["prefer_first_rate"] == 0.2 and out["prefer_second_rate"] == 0.6
    assert out["delta_bias"] == 0.4 and out["total_bias"] == 0.8


def test_swap_protocol_turns_conflicts_into_ties():
    assert M.swap_combine(["1", "2", "1", None], ["1", "1", "tie", "1"]) == ["1", "tie", "tie", None]
    assert [M.combine_orders(a, b) for a, b in [("2", "2"), ("1", "2"), ("tie", None)]] == ["2", "tie", None]


def test_correlations_equal_scipy():
    rng = np.random.default_rng(0)
    g = rng.integers(1, 6, 50).astype(float)
    p = g + rng.normal(0, 1, 50)
    out = M.correlations(g, p)
    assert out["pearson"] == pytest.approx(stats.pearsonr(g, p).statistic, abs=1e-6)
    assert out["spearman"] == pytest.approx(stats.spearmanr(g, p).statistic, abs=1e-6)
    assert out["kendall"] == pytest.approx(stats.kendalltau(g, p).statistic, abs=1e-6)


def test_constant_vector_gives_none_not_nan():
    assert M.correlations([3, 3, 3], [1, 2, 3]) == {"pearson": None, "spearman": None, "kendall": None}


def test_group_and_system_level():
    gold = [1, 2, 3, 1, 2, 3]
    pred = [1, 2, 3, 3, 2, 1]
    groups = ["q1", "q1", "q1", "q2", "q2", "q2"]
    out = M.group_correlations(gold, pred, groups)
    assert out["pearson"] == pytest.approx(0.0)  # +1 and -1 averaged
    systems = ["a", "b", "c", "a", "b", "c"]
    sys_out = M.system_correlations(gold, pred, systems)
    assert sys_out["n_systems"] == 3 and sys_out["means"]["a"] == {"gold": 1.0, "pred": 2.0}


def test_kappas():
    a, b = ["1", "2", "tie", "1", "2", "2"], ["1", "2", "1", "1", "tie", "2"]
    assert M.cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b), abs=1e-6)
    # Fleiss' (1971) textbook-style check: perfect agreement is 1
    assert M.fleiss_kappa([["1", "1", "1"], ["2", "2", "2"], ["tie", "tie", "tie"]]) == pytest.approx(1.0)
    assert M.fleiss_kappa([[1, 1, 1], [1, 2, 1], [0, 0, 2]]) == pytest.approx(0.25)


def test_majority_label():
    assert M.majority_label(["1", "1", "2"]) == "1"
    assert M.majority_label(["1", "2"]) == "tie"
    assert M.majority_label([None, None]) is None


def test_expected_calibration_error():
    out = M.expected_calibration_error([0.9, 0.9, 0.6, 0.6], [True, True, True, False])
    assert out["ece"] == pytest.approx(0.5 * 0.1 + 0.5 * 0.1)


def test_macro_average_runs_over_the_gold_classes_only():
    gold, pred = ["1", "2", "1", "2"], ["1", "2", "1", "1"]
    out = M.classification(gold, pred, n_resamples=0)
    assert out["macro_over"] == ["1", "2"]
    assert out["f1"] == pytest.approx(f1_score(gold, pred, average="macro"), abs=1e-6)
    # a predicted tie that gold never has is an error, not a class of its own
    out = M.classification(gold, ["1", "2", "tie", "2"], n_resamples=0)
    assert out["macro_over"] == ["1", "2"]
    assert out["f1"] == pytest.approx(f1_score(gold, ["1", "2", "tie", "2"], labels=["1", "2"], average="macro"))
    # nor is an unparsed verdict, under any policy
    for policy in M.UNPARSED_POLICIES:
        assert M.classification(gold, ["1", None, "1", "2"], unparsed=policy, n_resamples=0)["macro_over"] == ["1", "2"]
    # the caller fixes the class set (one per gold file), whatever this subset holds
    assert M.classification(["1", "1"], ["1", "2"], labels=["1", "2", "tie"], n_resamples=0)["macro_over"] == ["1", "2", "tie"]


def test_both_orders_unparsed_is_not_consistent():
    out = M.consistency([None, None, None], [None, None, None])
    assert out["consistency"] == 0.0 and out["n_both_unparsed"] == 3 and out["both_unparsed_rate"] == 1.0
    assert out["prefer_first_rate"] == 0.0 and out["prefer_second_rate"] == 0.0
    # one side unparsed follows the policy: a tie under `tie`, never consistent under `wrong`
    assert M.consistency(["tie", "1"], [None, None])["consistency"] == 0.5
    assert M.consistency(["tie", "1"], [None, None], unparsed="wrong")["consistency"] == 0.0
    dropped = M.consistency(["1", None], ["1", None], unparsed="drop")
    assert dropped["consistency"] == 1.0 and dropped["both_unparsed_rate"] == 0.5  # a count, whatever the policy


def test_prefer_longer_by_hand():
    # item:   a: 1 longer, b: 2 longer, c: equal, d: 1 longer, e: 2 longer, f: 1 longer
    longer = ["1", "2", None, "1", "2", "1"]
    picks = [["1", "1"], ["2", "2"], ["1", "2"], ["tie", "1"], [None, "2"], ["1", "2"]]
    out = M.prefer_longer(picks, longer, n_resamples=0)
    # longer picked: a 2/2, b 2/2, d 1/1, e 1/1, f 1/2 -> 7 of 8; c's two verdicts have no longer answer
    assert out["prefer_longer_rate"] == pytest.approx(7 / 8)
    assert (out["n_verdicts"], out["n_longer"], out["n_tie"], out["n_unparsed"], out["n_equal_length"]) == (8, 7, 1, 1, 2)
    # a judge that always picks the answer shown first has no length preference over both orders
    always_first = [["1", "2"]] * 6
    assert M.prefer_longer(always_first, longer, n_resamples=0)["prefer_longer_rate"] == 0.5


def test_rate_ci_resamples_items_and_brackets_the_rate():
    out = M.prefer_longer([["1", "1"], ["2", "1"], ["1", "tie"]] * 20, ["1", "2", "1"] * 20, n_resamples=300)
    lo, hi = out["ci95"]
    assert out["prefer_longer_rate"] == pytest.approx(0.8)  # per triple: 2/2 + 1/2 + 1/1 (the tie left out)
    assert lo < 0.8 < hi


def test_agreement_by_group():
    out = M.agreement_by_group(["1", "2", "1", "tie"], ["1", None, "2", "tie"], ["a", "a", "b", "b"], n_resamples=0)
    assert out == {"a": {"n": 2, "agreement": 0.5, "ci95": None, "n_items_unparsed": 1},
                   "b": {"n": 2, "agreement": 0.5, "ci95": None, "n_items_unparsed": 0}}
