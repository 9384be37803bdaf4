"""The Template object: a named, versioned prompt that renders an item into chat messages (or a
raw completion prompt for models without a chat template) and parses the judge's reply into a
Verdict. A template owns its parser, so a prompt and the code that reads its answers never drift."""

from __future__ import annotations

import hashlib
import math
import re
import string
from collections.abc import Callable
from dataclasses import dataclass, field

from judge.core.errors import TemplateError
from judge.core.records import Item, PairItem, SingleItem, Verdict, to_original_order
from judge.templates.parsers import Parsed, winner_from_scores


@dataclass(frozen=True)
class LogprobSlot:
    """Where a verdict token sits in a verdict-mode reply: after the literal `prefix` (counted from
    the previous slot), one of `values` (token text -> label or score). `skip` is a regex for what
    may stand between the previous slot's token and this one besides the prefix (JudgeLM's "10"
    tokenised as "1", "0": the "0" is skipped before the second score)."""

    prefix: str
    values: dict[str, str | float]
    skip: str = ""


@dataclass(frozen=True)
class Prompt:
    messages: list[dict]  # [{"role": "system"|"user", "content": ...}]
    text: str  # the raw completion prompt, for models without a chat template


@dataclass(frozen=True)
class Template:
    name: str
    version: int
    mode: str  # "pairwise" | "pointwise"
    description: str
    prompt: str  # str.format fields: question, answer / answer1 answer2, reference, rubric, context, ...
    parse_reply: Callable[[str], Parsed]
    system: str | None = None
    prompt_without: str | None = None  # used when the item has no `optional` field
    optional: str = "reference"  # the field whose absence selects `prompt_without`
    raw_separator: str = "\n\n"  # between system and user text in the raw prompt
    raw_suffix: str = ""  # after the user text in the raw prompt (JudgeLM: "### Response:")
    requires: tuple[str, ...] = ()  # item fields that must be present (e.g. "context")
    defaults: dict = field(default_factory=dict)  # field values used when the item has none
    verdict_regex: str | None = None  # the verdict-only reply (structured output); always parses
    verdict_max_tokens: int = 8
    logprob_slots: tuple[LogprobSlot, ...] = ()
    score_range: tuple[float, float] | None = None
    prepare: Callable[[Item, dict], dict] | None = None  # template-specific field derivation

    @property
    def key(self) -> str:
        """`name@version`, as recorded in verdicts, training rows and adapters."""
        return f"{self.name}@{self.version}"

    @property
    def text_hash(self) -> str:
        """Hash of everything that shapes the prompt or the verdict format (cache keys use it)."""
        parts = [self.system or "", self.prompt, self.prompt_without or "", self.optional, self.raw_separator,
                 self.raw_suffix, self.verdict_regex or "", repr(sorted(self.defaults.items()))]
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]

    # ---- rendering -------------------------------------------------------------------------
    def _values(self, item: Item, order: str) -> dict:
        if self.mode == "pairwise" and not isinstance(item, PairItem):
            raise TemplateError(f"template {self.name} is pairwise but item {item.id!r} has a single answer")
        if self.mode == "pointwise" and not isinstance(item, SingleItem):
            raise TemplateError(f"template {self.name} is pointwise but item {item.id!r} is a pair")
        if order not in ("ab", "ba"):
            raise ValueError(f"order must be 'ab' or 'ba', got {order!r}")
        if order == "ba":
            item = item.swapped()
        values = {"question": item.question, "reference": item.reference, "rubric": item.rubric,
                  "context": _format_context(item.context)}
        if isinstance(item, PairItem):
            values.update(answer1=item.answer1, answer2=item.answer2)
        else:
            values.update(answer=item.answer)
        for key, default in self.defaults.items():
            if values.get(key) in (None, ""):
                values[key] = default
        if self.prepare:
            values = self.prepare(item, values)
        for name in self.requires:
            if values.get(name) in (None, "", []):
                raise TemplateError(f"item {item.id!r} has no {name}; template {self.name} needs one")
        return values

    def render(self, item: Item, order: str = "ab") -> Prompt:
        """Messages for a chat model and the equivalent raw prompt, answers in `order`."""
        values = self._values(item, order)
        text = self.prompt
        if values.get(self.optional) in (None, "") and self.optional in _fields_of(self.prompt):
            if self.prompt_without is None:
                raise TemplateError(f"item {item.id!r} has no {self.optional}; template {self.name} needs one")
            text = self.prompt_without
        needed = _fields_of(text)
        missing = sorted(n for n in needed if values.get(n) is None)
        if missing:
            raise TemplateError(f"item {item.id!r} lacks {', '.join(missing)} for template {self.name}")
        user = text.format(**{n: values[n] for n in needed})
        messages = ([{"role": "system", "content": self.system}] if self.system else [])
        messages.append({"role": "user", "content": user})
        return self.prompt_from_messages(messages)

    def prompt_from_messages(self, messages: list[dict]) -> Prompt:
        """The Prompt for already rendered messages (a training row's, say): the raw completion text
        is assembled from them the way this template joins system and user text."""
        system = next((m["content"] for m in messages if m["role"] == "system"), None)
        user = next(m["content"] for m in messages if m["role"] == "user")
        raw = (system + self.raw_separator if system else "") + user + self.raw_suffix
        return Prompt(messages=list(messages), text=raw)

    # ---- parsing ---------------------------------------------------------------------------
    def parse(self, text: str) -> Parsed:
        return self.parse_reply(text or "")

    def verdict(self, item_id: str, order: str, raw: str, *, judge: str | None = None, usage: dict | None = None,
                sample: int = 0, logprobs: dict | None = None) -> Verdict:
        """Parse `raw` and build the Verdict, mapped back to the item's original answer order;
        `logprobs` (from `read_logprobs`) is given as read, in the order the judge saw."""
        parsed = self.parse(raw)
        winner, scores = parsed.winner, list(parsed.scores) if parsed.scores else None
        if self.mode == "pairwise":
            winner, scores, logprobs = to_original_order(order, winner, scores, logprobs)
        return Verdict(
            id=item_id, order=order, winner=winner, scores=scores, reason=parsed.reason,
            reference_generated=parsed.reference, raw=raw or "", parse_ok=parsed.ok, judge=judge,
            template=self.key, template_hash=self.text_hash, usage=usage, logprobs=logprobs,
            error=parsed.error, sample=sample,
        )

    # ---- verdict-token probabilities ------------------------------------------------------
    def read_logprobs(self, tokens: list[str], top_logprobs: list[dict[str, float]]) -> dict | None:
        """Turn a verdict-mode reply's per-position top logprobs into verdict probabilities.

        Returns {"probs": {...}} (pairwise labels) or {"expected_score": x, "score_probs": {score: p}}
        (pointwise), or for score-pair templates {"expected_scores": [a, b]}; None when a slot
        cannot be located.
        `mass` is the probability the model put on the valid verdict tokens at each slot.
        """
        if not self.logprob_slots:
            return None
        slots, start = [], 0
        for slot in self.logprob_slots:
            found = _slot_distribution(slot, tokens, top_logprobs, start)
            if found is None:
                return None
            dist, mass, start = found
            slots.append((dist, mass))
        masses = [round(mass, 6) for _, mass in slots]
        if all(isinstance(v, str) for v in self.logprob_slots[0].values.values()):
            probs = {label: round(p, 6) for label, p in slots[0][0].items()}
            return {"probs": probs, "mass": masses}
        expected = [sum(float(v) * p for v, p in dist.items()) for dist, _ in slots]
        if len(expected) == 1:
            # score_probs: the whole distribution, so confidence can be read off it (judge.scoring.confidence)
            return {"expected_score": round(expected[0], 6), "mass": masses,
                    "score_probs": {f"{float(v):g}": round(p, 6) for v, p in slots[0][0].items()}}
        first, second = slots[0][0], slots[1][0]
        # P(answer 1 wins) etc. from the two score distributions, the second taken as read on the
        # greedy path (its distribution given the first score the model actually wrote).
        probs = {"1": 0.0, "2": 0.0, "tie": 0.0}
        for a, pa in first.items():
            for b, pb in second.items():
                probs[winner_from_scores(float(a), float(b))] += pa * pb
        return {"expected_scores": [round(e, 6) for e in expected], "probs": {k: round(v, 6) for k, v in probs.items()},
                "mass": masses, "expected_winner": winner_from_scores(*expected)}


