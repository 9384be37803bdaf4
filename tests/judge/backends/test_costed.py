"""Cost and budget as a layer around any backend: replies priced from usage (chars/4 without it),
--max-cost admission counting the worst cases in flight, and the layers composed as distill does."""

import asyncio

import pytest

from judge.backends import GenerationParams, Request
from judge.backends.base import FakeBackend, Generation
from judge.backends.cache import ReplyCache
from judge.backends.cached import CachedBackend
from judge.backends.costed import Budget, CostedBackend, OverBudget
from judge.backends.pricing import Price, PriceTable
from judge.templates import Prompt

PRICES = PriceTable({"fake-judge": Price("fake-judge", input=1_000_000, output=2_000_000)}, "test")  # $1 / $2 a token


def request(text: str, max_tokens: int = 10) -> Request:
    return Request(Prompt([{"role": "user", "content": text}], text), GenerationParams(max_tokens=max_tokens))


def test_replies_are_priced_from_usage_else_from_characters():
    costed = CostedBackend(FakeBackend(lambda r: "two words"), PRICES)
    costed.generate([request("one two three")])  # FakeBackend's usage: 3 prompt words, 2 reply words
    assert costed.spent_now == 3 * 1 + 2 * 2

    class NoUsage(FakeBackend):
        def generate(self, requests):
            return [Generation(text="x" * 8) for _ in requests]

    estimated = CostedBackend(NoUsage(), PRICES)
    estimated.generate([request("y" * 12)])
    assert estimated.spent_now == 3 * 1 + 2 * 2  # 12 chars -> 3 tokens in, 8 chars -> 2 tokens out
    assert CostedBackend(FakeBackend(lambda r: "a"), PriceTable({}, "t")).generate([request("a")])  # no price: no cost


def test_the_budget_admits_requests_while_their_worst_case_fits_then_stops():
    # worst case of one request: 2 x (4 chars / 4) prompt tokens + 10 output tokens = 2 + 20 = $22
    inner = FakeBackend(lambda r: "ok")
    costed = CostedBackend(inner, PRICES, Budget(limit=50))
    with pytest.raises(OverBudget) as caught:
        costed.generate([request("abcd")] * 4)
    assert len(inner.calls) == 2 and [g is not None for g in caught.value.partial] == [True, True, False, False]
    assert costed.budget.spent == costed.spent_now == 2 * (1 + 2) and costed.budget.reserved == 0
    with pytest.raises(OverBudget):  # stopped: nothing more goes out, even what would fit now
        costed.generate([request("abcd")])
    assert len(inner.calls) == 2


def test_requests_in_flight_count_at_their_worst_case():
    class Slow(FakeBackend):
        async def acomplete(self, request):
            await asyncio.sleep(0.05)
            return await super().acomplete(request)

    inner = Slow(lambda r: "ok")
    costed = CostedBackend(inner, PRICES, Budget(limit=50))

    async def main():
        return await asyncio.gather(*(costed.acomplete(request("abcd")) for _ in range(3)), return_exceptions=True)

    results = asyncio.run(main())  # nothing is spent when the third asks, but two worst cases are in flight
    assert [isinstance(r, OverBudget) for r in results] == [False, False, True] and len(inner.calls) == 2


def test_composed_as_distill_does_a_cached_reply_costs_nothing(tmp_path):
    inner = FakeBackend(lambda r: "ok")
    with ReplyCache(tmp_path / "cache.sqlite") as cache:
        CachedBackend(CostedBackend(inner, PRICES), cache).generate([request("abcd")])
        rerun = CostedBackend(inner, PRICES, Budget(limit=0))
        (generation,) = CachedBackend(rerun, cache).generate([request("abcd")])
    assert generation.text == "ok" and len(inner.calls) == 1 and rerun.spent_now == 0
