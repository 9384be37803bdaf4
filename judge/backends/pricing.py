"""Turning token counts into money with a user-editable price table (configs/prices.yaml, USD per
1M input/output tokens, and the Batch API's prices: half of those unless an entry says otherwise).
A model without a price has an unknown cost, reported as such, never guessed."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from judge.core.errors import ConfigError

DEFAULT_PRICES = Path(__file__).resolve().parents[2] / "configs" / "prices.yaml"
CHARS_PER_TOKEN = 4  # the tokenizer-free estimate used where no API usage exists yet (dry runs, budgets)
BATCH_DISCOUNT = 0.5  # OpenAI's Batch API bills half the standard price; an entry's batch_input/batch_output override it
_FIELDS = {"input", "output", "batch_input", "batch_output"}


def estimate_tokens(text: str) -> int:
    """About 4 characters per token (English text with GPT/Llama-style BPE vocabularies).

    >>> estimate_tokens("a" * 10), estimate_tokens("")
    (3, 0)
    """
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def messages_text(messages: list[dict]) -> str:
    """The text of a chat request's messages, which the chars/4 estimate counts."""
    return "\n".join(str(m["content"]) for m in messages)


@dataclass(frozen=True)
class Price:
    entry: str  # the table entry that matched the model name
    input: float  # USD per 1M prompt tokens
    output: float  # USD per 1M completion tokens
    batch_input: float | None = None  # the same through the Batch API (None: input x BATCH_DISCOUNT)
    batch_output: float | None = None

    def cost(self, prompt_tokens: float, completion_tokens: float, *, batch: bool = False) -> float:
        rates = self.batch_rates if batch else (self.input, self.output)
        return (prompt_tokens * rates[0] + completion_tokens * rates[1]) / 1e6

    @property
    def batch_rates(self) -> tuple[float, float]:
        return (self.input * BATCH_DISCOUNT if self.batch_input is None else self.batch_input,
                self.output * BATCH_DISCOUNT if self.batch_output is None else self.batch_output)

    def __str__(self) -> str:
        batch_in, batch_out = self.batch_rates
        return (f"${self.input:g} / ${self.output:g} per 1M input/output tokens, batch ${batch_in:g} / "
                f"${batch_out:g} ({self.entry})")


class PriceTable:
    def __init__(self, prices: dict[str, Price], source: str):
        self.prices, self.source = prices, source

    @classmethod
    def load(cls, path: str | Path | None = None) -> PriceTable:
        """The table at `path`, or the shipped configs/prices.yaml (an empty table if absent)."""
        import yaml

        file = Path(path) if path else DEFAULT_PRICES
        if not file.exists():
            if path:
                raise ConfigError(f"price table {file} not found")
            return cls({}, str(file))
        try:
            data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{file}: not valid YAML ({e})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{file}: expected a mapping of model name -> {{input: USD, output: USD}}")
        prices = {}
        for name, entry in data.items():
            ok = isinstance(entry, dict) and {"input", "output"} <= set(entry) <= _FIELDS and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in entry.values())
            if not ok:
                raise ConfigError(f"{file}: entry {name!r} must be {{input: USD per 1M, output: USD per 1M}} "
                                  f"(optionally batch_input, batch_output), non-negative numbers, got {entry!r}")
            prices[str(name)] = Price(str(name), *(None if entry.get(k) is None else float(entry[k])
                                                   for k in ("input", "output", "batch_input", "batch_output")))
        return cls(prices, str(file))

    def lookup(self, model: str) -> Price | None:
        """The exact entry, else the longest entry that `model` starts with followed by - or :.

        >>> table = PriceTable({"gpt-4o": Price("gpt-4o", 2.5, 10), "gpt-4o-mini": Price("gpt-4o-mini", .15, .6)}, "t")
        >>> [table.lookup(m).entry for m in ("gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18")]
        ['gpt-4o', 'gpt-4o-mini']
        >>> table.lookup("gpt-4") is None
        True
        """
        if model in self.prices:
            return self.prices[model]
        matches = [name for name in self.prices if model.startswith(name) and model[len(name)] in "-:"]
        return self.prices[max(matches, key=len)] if matches else None

    def cost(self, model: str, usage: dict | None, *, batch: bool = False) -> float | None:
        """USD for one reply's `usage` (at the Batch API's price when `batch`); None when the model has
        no price or the server sent no usage."""
        price = self.lookup(model)
        if price is None or not usage:
            return None
        return price.cost(usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0, batch=batch)

    def reply_cost(self, model: str, prompt_text: str, text: str, usage: dict | None, *,
                   batch: bool = False) -> float | None:
        """USD of one reply from the API's usage, or from the chars/4 estimate when the server sent none;
        None when the model has no price."""
        usage = usage or {"prompt_tokens": estimate_tokens(prompt_text), "completion_tokens": estimate_tokens(text)}
        return self.cost(model, usage, batch=batch)

    def worst_case(self, model: str, prompt_text: str, max_tokens: int, *, batch: bool = False) -> float:
        """What one request can cost at most, for --max-cost: twice the chars/4 estimate of its prompt
        (a margin for tokenizers that split finer) plus max_tokens of output; 0 without a price."""
        price = self.lookup(model)
        return price.cost(2 * estimate_tokens(prompt_text), max_tokens, batch=batch) if price else 0.0

    def describe(self, model: str) -> str:
        price = self.lookup(model)
        if price is None:
            return (f"unknown: no price for {model!r} in {self.source} "
                    f"(add `{model}: {{input: USD, output: USD}}` per 1M tokens)")
        return str(price)
