"""Distill: a teacher's verdict on every item (both answer orders for pairs, K samples if asked),
cached, resumable and costed.

    items.jsonl -> DIR/items.jsonl      (the judged items, for `filter` to render training prompts)
                   DIR/cache.sqlite     (every reply, committed as it arrives)
                   DIR/verdicts.jsonl   (rebuilt from the cache in item order after every run)
                   DIR/stats.json, DIR/manifest.json

Everything is checked (items, template fields, prices) before the first request, so bad input
costs nothing. A rerun sends only the requests whose reply is not cached; a kill loses at most the
requests in flight. `--max-cost` admits a request only while the money spent, plus the worst case
of the requests in flight and of this one, stays within the budget.

`--batch` sends the same requests through the OpenAI Batch API instead (judge.batch): half the
price, the replies in the same cache, so the verdicts are the same.

CritiqueLLM's reference-free rewrite (`reference_free_rewrite`, pointwise): after a reference-based
critique, a second turn asks the teacher to rewrite it without the reference; the rewrite is the
training target for the prompt without the reference (`meta.variant == "reference-free"`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .batch import RETRY_MODES, BatchLedger, BatchRunner, batch_client, input_lines, run_batches, split_lines
from .cache import ReplyCache, request_key
from .errors import BudgetExceeded, ConfigError, InputError, TemplateError
from .jsonl import atomic_open, iter_json_rows, read_items, write_json, write_jsonl
from .backends.base import Generation
from .judging import orders_for, verdict_from
from .manifest import write_manifest
from .pricing import PriceTable, estimate_tokens
from .records import Item, Verdict
from .teacher import CAUSES, Teacher, TeacherConfig
from .templates import Template, get_template

REWRITE_VARIANT = "reference-free"
REWRITE_INSTRUCTION = (
    "Rewrite your evaluation above for a reader who cannot see the reference answer. Do not mention, quote or "
    "allude to the reference answer; justify the same judgement from the question and the response alone. "
    "Keep exactly the same output format and the same final score."
)
TYPICAL_REPLY_TOKENS = 256  # dry-run assumption for a critique's length (the upper bound uses max_tokens)


@dataclass
class DistillConfig:
    input: str  # items JSONL (PairItems for pairwise templates, SingleItems for pointwise)
    template: str  # template name (or name@version)
    teacher: TeacherConfig
    out: str  # output folder
    mode: str | None = None  # "pairwise" | "pointwise"; must match the template's (default: the template's)
    swap: bool = True  # pairwise: judge both answer orders
    samples: int = 1  # ask K times per (item, order); K > 1 wants temperature > 0
    max_cost: float | None = None  # USD for the whole job, cached replies included
    reference_free_rewrite: bool = False
    verdict_only: bool = False  # ask for the verdict alone, constrained to the template's verdict regex
    prices: str | None = None  # price table (default configs/prices.yaml)
    progress: bool = True
    batch: bool = False  # send through the Batch API (judge.batch) instead of live requests
    batch_retry: str = "live"  # rows of a batch's error file: sent "live", or in one follow-up "batch"
    batch_cancel: bool = False  # cancel this run's open batches, keep what they completed, submit nothing
    batch_max_requests: int = 50_000  # per input file (OpenAI's limit)
    batch_max_bytes: int = 200_000_000  # per input file (OpenAI's limit: 200 MB)
    batch_poll: float = 30.0  # seconds between status checks of open batches

    def __post_init__(self):
        if self.samples < 1:
            raise ConfigError(f"--samples must be at least 1, got {self.samples}")
        if self.max_cost is not None and self.max_cost < 0:
            raise ConfigError(f"--max-cost must be 0 or more, got {self.max_cost}")
        if self.batch_retry not in RETRY_MODES:
            raise ConfigError(f"--batch-retry must be one of {', '.join(RETRY_MODES)}, got {self.batch_retry!r}")
        if self.batch_max_requests < 1 or self.batch_max_bytes < 1 or self.batch_poll <= 0:
            raise ConfigError("--batch-max-requests, --batch-max-bytes and --batch-poll must be positive")


@dataclass(frozen=True)
class Call:
    """One request: an item in one order, one sample, possibly the rewrite turn."""

    item: Item
    order: str
    sample: int
    messages: list[dict]
    key: str
    variant: str | None = None

    @property
    def prompt_text(self) -> str:
        return "\n".join(str(m["content"]) for m in self.messages)


@dataclass
class Plan:
    """Every first-turn call, in the order verdicts are written, plus how to derive rewrite turns."""

    config: DistillConfig
    template: Template
    items: list[Item]
    calls: list[Call]

    @property
    def model(self) -> str:
        return self.config.teacher.model

    def key(self, messages: list[dict], sample: int, variant: str | None = None) -> str:
        params = {**self.config.teacher.sampling(sample), "sample": sample, "template": self.template.key,
                  "template_hash": self.template.text_hash}
        if variant:
            params["variant"] = variant
        return request_key(self.model, messages, params)

    def rewrite_of(self, call: Call, reply: dict) -> Call | None:
        """The rewrite turn after `call`'s reply; None when no rewrite is due (option off, item without
        a reference, or a first reply that does not parse: rewriting it would not give a usable target)."""
        if not self.config.reference_free_rewrite or call.variant or not call.item.reference:
            return None
        if not self.template.parse(reply["text"]).ok:
            return None
        messages = [*call.messages, {"role": "assistant", "content": reply["text"]},
                    {"role": "user", "content": REWRITE_INSTRUCTION}]
        return Call(call.item, call.order, call.sample, messages, self.key(messages, call.sample, REWRITE_VARIANT),
                    REWRITE_VARIANT)

    def rewrite_expected(self, call: Call) -> bool:
        """Whether a first turn is followed by a rewrite if its reply parses."""
        return self.config.reference_free_rewrite and not call.variant and bool(call.item.reference)


def make_plan(config: DistillConfig) -> Plan:
    """Read and check everything a run needs, before any request: items (file:line errors), template
    and mode, every prompt rendered."""
    template = get_template(config.template)
    if config.mode and config.mode != template.mode:
        raise ConfigError(f"template {template.name} is {template.mode} but --mode is {config.mode}")
    if config.verdict_only:
        if config.reference_free_rewrite:
            raise ConfigError("--verdict-only asks for no critique, so there is nothing to rewrite; drop one of them")
        # A weak or local teacher that cannot keep the reply format is held to it by the server
        # (vLLM structured outputs); the training target is then the verdict alone.
        config.teacher = dataclasses.replace(config.teacher, regex=template.verdict_regex,
                                             max_tokens=template.verdict_max_tokens)
    if config.reference_free_rewrite:
        if template.mode != "pointwise" or template.optional != "reference" or not template.prompt_without \
                or "{reference}" not in template.prompt:
            raise ConfigError(f"--reference-free-rewrite needs a pointwise template with and without a reference "
                              f"(e.g. prometheus-absolute); {template.name} is not one")
    items = read_items(config.input)
    plan = Plan(config, template, items, [])
    for index, item in enumerate(items):
        for order in orders_for(config.swap, template.mode):
            try:
                messages = template.render(item, order).messages
            except TemplateError as e:
                raise InputError(e.reason, config.input, _line_of(config.input, index)) from None
            for sample in range(config.samples):
                plan.calls.append(Call(item, order, sample, messages, plan.key(messages, sample)))
    return plan


def _line_of(path: str, index: int) -> int:
    """The file line of the index-th item (blank lines are skipped by the reader)."""
    return [number for number, _ in iter_json_rows(path)][index]


def _keep_items(source: str, target: Path) -> None:
    """DIR/items.jsonl, for filter: the (validated) input byte for byte, rewritten only when it changed."""
    data = Path(source).read_bytes()
    if not (target.exists() and target.read_bytes() == data):
        with atomic_open(target, "wb") as handle:
            handle.write(data)


def _reply_cost(prices: PriceTable, model: str, call: Call, reply: dict) -> float | None:
    """USD of one reply from the API's usage, or from the chars/4 estimate when the server sent none."""
    usage = reply.get("usage") or {"prompt_tokens": estimate_tokens(call.prompt_text),
                                   "completion_tokens": estimate_tokens(reply["text"])}
    return prices.cost(model, usage, batch="batch" in reply)


