"""`judgeforge distill`."""

from __future__ import annotations


# Flags whose default lives in TeacherConfig / DistillConfig alone: argparse leaves them None unless
# given (the help texts quote the defaults; tests/test_distill.py checks them against the configs).
TEACHER_DEFAULTS = ("concurrency", "timeout", "max_retries", "temperature", "seed", "max_tokens")
DISTILL_DEFAULTS = ("swap", "samples", "batch_retry", "batch_max_requests", "batch_max_bytes", "batch_poll")


def _given(args, names: tuple[str, ...]) -> dict:
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def _config(args):
    from ..distill import DistillConfig, TeacherConfig

    teacher = TeacherConfig(model=args.teacher_model, base_url=args.teacher_base_url, **_given(args, TEACHER_DEFAULTS))
    return DistillConfig(input=args.input, template=args.template, teacher=teacher, out=args.out, mode=args.mode,
                         max_cost=args.max_cost, reference_free_rewrite=args.reference_free_rewrite,
                         verdict_only=args.verdict_only, prices=args.prices, batch=args.batch,
                         batch_cancel=args.batch_cancel, progress=not args.no_progress,
                         **_given(args, DISTILL_DEFAULTS))


def print_estimate(plan: dict) -> None:
    cost = "unknown" if plan["cost_usd"] is None else f"${plan['cost_usd']:.4f}, at most ${plan['cost_usd_max']:.4f}"
    rewrites = f" + {plan['rewrites']} reference-free rewrites" if plan["rewrites"] else ""
    identical = f", {plan['identical']} identical requests asked once" if plan["identical"] else ""
    print(f"dry run, nothing sent: {plan['calls_total']} calls to {plan['model']} ({plan['items']} items x "
          f"{plan['orders']} order(s) x {plan['samples']} sample(s){rewrites}{identical}); "
          f"{plan['calls_cached']} cached, {plan['calls_to_send']} to send")
    print(f"estimated input tokens:  {plan['input_tokens']:,} ({plan['token_estimate']})")
    print(f"estimated output tokens: {plan['output_tokens_typical']:,} if replies average "
          f"{plan['typical_reply_tokens']} tokens, at most {plan['output_tokens_max']:,}")
    print(f"estimated cost: {cost}{' (live)' if plan['cost_usd'] is not None else ''}")
    if plan["batch_cost_usd"] is not None:
        files = f"{plan['batch_files']} input file(s), " if plan["batch_files"] else ""
        print(f"estimated batch cost: ${plan['batch_cost_usd']:.4f}, at most ${plan['batch_cost_usd_max']:.4f} "
              f"(--batch: {files}results within 24 h){'' if plan['batch'] else '; this run would send live'}")
    print(f"price: {plan['price']}")


def print_stats(stats: dict, out: str) -> None:
    run = stats["this_run"]
    retries = ", ".join(f"{k} {v}" for k, v in run["retries"].items() if v) or "none"
    cost = "unknown" if stats["cost_usd"] is None else f"${stats['cost_usd']:.4f}"
    print(f"{stats['verdicts']} verdicts ({stats['parse_failures']} unparsed) in {out}/verdicts.jsonl; "
          f"this run: {run['sent']} calls sent, {run['cache_hits']} cached, retries: {retries}, "
          f"{run['wall_seconds']:.1f} s")
    batch = run.get("batch")
    if batch:
        errors = ", ".join(f"{k} {v}" for k, v in batch["error_rows"].items()) or "none"
        print(f"batch: {batch['submitted']} requests submitted in {batch['batches_created']} new batch(es), "
              f"{batch['reattached']} re-attached, {batch['cancelled']} cancelled; {batch['answered']} answered; "
              f"error rows: {errors}; retried live {batch['retried_live']}, in a follow-up batch "
              f"{batch['retried_batch']}; unresolved {batch['unresolved']}")
    by_batch = f", {stats['calls']['by_batch']} of the replies by batch" if stats["calls"]["by_batch"] else ""
    print(f"teacher cost so far: {cost} (price: {stats['price']}){by_batch}")