def _fields_of(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


def _format_context(context: list[str] | None) -> str | None:
    if not context:
        return None
    if len(context) == 1:
        return context[0].strip()
    return "\n\n".join(f"[{i}] {passage.strip()}" for i, passage in enumerate(context, start=1))


def _slot_distribution(slot: LogprobSlot, tokens: list[str], top: list[dict[str, float]], start: int):
    """(label -> probability renormalised over the slot's valid tokens, their raw mass, the position
    after the slot) for the first position at or after `start` that holds one of the slot's values
    and follows the prefix; None when there is none."""
    lead = re.compile(slot.skip + re.escape(slot.prefix.strip()))
    for position in range(start, len(tokens)):
        token = tokens[position].strip()
        if token not in slot.values or not lead.fullmatch("".join(tokens[start:position]).strip()):
            continue
        totals: dict = {}
        for candidate, logprob in top[position].items():
            label = slot.values.get(candidate.strip())
            if label is not None:
                totals[label] = totals.get(label, 0.0) + math.exp(logprob)
        mass = sum(totals.values())
        if mass <= 0:
            return None
        end = position + 1
        # A value the tokenizer spells in pieces ("10" = "1" + "0"): split the first piece's mass by
        # the probability of continuing, read at the next position of the greedy path.
        for value, label in slot.values.items():
            rest = value[len(token):]
            if len(value) > len(token) and value.startswith(token) and end < len(tokens):
                p_rest = math.exp(top[end].get(rest, -math.inf)) if top[end] else float(tokens[end].strip() == rest)
                moved = totals.get(slot.values[token], 0.0) * p_rest
                totals[slot.values[token]] -= moved
                totals[label] = totals.get(label, 0.0) + moved
                if tokens[end].strip() == rest:
                    end += 1
        return {label: p / mass for label, p in totals.items()}, mass, end
    return None