@dataclass
class _Budget:
    """--max-cost: a request goes out only if spent + in-flight worst cases + its own worst case fit.
    The worst case is twice the chars/4 token estimate for the prompt plus max_tokens of output."""

    limit: float | None
    spent: float = 0.0
    reserved: float = 0.0

    def admit(self, worst: float) -> bool:
        if self.limit is not None and self.spent + self.reserved + worst > self.limit:
            return False
        self.reserved += worst
        return True


@dataclass
class _Run:
    plan: Plan
    cache: ReplyCache
    prices: PriceTable
    budget: _Budget
    progress: object
    teacher: Teacher | None = None
    calling_seconds: float = 0.0
    hits: int = 0
    cost_this_run: float = 0.0
    budget_stop: bool = False

    async def execute(self, work: list[Call]) -> None:
        queue = iter(work)  # shared by the workers: each call is taken once
        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(min(self.plan.config.teacher.concurrency, len(work))):
                    group.create_task(self._worker(queue))
        except ExceptionGroup as eg:
            raise eg.exceptions[0] from None
        finally:
            await self.teacher.aclose()

    async def _worker(self, queue: Iterator[Call]) -> None:
        for call in queue:
            reply = await self._fetch(call)
            if reply is None:
                return
            if self.plan.rewrite_expected(call):
                rewrite = self.plan.rewrite_of(call, reply)
                if rewrite is None:
                    self._tick()  # the rewrite the bar counted on is not due (the reply did not parse)
                elif self.cache.get(rewrite.key) is not None:
                    self.hits += 1
                    self._tick()
                elif await self._fetch(rewrite) is None:
                    return

    async def _fetch(self, call: Call) -> dict | None:
        price = self.prices.lookup(self.plan.model)
        worst = price.cost(2 * estimate_tokens(call.prompt_text), self.plan.config.teacher.max_tokens) if price else 0.0
        if self.budget_stop or not self.budget.admit(worst):
            self.budget_stop = True
            return None
        try:
            sampling = self.plan.config.teacher.sampling(call.sample)
            reply = (await self.teacher.complete(call.messages, sampling)).to_json()
        finally:
            self.budget.reserved -= worst
        self.cache.put(call.key, self.plan.model, {"messages": call.messages, **sampling}, reply)
        cost = _reply_cost(self.prices, self.plan.model, call, reply) or 0.0
        self.budget.spent += cost
        self.cost_this_run += cost
        self._tick()
        return reply

    def _tick(self) -> None:
        if self.progress is not None:
            retries = sum(self.teacher.retries.values())
            self.progress.set_postfix_str(f"cost ${self.budget.spent:.4f} hits {self.hits} retries {retries}",
                                          refresh=False)
            self.progress.update(1)