def cmd_distill(args) -> int:
    from ..distill import distill, estimate

    config = _config(args)
    if args.dry_run:
        print_estimate(estimate(config))
        return 0
    print_stats(distill(config), args.out)
    return 0


def register(verbs) -> None:
    import argparse

    p = verbs.add_parser("distill", help="collect a teacher's verdicts (cached, resumable, costed)",
                         description="Ask an OpenAI-compatible teacher (OpenAI, a vLLM server, Ollama) for a verdict "
                                     "on every item, both answer orders for pairs. Replies are cached in "
                                     "OUT/cache.sqlite: a rerun sends only what is missing. Writes OUT/items.jsonl, "
                                     "OUT/verdicts.jsonl, OUT/stats.json, OUT/manifest.json. The key comes from "
                                     "OPENAI_API_KEY, the endpoint from --teacher-base-url or OPENAI_BASE_URL.")
    p.add_argument("--input", required=True, help="items JSONL (pairs for pairwise templates, single answers for pointwise)")
    p.add_argument("--mode", required=True, choices=["pairwise", "pointwise"], help="must match the template's mode")
    p.add_argument("--template", required=True, help="prompt template name (see the README's template table)")
    p.add_argument("--teacher-model", required=True, help="model name at the endpoint, e.g. gpt-4o")
    p.add_argument("--teacher-base-url", help="OpenAI-compatible endpoint ending in /v1 (default: OPENAI_BASE_URL or OpenAI)")
    p.add_argument("--concurrency", type=int, help="requests in flight at once (default 8)")
    p.add_argument("--swap", action=argparse.BooleanOptionalAction,
                   help="pairwise: judge both answer orders (default on)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--samples", type=int, help="ask K times per item and order (use with --temperature > 0)")
    p.add_argument("--max-cost", type=float, help="USD budget for the whole job; stops cleanly before exceeding it")
    p.add_argument("--dry-run", action="store_true", help="count calls, estimate tokens and cost; send nothing")
    p.add_argument("--verdict-only", action="store_true",
                   help="ask for the verdict alone, held to the template's verdict format with vLLM structured "
                        "outputs (for vLLM-served teachers; OpenAI rejects the field)")
    p.add_argument("--reference-free-rewrite", action="store_true",
                   help="pointwise: a second turn rewrites each reference-based critique without the reference "
                        "(CritiqueLLM), the target for the no-reference prompt")
    p.add_argument("--temperature", type=float, help="sampling temperature (default 0)")
    p.add_argument("--seed", type=int, help="sampling seed (sample k uses seed + k; default 0)")
    p.add_argument("--max-tokens", type=int, help="reply length limit (default 1024)")
    p.add_argument("--timeout", type=float, help="seconds per request attempt (default 120)")
    p.add_argument("--max-retries", type=int, help="retries per request on 429/5xx/timeouts (default 6)")
    p.add_argument("--batch", action="store_true",
                   help="send the uncached requests through the OpenAI Batch API (half price, within 24 h): "
                        "uploaded, submitted, polled, stored in the same cache; a rerun re-attaches")
    p.add_argument("--batch-retry", choices=["live", "batch"],
                   help="rows in a batch's error file (expired rows included): retried live, or in one "
                        "follow-up batch (default live)")
    p.add_argument("--batch-cancel", action="store_true",
                   help="cancel the open batches of this --out, keep what they completed, submit nothing")
    p.add_argument("--batch-max-requests", type=int,
                   help="requests per batch input file (default 50000, OpenAI's limit)")
    p.add_argument("--batch-max-bytes", type=int,
                   help="bytes per batch input file (default 200000000, OpenAI's 200 MB limit)")
    p.add_argument("--batch-poll", type=float, help="seconds between batch status checks (default 30)")
    p.add_argument("--prices", help="price table YAML (default configs/prices.yaml)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_distill)
