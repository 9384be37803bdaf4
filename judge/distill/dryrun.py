"""distill --dry-run: what a run would send and cost, from the prompts alone."""

from __future__ import annotations

from pathlib import Path

from judge.backends.cache import ReplyCache
from judge.backends.pricing import PriceTable, estimate_tokens
from judge.distill.batch import input_lines, split_lines
from judge.distill.batch_ledger import BatchLedger
from judge.distill.config import DistillConfig
from judge.distill.plan import REWRITE_INSTRUCTION, Call, answered, expected_total, make_plan, pending, unique
from judge.scoring.judging import orders_for

TYPICAL_REPLY_TOKENS = 256  # dry-run assumption for a critique's length (the upper bound uses max_tokens)


def estimate(config: DistillConfig) -> dict:
    """--dry-run: the calls a run would send (cached ones excluded), their tokens estimated from the
    prompt text at about 4 characters per token, and the cost. Sends nothing, writes nothing."""
    plan = make_plan(config)
    prices = PriceTable.load(config.prices)
    cache_path = Path(config.out) / "cache.sqlite"
    answers: list[tuple[Call, dict]] = []
    queued: set[str] = set()
    if cache_path.exists():
        with ReplyCache(cache_path) as cache:
            answers = answered(plan, cache)
        ledger = BatchLedger(cache_path)
        queued = ledger.open_keys()  # inside a batch already submitted: paid for there, not again
        ledger.close()
    pending_calls = pending(plan, answers)
    work = [c for c in pending_calls if c.key not in queued]
    # rewrites of first turns not answered yet (queued ones included: their second turn is still to
    # send): prompt = first turn + a typical reply + the instruction
    typical = min(config.teacher.max_tokens, TYPICAL_REPLY_TOKENS)
    unanswered_first = [c for c in pending_calls if not c.variant]
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
        "identical": len(plan.calls) - len(unique(plan.calls)),
        "calls_total": expected_total(plan), "calls_cached": len({c.key for c, _ in answers}),
        "calls_to_send": n_calls, "calls_in_open_batches": len(pending_calls) - len(work),
        "input_tokens": input_tokens, "output_tokens_typical": n_calls * typical,
        "output_tokens_max": n_calls * config.teacher.max_tokens, "typical_reply_tokens": typical,
        "cost_usd": price.cost(input_tokens, n_calls * typical) if price else None,
        "cost_usd_max": price.cost(input_tokens, n_calls * config.teacher.max_tokens) if price else None,
        "batch_cost_usd": price.cost(input_tokens, n_calls * typical, batch=True) if price else None,
        "batch_cost_usd_max": price.cost(input_tokens, n_calls * config.teacher.max_tokens, batch=True) if price else None,
        "batch_files": len(files), "batch": config.batch,
        "price": prices.describe(plan.model), "token_estimate": "characters / 4",
    }
