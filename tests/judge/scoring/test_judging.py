"""Covers: judge/backends/base.py."""

import math

import pytest

from judge.backends import FakeBackend, Generation
from judge.core.errors import ConfigError
from judge.core.records import PairItem, SingleItem, swap_label, to_original_order
from judge.scoring.judging import judge_items, params_for, verdict_from
from judge.templates import get_template

ITEMS = [PairItem(id=str(i), question=f"q{i}", answer1="GOOD", answer2="bad") for i in range(5)]


def prefers_good(request):
    """A judge that always prefers the answer 'GOOD', wherever it is shown."""
    user = request.prompt.messages[-1]["content"]
    return "9 2\nfirst is good" if user.index("GOOD") < user.index("bad") else "2 9\nsecond is good"


def test_swap_judges_both_orders_and_maps_back():
    backend = FakeBackend(prefers_good)
    verdicts = judge_items(ITEMS, get_template("judgelm"), backend, swap=True, batch_size=3)
    assert len(verdicts) == 10 and len(backend.calls) == 10
    assert {(v.order, v.winner) for v in verdicts} == {("ab", "1"), ("ba", "1")}
    ba = [v for v in verdicts if v.order == "ba"]
    assert all(v.scores == [9.0, 2.0] for v in ba)


def test_done_pairs_are_skipped():
    backend = FakeBackend(prefers_good)
    judge_items(ITEMS, get_template("judgelm"), backend, swap=True, done={("0", "ab"), ("0", "ba"), ("1", "ab")})
    assert len(backend.calls) == 7


def test_verdict_mode_constrains_with_the_template_regex():
    params = params_for(get_template("pandalm"), "verdict")
    assert params.regex == "(1|2|Tie)" and params.max_tokens <= 8 and params.logprobs is None
    with pytest.raises(ConfigError, match="mode must be"):
        params_for(get_template("pandalm"), "fast")
    with pytest.raises(ConfigError, match="score-100"):
        params_for(get_template("score-100"), "logprob")


def test_logprob_verdict_maps_probabilities_back_for_swapped_order():
    gen = Generation(text="1", tokens=["1"], top_logprobs=[{"1": math.log(0.7), "2": math.log(0.2), "Tie": math.log(0.1)}])
    v = verdict_from(get_template("pandalm"), "x", "ba", gen, mode="logprob", judge="j")
    assert v.winner == "2"
    assert v.logprobs["probs"]["2"] == pytest.approx(0.7, abs=1e-5)


def test_to_original_order_turns_every_part_of_a_swapped_verdict_round():
    info = {"probs": {"1": 0.6, "2": 0.3, "tie": 0.1}, "expected_scores": [8.0, 3.0], "expected_winner": "1", "mass": [1.0]}
    winner, scores, logprobs = to_original_order("ba", "1", [8.0, 3.0], info)
    assert (winner, scores) == ("2", [3.0, 8.0])
    assert logprobs == {"probs": {"2": 0.6, "1": 0.3, "tie": 0.1}, "expected_scores": [3.0, 8.0],
                        "expected_winner": "2", "mass": [1.0]}
    assert info["expected_scores"] == [8.0, 3.0]  # the caller's dict is left as read
    assert to_original_order("ab", "1", [8.0, 3.0], info) == ("1", [8.0, 3.0], info)
    assert swap_label("tie") == "tie" and swap_label(None) is None


def test_logprob_pointwise_uses_the_expected_score():
    gen = Generation(text="4\nok", tokens=["4", "\n"], top_logprobs=[{"4": math.log(0.5), "5": math.log(0.5)}, {}])
    v = verdict_from(get_template("rag-relevancy"), "x", "ab", gen, mode="logprob", judge="j")
    assert v.scores == [4.5] and v.parse_ok


def test_backend_error_is_a_recorded_failure():
    v = verdict_from(get_template("judgelm"), "x", "ab", Generation(text="", error="prompt too long"), mode="full", judge="j")
    assert not v.parse_ok and v.error == "prompt too long"


def test_pointwise_items_are_judged_once():
    backend = FakeBackend(lambda r: "Fine. [RESULT] 4")
    items = [SingleItem(id="s", question="q", answer="a")]
    (v,) = judge_items(items, get_template("prometheus-absolute"), backend, swap=True)
    assert v.scores == [4.0] and v.order == "ab"
