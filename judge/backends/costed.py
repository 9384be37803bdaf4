"""Cost and budget as a layer any backend can wear: `CostedBackend(backend, PriceTable.load(), Budget(usd))`.

Each reply is priced from the API's usage (judge.backends.pricing; the chars/4 estimate when the server sent
none). With a limit, a request goes out only while the money spent, plus the worst case of the
requests in flight, plus its own worst case, stays within it; once one is refused none goes out
(OverBudget), so a run stops cleanly and a rerun with a larger budget resumes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from judge.backends.base import Backend, BackendError, Generation, Request, served_model
from judge.backends.pricing import PriceTable, messages_text


class OverBudget(BackendError):
    """--max-cost reached: this request (and every later one) was not sent."""


@dataclass
class Budget:
    """Money spent and reserved (worst cases of requests in flight) against an optional limit."""

    limit: float | None
    spent: float = 0.0
    reserved: float = 0.0

    def admit(self, worst: float) -> bool:
        if self.limit is not None and self.spent + self.reserved + worst > self.limit:
            return False
        self.reserved += worst
        return True


class CostedBackend:
    """`spent_now` is the cost of this layer's replies; `stopped` is set once a request is refused."""

    def __init__(self, backend: Backend, prices: PriceTable, budget: Budget | None = None):
        self.backend, self.prices = backend, prices
        self.budget = budget or Budget(None)
        self.name = backend.name
        self.spent_now = 0.0
        self.stopped = False

    def _admit(self, request: Request) -> float:
        """Reserve the request's worst case, or raise OverBudget."""
        worst = self.prices.worst_case(served_model(self.backend, request), messages_text(request.prompt.messages),
                                       request.params.max_tokens)
        if self.stopped or not self.budget.admit(worst):
            self.stopped = True
            raise OverBudget(f"stopped before exceeding --max-cost ${self.budget.limit:g}: "
                             f"${self.budget.spent:.4f} spent")
        return worst

    def _charge(self, request: Request, generation: Generation | None) -> None:
        if generation is None or generation.error:
            return
        cost = self.prices.reply_cost(served_model(self.backend, request), messages_text(request.prompt.messages),
                                      generation.text, generation.usage) or 0.0
        self.budget.spent += cost
        self.spent_now += cost

    async def acomplete(self, request: Request) -> Generation:
        worst = self._admit(request)
        try:
            generation = await self.backend.acomplete(request)
        finally:
            self.budget.reserved -= worst
        self._charge(request, generation)
        return generation

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        """The requests in order while the budget admits them; OverBudget (with the generations of the
        admitted ones) when it stopped before the end."""
        worst = []
        for request in requests:
            try:
                worst.append(self._admit(request))
            except OverBudget:
                break
        admitted = list(requests[:len(worst)])
        try:
            generations = self.backend.generate(admitted) if admitted else []
        except BackendError as e:
            for request, generation in zip(admitted, e.partial):
                self._charge(request, generation)
            e.partial = [*e.partial, *[None] * (len(requests) - len(e.partial))]
            raise
        finally:
            self.budget.reserved -= sum(worst)
        for request, generation in zip(admitted, generations):
            self._charge(request, generation)
        if len(admitted) < len(requests):
            raise OverBudget(f"stopped before exceeding --max-cost ${self.budget.limit:g}: ${self.budget.spent:.4f} "
                             f"spent, {len(requests) - len(admitted)} requests not sent",
                             partial=[*generations, *[None] * (len(requests) - len(admitted))])
        return generations
