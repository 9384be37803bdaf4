"""A distill run: the calls the cache does not answer go to the teacher, live (workers sharing one
queue, each call through teacher -> cost/budget -> cache) or through the Batch API (judge.distill.batch),
then stats.finish writes the verdicts and the stats."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from judge.backends.base import Generation
from judge.backends.cache import ReplyCache
from judge.backends.cached import CachedBackend
from judge.backends.costed import Budget, CostedBackend, OverBudget
from judge.backends.openai import OpenAIBackend
from judge.backends.pricing import PriceTable
from judge.core.errors import BudgetExceeded, ConfigError, TeacherError
from judge.core.jsonl import atomic_open
from judge.distill.batch import BatchLedger, BatchRunner, batch_client, run_batches
from judge.distill.config import DistillConfig
from judge.distill.plan import Call, Plan, answered, make_plan, pending
from judge.distill.stats import finish, spent


@dataclass
class Run:
    plan: Plan
    budget: Budget
    hits: int  # requests answered from the cache (before and during this run)
    teacher: OpenAIBackend | None = None
    costed: CostedBackend | None = None
    backend: CachedBackend | None = None
    progress: object = None
    calling_seconds: float = 0.0
    budget_stop: bool = False

    @property
    def cost(self) -> float:
        """USD of the replies this run received live."""
        return self.costed.spent_now if self.costed else 0.0

    def connect(self, cache: ReplyCache, prices: PriceTable) -> None:
        """The teacher with its layers: cost/budget (stopped already if the batch phase hit the budget), then cache."""
        self.teacher = self.plan.config.teacher.backend()
        self.costed = CostedBackend(self.teacher, prices, self.budget)
        self.costed.stopped = self.budget_stop
        self.backend = CachedBackend(self.costed, cache)

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
            generation = await self._ask(call)
            if generation is None:
                return
            if self.plan.rewrite_expected(call):
                rewrite = self.plan.rewrite_of(call, generation.text)
                if rewrite is None:
                    self._tick()  # the rewrite the bar counted on is not due (the reply did not parse)
                elif await self._ask(rewrite) is None:
                    return

    async def _ask(self, call: Call) -> Generation | None:
        """The call's reply (cached at once by the cache layer); None once the budget stops the run."""
        hits = self.backend.hits
        try:
            generation = await self.backend.acomplete(call.request)
        except OverBudget:
            self.budget_stop = True
            return None
        if generation.error:  # distill has no per-item failure record: the run stops, as for any refusal
            raise TeacherError(generation.error)
        self.hits += self.backend.hits - hits
        self._tick()
        return generation

    def _tick(self) -> None:
        if self.progress is not None:
            retries = sum(self.teacher.retries.values())
            self.progress.set_postfix_str(f"cost ${self.budget.spent:.4f} hits {self.hits} retries {retries}",
                                          refresh=False)
            self.progress.update(1)


def _keep_items(source: str, target: Path) -> None:
    """DIR/items.jsonl, for filter: the (validated) input byte for byte, rewritten only when it changed."""
    data = Path(source).read_bytes()
    if not (target.exists() and target.read_bytes() == data):
        with atomic_open(target, "wb") as handle:
            handle.write(data)


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
    from judge.core.runlock import RunLock

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
    answers = answered(plan, cache)
    work = pending(plan, answers)

    def paid_so_far() -> float:  # the replies paid for, and batches made twice from one file (judge.distill.batch_duplicates)
        return spent(prices, plan, answered(plan, cache)) + (ledger.duplicate_cost() or 0.0)

    run = Run(plan, Budget(config.max_cost, paid_so_far()), hits=len(answers))
    batch = None
    stopped = None
    try:
        if (config.batch or config.batch_cancel) and (work or ledger.open_files()):
            batch = BatchRunner(plan, cache, ledger, batch_client(config.teacher), prices, run.budget,
                                pending=lambda: pending(plan, answered(plan, cache)),
                                spent=paid_so_far)
            work = asyncio.run(run_batches(batch, cancel=config.batch_cancel))  # what is left to send live
            run.budget_stop = batch.budget_stop
            run.budget.spent, run.budget.reserved = paid_so_far(), 0.0
        elif work and ledger.open_files():
            raise ConfigError(f"{len(ledger.open_files())} batch(es) submitted by an earlier --batch run in {out} "
                              f"are still open: rerun with --batch to collect them, or --batch-cancel")
        if work:  # a fully cached rerun needs no client, no event loop, no progress bar
            run.connect(cache, prices)
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
        fresh = None if run.teacher or batch else answers  # nothing was sent: the cache has not changed
        stats = finish(plan, cache, prices, run, stopped, time.monotonic() - started, fresh, batch, ledger)
        cache.close()
        ledger.close()
    if run.budget_stop:
        raise BudgetExceeded(f"stopped before exceeding --max-cost ${config.max_cost:g}: ${stats['cost_usd']:.4f} "
                             f"spent, {stats['calls']['missing']} calls left; rerun with a larger --max-cost to "
                             f"continue (cached replies are kept)")
    return stats
