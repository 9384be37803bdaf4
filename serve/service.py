"""What the judge routes do: a request becomes an item, the judge's template renders it (both
orders with `swap`), the engine answers, the template's parser makes the verdicts. Rendering,
generation parameters and parsing are `judge.scoring.judging`'s, so the server judges exactly like
`judgeforge score`.

Inputs are measured with the model's tokenizer before anything reaches the engine: a prompt that
leaves no room for a verdict in the context is refused (413), a free-text reply budget is cut to
the room left.
"""

from __future__ import annotations

import asyncio
import dataclasses
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from judge.backends.base import Request
from judge.backends.encoding import encode_prompt
from judge.backends.openai import OpenAIBackend
from judge.core.errors import ConfigError
from judge.core.records import PairItem, SingleItem, Verdict
from judge.eval.metrics import combine_orders
from judge.scoring.judging import orders_for, params_for, request_for, verdict_from
from judge.templates import Template

from serve.errors import ApiError, Invalid, NotFound, TooLarge
from serve.judges import Judge
from serve.protocol import (BatchRequest, BatchResponse, OrderVerdict, PairwiseRequest, PairwiseResponse, PointwiseRequest,
                       PointwiseResponse, Usage)


@dataclass(frozen=True)
class EngineJob:
    """A checked request, rendered and ready for the engine."""

    body: PairwiseRequest | PointwiseRequest
    judge: Judge
    template: Template
    item_id: str
    orders: tuple[str, ...]
    requests: list[Request]


@dataclass(frozen=True)
class Limits:
    timeout: float = 600.0  # seconds per HTTP request (a batch is one request)
    max_batch: int = 64  # items per /v1/judge/batch
    max_tokens: int = 512  # full-mode reply budget when a request sets none
    max_model_len: int | None = None  # the engine's context; None skips the length check
    max_body: int = 16 * 2**20  # bytes per request body (413 above, before parsing)
    max_in_flight: int = 256  # POST requests worked on at once (503 + Retry-After above)
    body_timeout: float = 30.0  # seconds for a request body to arrive (408 after)