def _answered(plan: Plan, cache: ReplyCache) -> list[tuple[Call, dict]]:
    """(call, reply) for every cached reply of the plan, first turns and rewrites, in verdict order."""
    first = cache.get_many(c.key for c in plan.calls)
    pairs = [(c, first[c.key]) for c in plan.calls if c.key in first]
    rewrites = {c.key: plan.rewrite_of(c, r) for c, r in pairs}
    second = cache.get_many(r.key for r in rewrites.values() if r is not None)
    out = []
    for call, reply in pairs:
        out.append((call, reply))
        rewrite = rewrites[call.key]
        if rewrite is not None and rewrite.key in second:
            out.append((rewrite, second[rewrite.key]))
    return out


def _unique(calls) -> list[Call]:
    """One call per key: items with identical content make identical requests, asked once."""
    first: dict[str, Call] = {}
    for call in calls:
        first.setdefault(call.key, call)
    return list(first.values())


def _paid(answered: list[tuple[Call, dict]]) -> list[tuple[Call, dict]]:
    """One (call, reply) per request actually paid for: identical items share a reply."""
    return list({c.key: (c, r) for c, r in answered}.values())


def _pending(plan: Plan, answered: list[tuple[Call, dict]]) -> list[Call]:
    """Calls still to send: uncached first turns, and rewrites of cached first turns."""
    done = {c.key for c, _ in answered}
    rewrites = (plan.rewrite_of(c, r) for c, r in answered)
    return _unique([c for c in plan.calls if c.key not in done] + [r for r in rewrites if r and r.key not in done])


def _expected_total(plan: Plan) -> int:
    first = _unique(plan.calls)
    return len(first) + sum(plan.rewrite_expected(c) for c in first)


def _verdict(plan: Plan, call: Call, reply: dict) -> Verdict:
    # the verdict as score and the judge server read theirs (a teacher that fails stops the run instead)
    generation = Generation(text=reply["text"], usage=reply.get("usage"))
    verdict = verdict_from(plan.template, call.item.id, call.order, generation, mode="full", judge=plan.model,
                           sample=call.sample)
    if call.variant:
        verdict.meta = {"variant": call.variant}
    return verdict


def _progress(plan: Plan, work: list[Call]):
    """A bar over this run's requests (rate and ETA are this run's); cached ones show as `hits`."""
    from tqdm import tqdm

    total = len(work) + sum(plan.rewrite_expected(c) for c in work)
    return tqdm(total=total, unit="call", desc="distill", dynamic_ncols=True, smoothing=0.1,
                disable=not plan.config.progress)


