"""How sure a local judge is of an item's verdict, read off its verdict-token probabilities
(`score --mode logprob`): the number `calibrate` thresholds and the cascade escalates on.

Pairwise: the probability the judge gave the verdict it chose (`logprobs.probs[winner]`). With
both answer orders, an item whose two verdicts disagree has confidence 0 (the judge contradicts
itself, so it is always escalated), otherwise the lower of the two probabilities.

Pointwise: the judge's verdict is its expected score E, and it agrees with a gold grade when the
two are within half a point (the grade E rounds to). The judge's own probability of that event is
the mass of its score distribution within E +- 0.5, so that is its confidence: the pointwise
counterpart of "the probability of the chosen label", on the same 0-1 scale, and low both when the
judge hesitates between distant grades and when it spreads over neighbours.

A verdict that did not parse (or a judge that did not answer) has confidence 0: it is never
accepted. A parsed verdict without probabilities cannot be given a confidence at all: refused.
"""

from __future__ import annotations

from collections.abc import Sequence

from judge.core.errors import InputError
from judge.core.records import Verdict

HALF_POINT = 0.5
_EPS = 1e-9  # expected scores are rounded to 6 decimals: a grade exactly half a point away counts


def confidence(verdicts: Sequence[Verdict]) -> float:
    """An item's confidence from its verdicts, one per order judged (see the module docstring)."""
    if not verdicts:
        raise ValueError("confidence of an item without verdicts")
    if any(not v.parse_ok for v in verdicts):
        return 0.0
    probabilities = [_chosen_probability(v) for v in verdicts]
    if len({v.winner for v in verdicts}) > 1:
        return 0.0  # the orders disagree
    return min(probabilities)


def _chosen_probability(verdict: Verdict) -> float:
    info = verdict.logprobs or {}
    if verdict.winner is not None:
        if "probs" not in info:
            raise InputError(_no_probabilities(verdict))
        return float(info["probs"].get(verdict.winner, 0.0))
    if "score_probs" not in info or verdict.score is None:
        raise InputError(_no_probabilities(verdict))
    expected = verdict.score
    return float(sum(p for score, p in info["score_probs"].items()
                     if abs(float(score) - expected) <= HALF_POINT + _EPS))


def _no_probabilities(verdict: Verdict) -> str:
    return (f"verdict for item {verdict.id!r} (order {verdict.order}) carries no verdict-token probabilities: "
            f"score the items with `judgeforge score --mode logprob` (a judgeforge that records them)")