class JudgeService:
    def __init__(self, judges: list[Judge], backend: OpenAIBackend, *, tokenizer=None, limits: Limits = Limits()):
        if not judges:
            raise ConfigError("the server has no judge to offer")
        self.judges = {judge.name: judge for judge in judges}
        self.default = judges[0]
        self.backend = backend
        self.tokenizer = tokenizer
        self.limits = limits
        # Rendering and tokenizing a request is CPU work: it runs here, off the event loop, so a huge
        # input cannot stall /health or the other requests; one thread, as a tokenizer is not
        # guaranteed safe to call from several at once.
        self.rendering = ThreadPoolExecutor(1, thread_name_prefix="judgeforge-render")

    def close(self) -> None:
        self.rendering.shutdown(wait=False, cancel_futures=True)

    async def off_loop(self, work, *args):
        return await asyncio.get_running_loop().run_in_executor(self.rendering, work, *args)

    def judge_for(self, name: str | None) -> Judge:
        if name is None:
            return self.default
        if name not in self.judges:
            raise NotFound(f"no judge named {name!r}; this server has: {', '.join(self.judges)}", "judge")
        return self.judges[name]

    def build_job(self, body: PairwiseRequest | PointwiseRequest, where: str = "") -> EngineJob:
        """Everything short of the engine call, so a bad request (or batch item) is refused before
        any work is sent. `where` locates the item in error params ("items[3].")."""
        pairwise = isinstance(body, PairwiseRequest)
        try:
            judge = self.judge_for(body.judge)
            template = judge.template("pairwise" if pairwise else "pointwise", body.template)
            try:
                params = params_for(template, body.mode, max_tokens=body.max_tokens or self.limits.max_tokens)
            except ConfigError as e:
                raise Invalid(str(e), "mode") from None
        except ApiError as e:
            raise type(e)(e.message, where + (e.param or "")) from None
        fields = body.model_dump(include={"question", "reference", "rubric", "context"})
        item = (PairItem(id=body.id or "request", answer1=body.answer1, answer2=body.answer2, **fields) if pairwise
                else SingleItem(id=body.id or "request", answer=body.answer, **fields))
        orders = orders_for(pairwise and body.swap, template.mode)
        requests = [self.fit(request_for(template, item, order, params, judge.name), template.verdict_max_tokens, where)
                    for order in orders]
        return EngineJob(body, judge, template, item.id, orders, requests)

    async def run(self, job: EngineJob) -> PairwiseResponse | PointwiseResponse:
        """The engine calls (both orders concurrently when swapped) and the verdicts."""
        generations = await asyncio.gather(*(self.backend.acomplete(r) for r in job.requests))
        verdicts = [verdict_from(job.template, job.item_id, order, generation, mode=job.body.mode, judge=job.judge.name)
                    for order, generation in zip(job.orders, generations)]
        common = dict(id=job.body.id, judge=job.judge.name, template=job.template.key, mode=job.body.mode)
        if isinstance(job.body, PairwiseRequest):
            return _pairwise(verdicts, common)
        (verdict,) = verdicts
        return PointwiseResponse(**common, score=verdict.score, reason=verdict.reason, raw=verdict.raw,
                                 parse_ok=verdict.parse_ok, error=verdict.error, logprobs=verdict.logprobs,
                                 usage=_usage([verdict.usage]))

    async def judge(self, body: PairwiseRequest | PointwiseRequest) -> PairwiseResponse | PointwiseResponse:
        return await self.run(await self.off_loop(self.build_job, body))

    async def batch(self, body: BatchRequest) -> BatchResponse:
        if len(body.items) > self.limits.max_batch:
            raise TooLarge(f"the batch has {len(body.items)} items; this server takes at most {self.limits.max_batch} "
                           f"per request", "items")
        jobs = await self.off_loop(lambda: [self.build_job(item, f"items[{i}].") for i, item in enumerate(body.items)])
        results = await asyncio.gather(*(self.run(job) for job in jobs))
        return BatchResponse(results=list(results), usage=_usage([r.usage.model_dump() for r in results]))

    def fit(self, request: Request, minimum: int, where: str) -> Request:
        """Refuse a prompt that leaves under `minimum` tokens of context; cut the reply budget to the room."""
        context = self.limits.max_model_len
        if self.tokenizer is None or not context:
            return request
        size = len(encode_prompt(self.tokenizer, request.prompt))
        room = context - size
        if room < minimum:
            raise TooLarge(f"the judge prompt is {size} tokens and the judge's context is {context}: no room for a "
                           f"{minimum}-token verdict; shorten the input", where.rstrip(".") or None)
        if room < request.params.max_tokens:
            return dataclasses.replace(request, params=dataclasses.replace(request.params, max_tokens=room))
        return request


def _order(verdict: Verdict) -> OrderVerdict:
    return OrderVerdict(order=verdict.order, winner=verdict.winner, scores=verdict.scores, reason=verdict.reason,
                        raw=verdict.raw, parse_ok=verdict.parse_ok, error=verdict.error, logprobs=verdict.logprobs,
                        usage=_usage([verdict.usage]))


def _pairwise(verdicts: list[Verdict], common: dict) -> PairwiseResponse:
    first = verdicts[0]
    if len(verdicts) == 1:
        return PairwiseResponse(**common, winner=first.winner, scores=first.scores, reason=first.reason,
                                parse_ok=first.parse_ok, logprobs=first.logprobs, verdicts=[_order(first)],
                                usage=_usage([v.usage for v in verdicts]))
    ab, ba = verdicts
    parsed = ab.parse_ok and ba.parse_ok
    scores = ([round((a + b) / 2, 6) for a, b in zip(ab.scores, ba.scores)]
              if parsed and ab.scores and ba.scores and len(ab.scores) == len(ba.scores) else None)
    return PairwiseResponse(**common, winner=combine_orders(ab.winner, ba.winner), scores=scores,
                            reason=ab.reason, parse_ok=parsed, consistent=ab.winner == ba.winner if parsed else None,
                            verdicts=[_order(v) for v in verdicts], usage=_usage([v.usage for v in verdicts]))


def _usage(usages: list[dict | None]) -> Usage:
    prompt = sum((u or {}).get("prompt_tokens", 0) for u in usages)
    completion = sum((u or {}).get("completion_tokens", 0) for u in usages)
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)
