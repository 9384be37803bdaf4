"""Distill: a teacher's verdict on every item (both answer orders for pairs, K samples if asked),
cached, resumable and costed.

    items.jsonl -> DIR/items.jsonl      (the judged items, for `filter` to render training prompts)
                   DIR/cache.sqlite     (every reply, committed as it arrives)
                   DIR/verdicts.jsonl   (rebuilt from the cache in item order after every run)
                   DIR/stats.json, DIR/manifest.json

Everything is checked (items, template fields, prices) before the first request, so bad input
costs nothing (`plan`). The teacher is a Backend (`TeacherConfig.backend()`, an OpenAIBackend)
worn by the cost/budget and cache layers (judge.backends.costed, .cached): a rerun sends only the
requests whose reply is not cached; a kill loses at most the requests in flight; `--max-cost`
admits a request only while the money spent, plus the worst case of the requests in flight and of
this one, stays within the budget (`run`). `--batch` sends the same requests through the OpenAI
Batch API instead (judge.distill.batch): half the price, the replies in the same cache, so the verdicts are
the same. `--dry-run` estimates (`dryrun`); `stats` writes verdicts.jsonl, stats.json, the manifest.

CritiqueLLM's reference-free rewrite (`reference_free_rewrite`, pointwise): after a reference-based
critique, a second turn asks the teacher to rewrite it without the reference; the rewrite is the
training target for the prompt without the reference (`meta.variant == "reference-free"`).
"""

from judge.distill.config import DistillConfig, TeacherConfig
from judge.distill.dryrun import TYPICAL_REPLY_TOKENS, estimate
from judge.distill.plan import REWRITE_INSTRUCTION, REWRITE_VARIANT, make_plan
from judge.distill.run import distill

__all__ = ["REWRITE_INSTRUCTION", "REWRITE_VARIANT", "TYPICAL_REPLY_TOKENS", "DistillConfig", "TeacherConfig",
           "distill", "estimate", "make_plan"]