def distill(config: DistillConfig) -> dict:
    """Run (or resume) a distillation; returns the stats also written to OUT/stats.json. Raises
    BudgetExceeded after writing everything when --max-cost stopped it, TeacherError when the
    teacher fails for good (what was answered is kept), ConfigError while another run writes OUT."""
    from .runlock import RunLock

    plan = make_plan(config)  # bad input is refused before OUT is made
    with RunLock(Path(config.out) / ".lock", what=f"distill --out {config.out}"):  # one payer per folder
        return _distill(plan)


def _distill(plan: Plan) -> dict:
    config = plan.config
    prices = PriceTable.load(config.prices)
    if config.max_cost is not None and prices.lookup(plan.model) is None:
        raise ConfigError(f"--max-cost needs a price for {plan.model!r}: {prices.describe(plan.model)}")
    out = Path(config.out)
    _keep_items(config.input, out / "items.jsonl")
    started = time.monotonic()
    cache = ReplyCache(out / "cache.sqlite")
    ledger = BatchLedger(out / "cache.sqlite")
    answered = _answered(plan, cache)
    work = _pending(plan, answered)
    run = _Run(plan, cache, prices, _Budget(config.max_cost, _spent(prices, plan, answered)), None,
               hits=len(answered))
    batch = None
    stopped = None
    try:
        if (config.batch or config.batch_cancel) and (work or ledger.open_files()):
            batch = BatchRunner(plan, cache, ledger, batch_client(config.teacher), prices, run.budget,
                                pending=lambda: _pending(plan, _answered(plan, cache)),
                                spent=lambda: _spent(prices, plan, _answered(plan, cache)))
            work = asyncio.run(run_batches(batch, cancel=config.batch_cancel))  # what is left to send live
            run.budget_stop = batch.budget_stop
            run.budget.spent, run.budget.reserved = _spent(prices, plan, _answered(plan, cache)), 0.0
        elif work and ledger.open_files():
            raise ConfigError(f"{len(ledger.open_files())} batch(es) submitted by an earlier --batch run in {out} "
                              f"are still open: rerun with --batch to collect them, or --batch-cancel")
        if work:  # a fully cached rerun needs no client, no event loop, no progress bar
            run.teacher = Teacher(config.teacher)
            run.progress = _progress(plan, work)
            calling = time.monotonic()
            try:
                asyncio.run(run.execute(work))
            finally:
                run.calling_seconds = time.monotonic() - calling
        stopped = "max-cost" if run.budget_stop else None
    except BaseException as e:
        stopped = f"{type(e).__name__}: {e}"
        raise
    finally:
        if run.progress is not None:
            run.progress.close()
        fresh = None if run.teacher or batch else answered  # nothing was sent: the cache has not changed
        stats = _finish(plan, cache, prices, run, stopped, time.monotonic() - started, fresh, batch, ledger)
        cache.close()
        ledger.close()
    if run.budget_stop:
        raise BudgetExceeded(f"stopped before exceeding --max-cost ${config.max_cost:g}: ${stats['cost_usd']:.4f} "
                             f"spent, {stats['calls']['missing']} calls left; rerun with a larger --max-cost to "
                             f"continue (cached replies are kept)")
    return stats


def _spent(prices: PriceTable, plan: Plan, answered: list[tuple[Call, dict]]) -> float:
    """USD paid for the answered requests (what a budget starts from)."""
    return sum(_reply_cost(prices, plan.model, c, r) or 0.0 for c, r in _paid(answered))


