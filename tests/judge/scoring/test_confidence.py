import math

import pytest

from judge.backends.base import Generation
from judge.core.errors import InputError
from judge.core.records import Verdict
from judge.scoring.confidence import confidence
from judge.scoring.judging import verdict_from
from judge.templates import get_template


def pair(winner, probs, order="ab", parse_ok=True):
    return Verdict(id="q", order=order, winner=winner, parse_ok=parse_ok, logprobs={"probs": probs})


def graded(score, score_probs):
    return Verdict(id="q", scores=[score], parse_ok=True, logprobs={"expected_score": score, "score_probs": score_probs})


@pytest.mark.parametrize("verdicts,expected", [
    ([pair("1", {"1": 0.9, "2": 0.1})], 0.9),
    ([pair("2", {"1": 0.3, "2": 0.6, "tie": 0.1})], 0.6),
    # both orders agree: the lower of the two
    ([pair("1", {"1": 0.9, "2": 0.1}), pair("1", {"1": 0.7, "2": 0.3}, "ba")], 0.7),
    # the orders disagree: 0, however sure each one is
    ([pair("1", {"1": 0.99, "2": 0.01}), pair("2", {"1": 0.02, "2": 0.98}, "ba")], 0.0),
    # an unparsed verdict (a judge that did not answer) is never accepted
    ([pair(None, {}, parse_ok=False)], 0.0),
    ([pair("1", {"1": 0.9, "2": 0.1}), Verdict(id="q", order="ba", parse_ok=False, error="timeout")], 0.0),
    # pointwise: the mass within +-0.5 of the expected score
    ([graded(4.0, {"3": 0.1, "4": 0.8, "5": 0.1})], 0.8),
    ([graded(4.5, {"3": 0.1, "4": 0.4, "5": 0.5})], 0.9),  # 4 and 5 are both half a point away
    ([graded(3.2, {"1": 0.3, "4": 0.2, "5": 0.5})], 0.0),  # mass far from the expectation: no confidence
    ([graded(3.6, {"3": 0.3, "4": 0.5, "5": 0.2})], 0.5),
])
def test_confidence(verdicts, expected):
    assert confidence(verdicts) == pytest.approx(expected)


@pytest.mark.parametrize("verdict", [
    Verdict(id="q", winner="1", parse_ok=True),
    Verdict(id="q", scores=[4.0], parse_ok=True),
    Verdict(id="q", scores=[4.0], parse_ok=True, logprobs={"expected_score": 4.0}),  # recorded before score_probs
])
def test_a_verdict_without_probabilities_is_refused(verdict):
    with pytest.raises(InputError, match="--mode logprob"):
        confidence([verdict])


def test_confidence_of_real_logprob_verdicts_both_orders():
    """Through the template's reader and the order mapping: the swapped verdict's probabilities
    refer to the original answers, so a consistent judge is confident."""
    template = get_template("pandalm")

    def generation(token, p):
        other = "2" if token == "1" else "1"
        return Generation(text=token, tokens=[token], top_logprobs=[{token: math.log(p), other: math.log(1 - p)}])

    ab = verdict_from(template, "q", "ab", generation("1", 0.8), mode="logprob", judge="j")
    ba = verdict_from(template, "q", "ba", generation("2", 0.9), mode="logprob", judge="j")  # answer 1 shown second
    assert ab.winner == ba.winner == "1"
    assert confidence([ab, ba]) == pytest.approx(0.8)


def test_pointwise_logprob_verdict_carries_its_score_distribution():
    template = get_template("prometheus-absolute")
    generation = Generation(text="[RESULT] 4", tokens=["[", "RESULT", "]", " 4"],
                            top_logprobs=[{}, {}, {}, {" 4": math.log(0.6), " 5": math.log(0.3), " 1": math.log(0.1)}])
    verdict = verdict_from(template, "q", "ab", generation, mode="logprob", judge="j")
    assert verdict.score == pytest.approx(4.0 * 0.6 + 5 * 0.3 + 0.1)  # 4.0
    assert verdict.logprobs["score_probs"] == pytest.approx({"4": 0.6, "5": 0.3, "1": 0.1})
    assert confidence([verdict]) == pytest.approx(0.6)  # E = 4.0: only grade 4 lies within half a point
