"""What a distill run asks: every call (item, order, sample, and the rewrite turns) as a Request with
its cache key, checked and rendered before the first request; and what of it the cache answers."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from judge.backends.base import Request
from judge.backends.cache import ReplyCache
from judge.backends.cached import cache_key
from judge.backends.pricing import messages_text
from judge.core.errors import ConfigError, InputError, TemplateError
from judge.core.jsonl import iter_json_rows, read_items
from judge.core.records import Item
from judge.distill.config import DistillConfig
from judge.scoring.judging import orders_for
from judge.templates import Prompt, Template, get_template

REWRITE_VARIANT = "reference-free"
REWRITE_INSTRUCTION = (
    "Rewrite your evaluation above for a reader who cannot see the reference answer. Do not mention, quote or "
    "allude to the reference answer; justify the same judgement from the question and the response alone. "
    "Keep exactly the same output format and the same final score."
)


@dataclass(frozen=True)
class Call:
    """One request: an item in one order, one sample, possibly the rewrite turn."""

    item: Item
    order: str
    sample: int
    request: Request
    key: str
    variant: str | None = None

    @property
    def messages(self) -> list[dict]:
        return self.request.prompt.messages

    @property
    def prompt_text(self) -> str:
        return messages_text(self.messages)


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

    def call(self, item: Item, order: str, sample: int, prompt: Prompt, variant: str | None = None) -> Call:
        """The call with its Request: the teacher's sampling for this sample, and as its identity (so in
        its cache key) the template's name@version and text hash, the sample index and the variant."""
        identity = {"sample": sample, "template": self.template.key, "template_hash": self.template.text_hash}
        if variant:
            identity["variant"] = variant
        request = Request(prompt=prompt, params=self.config.teacher.params(sample), identity=identity)
        return Call(item, order, sample, request, cache_key(request, self.model), variant)

    def rewrite_of(self, call: Call, reply_text: str) -> Call | None:
        """The rewrite turn after `call`'s reply; None when no rewrite is due (option off, item without
        a reference, or a first reply that does not parse: rewriting it would not give a usable target)."""
        if not self.rewrite_expected(call) or not self.template.parse(reply_text).ok:
            return None
        messages = [*call.messages, {"role": "assistant", "content": reply_text},
                    {"role": "user", "content": REWRITE_INSTRUCTION}]
        return self.call(call.item, call.order, call.sample, Prompt(messages=messages, text=messages_text(messages)),
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
                prompt = template.render(item, order)
            except TemplateError as e:
                raise InputError(e.reason, config.input, _line_of(config.input, index)) from None
            plan.calls.extend(plan.call(item, order, sample, prompt) for sample in range(config.samples))
    return plan


def _line_of(path: str, index: int) -> int:
    """The file line of the index-th item (blank lines are skipped by the reader)."""
    return [number for number, _ in iter_json_rows(path)][index]


def answered(plan: Plan, cache: ReplyCache) -> list[tuple[Call, dict]]:
    """(call, reply) for every cached reply of the plan, first turns and rewrites, in verdict order."""
    first = cache.get_many(c.key for c in plan.calls)
    pairs = [(c, first[c.key]) for c in plan.calls if c.key in first]
    rewrites = {c.key: plan.rewrite_of(c, r["text"]) for c, r in pairs}
    second = cache.get_many(r.key for r in rewrites.values() if r is not None)
    out = []
    for call, reply in pairs:
        out.append((call, reply))
        rewrite = rewrites[call.key]
        if rewrite is not None and rewrite.key in second:
            out.append((rewrite, second[rewrite.key]))
    return out


def unique(calls) -> list[Call]:
    """One call per key: items with identical content make identical requests, asked once."""
    first: dict[str, Call] = {}
    for call in calls:
        first.setdefault(call.key, call)
    return list(first.values())


def paid(answers: list[tuple[Call, dict]]) -> list[tuple[Call, dict]]:
    """One (call, reply) per request actually paid for: identical items share a reply."""
    return list({c.key: (c, r) for c, r in answers}.values())


def pending(plan: Plan, answers: list[tuple[Call, dict]]) -> list[Call]:
    """Calls still to send: uncached first turns, and rewrites of cached first turns."""
    done = {c.key for c, _ in answers}
    rewrites = (plan.rewrite_of(c, r["text"]) for c, r in answers)
    return unique([c for c in plan.calls if c.key not in done] + [r for r in rewrites if r and r.key not in done])


def expected_total(plan: Plan) -> int:
    first = unique(plan.calls)
    return len(first) + sum(plan.rewrite_expected(c) for c in first)
