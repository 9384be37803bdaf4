import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import cohen_kappa_score, f1_score

from judge import metrics as M


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
    assert out["n_unparsed"] == 1 and out["parse_failure_rate"] == 0.25


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


def test_macro_average_skips_a_class_absent_on_both_sides():
    gold, pred = ["1", "2", "1", "2"], ["1", "2", "1", "1"]
    out = M.classification(gold, pred, n_resamples=0)
    assert out["macro_over"] == ["1", "2"]
    assert out["f1"] == pytest.approx(f1_score(gold, pred, average="macro"), abs=1e-6)
    # a predicted tie that gold never has is a class, with precision 0
    out = M.classification(gold, ["1", "2", "tie", "2"], n_resamples=0)
    assert out["macro_over"] == ["1", "2", "tie"]
