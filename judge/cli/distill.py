"""`judgeforge distill`."""

from __future__ import annotations


from judge.cli.options import add_config_arguments, config_from


def _config(args):
    """DistillConfig (with its TeacherConfig) from defaults < --config YAML < flags."""
    from judge.distill import DistillConfig, TeacherConfig

    return config_from(DistillConfig, args, teacher=config_from(TeacherConfig, args))


def print_estimate(plan: dict) -> None:
    cost = "unknown" if plan["cost_usd"] is None else f"${plan['cost_usd']:.4f}, at most ${plan['cost_usd_max']:.4f}"
    rewrites = f" + {plan['rewrites']} reference-free rewrites" if plan["rewrites"] else ""
    identical = f", {plan['identical']} identical requests asked once" if plan["identical"] else ""
    print(f"dry run, nothing sent: {plan['calls_total']} calls to {plan['model']} ({plan['items']} items x "
          f"{plan['orders']} order(s) x {plan['samples']} sample(s){rewrites}{identical}); "
          f"{plan['calls_cached']} cached, {plan['calls_to_send']} to send")
    if plan["calls_in_open_batches"]:
        print(f"{plan['calls_in_open_batches']} requests are already in open batches (collected by the next --batch "
              f"run, not priced again)")
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
        found = f" ({batch['found_after_error']} found by input file after an error)" if batch["found_after_error"] else ""
        print(f"batch: {batch['submitted']} requests submitted in {batch['batches_created']} new batch(es){found}, "
              f"{batch['reattached']} re-attached, {batch['cancelled']} cancelled; {batch['answered']} answered; "
              f"error rows: {errors}; retried live {batch['retried_live']}, in a follow-up batch "
              f"{batch['retried_batch']}; unresolved {batch['unresolved']}")
    by_batch = f", {stats['calls']['by_batch']} of the replies by batch" if stats["calls"]["by_batch"] else ""
    print(f"teacher cost so far: {cost} (price: {stats['price']}){by_batch}; this run: ${run['cost_usd']:.4f}")


def cmd_distill(args) -> int:
    from judge.distill import distill, estimate

    config = _config(args)
    if args.dry_run:
        print_estimate(estimate(config))
        return 0
    print_stats(distill(config), config.out)
    return 0


def register(verbs) -> None:
    from judge.distill import DistillConfig, TeacherConfig

    p = verbs.add_parser("distill", help="collect a teacher's verdicts (cached, resumable, costed)",
                         description="Ask an OpenAI-compatible teacher (OpenAI, a vLLM server, Ollama) for a verdict "
                                     "on every item, both answer orders for pairs. Replies are cached in "
                                     "OUT/cache.sqlite: a rerun sends only what is missing. Writes OUT/items.jsonl, "
                                     "OUT/verdicts.jsonl, OUT/stats.json, OUT/manifest.json. The key comes from "
                                     "OPENAI_API_KEY, the endpoint from --teacher-base-url or OPENAI_BASE_URL.")
    add_config_arguments(p, DistillConfig, skip=("teacher",))
    # the teacher's fields that had no flag keep none (a key on a command line ends up in shell history);
    # a --config file may set them
    add_config_arguments(p, TeacherConfig, skip=("api_key", "regex", "backoff", "max_backoff", "max_retry_after"))
    p.add_argument("--dry-run", action="store_true", help="count calls, estimate tokens and cost; send nothing")
    p.set_defaults(func=cmd_distill)