def _finish(plan: Plan, cache: ReplyCache, prices: PriceTable, run: _Run, stopped: str | None, wall: float,
            answered: list[tuple[Call, dict]] | None, batch: BatchRunner | None, ledger: BatchLedger) -> dict:
    """Rebuild verdicts.jsonl from the cache, write stats.json and manifest.json."""
    config, out = plan.config, Path(plan.config.out)
    answered = _answered(plan, cache) if answered is None else answered
    verdicts = [_verdict(plan, c, r) for c, r in answered]
    write_jsonl(out / "verdicts.jsonl", verdicts)
    tokens = Counter()
    for _, reply in _paid(answered):
        tokens.update({k: v for k, v in (reply.get("usage") or {}).items() if isinstance(v, int)})
    costs = [_reply_cost(prices, plan.model, c, r) for c, r in _paid(answered)]
    done = {c.key for c, _ in answered}  # rewrites: due after parsed replies, expected after unanswered calls
    rewrites_due = sum(plan.rewrite_of(c, r) is not None for c, r in answered) + sum(
        plan.rewrite_expected(c) for c in plan.calls if c.key not in done)
    expected = len(plan.calls) + rewrites_due
    stats = {
        "teacher": {"model": plan.model, "base_url": config.teacher.resolved_base_url or "https://api.openai.com/v1"},
        "template": plan.template.key, "mode": plan.template.mode, "items": len(plan.items),
        "calls": {"planned": expected, "answered": len(answered), "missing": expected - len(answered),
                  "by_batch": sum("batch" in r for _, r in _paid(answered))},
        "verdicts": len(verdicts), "parse_failures": sum(not v.parse_ok for v in verdicts),
        "tokens": {plan.model: dict(tokens)},
        "cost_usd": None if None in costs else round(sum(costs), 6), "price": prices.describe(plan.model),
        "this_run": {
            "sent": run.teacher.calls if run.teacher else 0, "cache_hits": run.hits,
            "retries": {cause: run.teacher.retries[cause] if run.teacher else 0 for cause in CAUSES},
            "cost_usd": round(run.cost_this_run, 6),
            "wall_seconds": round(wall, 3), "calling_seconds": round(run.calling_seconds, 3), "stopped": stopped,
            "batch": batch.report.to_json() if batch else None,
        },
        "batches": ledger.summary(),
    }
    if config.reference_free_rewrite:
        stats["rewrites"] = {"due": rewrites_due, "answered": sum(c.variant is not None for c, _ in answered)}
    write_json(out / "stats.json", stats)
    teacher = dataclasses.replace(config.teacher, api_key="***" if config.teacher.api_key else None)
    write_manifest(out, "distill", config={**dataclasses.asdict(config), "teacher": dataclasses.asdict(teacher)},
                   inputs={"items": config.input},
                   counts={"items": len(plan.items), "verdicts": len(verdicts), "missing": stats["calls"]["missing"],
                           "parse_failures": stats["parse_failures"], "by_batch": stats["calls"]["by_batch"]},
                   batches=[b["batch_id"] for b in stats["batches"]],
                   teacher=stats["teacher"], usage=stats["tokens"], cost_usd=stats["cost_usd"])
    return stats


def estimate(config: DistillConfig) -> dict:
    """--dry-run: the calls a run would send (cached ones excluded), their tokens estimated from the
    prompt text at about 4 characters per token, and the cost. Sends nothing, writes nothing."""
    plan = make_plan(config)
    prices = PriceTable.load(config.prices)
    cache_path = Path(config.out) / "cache.sqlite"
    answered: list[tuple[Call, dict]] = []
    if cache_path.exists():
        with ReplyCache(cache_path) as cache:
            answered = _answered(plan, cache)
    work = _pending(plan, answered)
    # rewrites of first turns not answered yet: prompt = first turn + a typical reply + the instruction
    typical = min(config.teacher.max_tokens, TYPICAL_REPLY_TOKENS)
    unanswered_first = [c for c in work if not c.variant]
    future_rewrites = [c for c in unanswered_first if plan.rewrite_expected(c)]
    n_calls = len(work) + len(future_rewrites)
    input_tokens = sum(estimate_tokens(c.prompt_text) for c in work) + sum(
        estimate_tokens(c.prompt_text + REWRITE_INSTRUCTION) + typical for c in future_rewrites)
    price = prices.lookup(plan.model)
    files = split_lines(input_lines(plan, work), config.batch_max_requests, config.batch_max_bytes) if work else []
    return {
        "model": plan.model, "template": plan.template.key, "items": len(plan.items),
        "orders": len(orders_for(config.swap, plan.template.mode)), "samples": config.samples,
        "rewrites": sum(plan.rewrite_expected(c) for c in plan.calls),
        "identical": len(plan.calls) - len(_unique(plan.calls)),
        "calls_total": _expected_total(plan), "calls_cached": len({c.key for c, _ in answered}),
        "calls_to_send": n_calls,
        "input_tokens": input_tokens, "output_tokens_typical": n_calls * typical,
        "output_tokens_max": n_calls * config.teacher.max_tokens, "typical_reply_tokens": typical,
        "cost_usd": price.cost(input_tokens, n_calls * typical) if price else None,
        "cost_usd_max": price.cost(input_tokens, n_calls * config.teacher.max_tokens) if price else None,
        "batch_cost_usd": price.cost(input_tokens, n_calls * typical, batch=True) if price else None,
        "batch_cost_usd_max": price.cost(input_tokens, n_calls * config.teacher.max_tokens, batch=True) if price else None,
        "batch_files": len(files), "batch": config.batch,
        "price": prices.describe(plan.model), "token_estimate": "characters / 4",
    }
