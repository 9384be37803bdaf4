"""The end of every distill run: verdicts.jsonl rebuilt from the cache in item order, stats.json
and manifest.json (calls, tokens and cost, what this run sent, retried and spent)."""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path
from typing import Protocol

from judge.backends.cached import generation_of
from judge.backends.pricing import PriceTable
from judge.backends.retry import CAUSES
from judge.core.jsonl import write_json, write_jsonl
from judge.core.manifest import mask_urls, write_manifest
from judge.core.records import Verdict
from judge.distill.plan import Call, Plan, answered, paid
from judge.scoring.judging import verdict_from


class LiveCounts(Protocol):
    """What the stats read of a run's live phase (judge.distill.run.Run), declared here so the stats
    do not import the run that calls them."""
    teacher: object  # the OpenAIBackend, with .calls and .retries; None when nothing was sent live
    hits: int
    cost: float
    calling_seconds: float


def reply_cost(prices: PriceTable, plan: Plan, call: Call, reply: dict) -> float | None:
    """USD of one cached reply (at the Batch API's price when a batch answered it)."""
    return prices.reply_cost(plan.model, call.prompt_text, reply["text"], reply.get("usage"), batch="batch" in reply)


def spent(prices: PriceTable, plan: Plan, answers: list[tuple[Call, dict]]) -> float:
    """USD paid for the answered requests (what a budget starts from)."""
    return sum(reply_cost(prices, plan, c, r) or 0.0 for c, r in paid(answers))


def verdict_of(plan: Plan, call: Call, reply: dict) -> Verdict:
    # the verdict as score and the judge server read theirs (a teacher that fails stops the run instead)
    verdict = verdict_from(plan.template, call.item.id, call.order, generation_of(reply), mode="full",
                           judge=plan.model, sample=call.sample)
    if call.variant:
        verdict.meta = {"variant": call.variant}
    return verdict


def finish(plan: Plan, cache, prices: PriceTable, run: LiveCounts, stopped: str | None, wall: float,
           answers: list[tuple[Call, dict]] | None, batch, ledger) -> dict:
    """Rebuild verdicts.jsonl from the cache, write stats.json and manifest.json."""
    config, out = plan.config, Path(plan.config.out)
    answers = answered(plan, cache) if answers is None else answers
    verdicts = [verdict_of(plan, c, r) for c, r in answers]
    write_jsonl(out / "verdicts.jsonl", verdicts)
    tokens = Counter()
    for _, reply in paid(answers):
        tokens.update({k: v for k, v in (reply.get("usage") or {}).items() if isinstance(v, int)})
    costs = [reply_cost(prices, plan, c, r) for c, r in paid(answers)]
    duplicates = ledger.duplicate_cost()
    done = {c.key for c, _ in answers}  # rewrites: due after parsed replies, expected after unanswered calls
    rewrites_due = sum(plan.rewrite_of(c, r["text"]) is not None for c, r in answers) + sum(
        plan.rewrite_expected(c) for c in plan.calls if c.key not in done)
    expected = len(plan.calls) + rewrites_due
    teacher = run.teacher
    stats = {
        "teacher": {"model": plan.model, "base_url": mask_urls(config.teacher.where)},
        "template": plan.template.key, "mode": plan.template.mode, "items": len(plan.items),
        "calls": {"planned": expected, "answered": len(answers), "missing": expected - len(answers),
                  "by_batch": sum("batch" in r for _, r in paid(answers))},
        "verdicts": len(verdicts), "parse_failures": sum(not v.parse_ok for v in verdicts),
        "tokens": {plan.model: dict(tokens)},
        # duplicates: other batches made from a file in use, billed though their replies are not used
        "cost_usd": None if None in costs or duplicates is None else round(sum(costs) + duplicates, 6),
        "price": prices.describe(plan.model),
        "this_run": {
            "sent": teacher.calls if teacher else 0, "cache_hits": run.hits,
            "retries": {cause: teacher.retries[cause] if teacher else 0 for cause in CAUSES},
            "cost_usd": round(run.cost + (batch.report.cost_usd if batch else 0.0), 6),  # live and batch replies
            "wall_seconds": round(wall, 3), "calling_seconds": round(run.calling_seconds, 3), "stopped": stopped,
            "batch": batch.report.to_json() if batch else None,
        },
        "batches": ledger.summary(),
    }
    if config.reference_free_rewrite:
        stats["rewrites"] = {"due": rewrites_due, "answered": sum(c.variant is not None for c, _ in answers)}
    write_json(out / "stats.json", stats)
    settings = dataclasses.replace(config.teacher, api_key="***" if config.teacher.api_key else None)
    write_manifest(out, "distill", config={**dataclasses.asdict(config), "teacher": dataclasses.asdict(settings)},
                   inputs={"items": config.input},
                   counts={"items": len(plan.items), "verdicts": len(verdicts), "missing": stats["calls"]["missing"],
                           "parse_failures": stats["parse_failures"], "by_batch": stats["calls"]["by_batch"]},
                   batches=[b["batch_id"] for b in stats["batches"]],
                   teacher=stats["teacher"], usage=stats["tokens"], cost_usd=stats["cost_usd"])
    return stats
