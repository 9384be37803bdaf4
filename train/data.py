"""Training rows (`judgeforge filter`'s train.jsonl / val.jsonl) to tokenized examples.

A row's messages are the template's rendering plus the target reply as the assistant turn. The
prompt is tokenized exactly as the judge will see it when served (`encode_prompt`: the chat
template with the generation prompt), the reply after it; the loss covers the reply only. Rows
longer than `max_length` are dropped and counted, never truncated (a cut verdict teaches nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from judge.backends.encoding import encode_prompt
from judge.core.errors import ConfigError, InputError
from judge.core.jsonl import iter_json_rows
from judge.core.records import RowError, TrainRow, from_row
from judge.templates import Prompt, Template, get_template

IGNORE = -100  # label of the prompt tokens: no loss


@dataclass
class Split:
    path: str
    rows: list[TrainRow]  # the rows kept (within max_length), in file order
    examples: list[dict]  # their input_ids / attention_mask / labels
    too_long: int = 0
    longest: int = 0

    @property
    def counts(self) -> dict:
        return {"rows": len(self.rows) + self.too_long, "kept": len(self.rows), "too_long": self.too_long,
                "longest_tokens": self.longest}


@dataclass
class TrainData:
    template: Template
    train: Split
    val: Split | None = None
    counts: dict = field(default_factory=dict)


def read_rows(path: str, template: Template) -> list[TrainRow]:
    """TrainRows of `path`; a malformed row, or one rendered with another template, names file and line."""
    rows = []
    for number, raw in iter_json_rows(path):
        try:
            row = from_row(TrainRow, raw, extra_to_meta=False)
        except RowError as e:
            raise InputError(str(e), path, number) from None
        if row.template != template.key:
            raise ConfigError(f"the config's template is {template.key} but {path}:{number} was rendered with "
                              f"{row.template}: set `template: {row.template}` or use data made with {template.key}")
        if row.template_hash and row.template_hash != template.text_hash:
            raise InputError(f"rendered with a {row.template} whose text differs from this installation's "
                             f"(hash {row.template_hash} vs {template.text_hash})", path, number)
        if len(row.messages) < 2 or row.messages[-1].get("role") != "assistant" or not row.messages[-1].get("content"):
            raise InputError("messages must end with the target reply as a non-empty assistant turn", path, number)
        rows.append(row)
    return rows


def row_prompt(template: Template, row: TrainRow) -> Prompt:
    """The judge's prompt for a row: its messages without the reply (and their raw completion text)."""
    return template.prompt_from_messages(row.messages[:-1])


def encode_row(tokenizer, template: Template, row: TrainRow) -> dict:
    """input_ids = prompt + reply (+ end of turn), labels = IGNORE on the prompt, the ids on the reply."""
    prompt = row_prompt(template, row)
    prompt_ids = encode_prompt(tokenizer, prompt)
    reply = row.messages[-1]["content"]
    if tokenizer.chat_template:
        full = tokenizer.apply_chat_template(row.messages, tokenize=False)
        head = tokenizer.apply_chat_template(prompt.messages, tokenize=False, add_generation_prompt=True)
        if not full.startswith(head):
            raise ConfigError("the tokenizer's chat template renders the conversation differently from its prompt "
                              "(it rewrites earlier turns); judgeforge needs a template whose prompt is a prefix")
        completion = full[len(head):]
    else:
        completion = reply + tokenizer.eos_token
    reply_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    ids = prompt_ids + reply_ids
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": [IGNORE] * len(prompt_ids) + reply_ids}


def load_split(path: str, tokenizer, template: Template, max_length: int) -> Split:
    split = Split(path=path, rows=[], examples=[])
    for row in read_rows(path, template):
        example = encode_row(tokenizer, template, row)
        n = len(example["input_ids"])
        split.longest = max(split.longest, n)
        if n > max_length:
            split.too_long += 1
            continue
        split.rows.append(row)
        split.examples.append(example)
    return split


def load_data(config, tokenizer) -> TrainData:
    """Both splits, checked: an empty or all-too-long training set is bad input (exit 2, with counts)."""
    template = get_template(config.template)
    train = load_split(config.train_file, tokenizer, template, config.max_length)
    if not train.rows:
        raise InputError(f"no training rows left: {train.counts['rows']} rows, {train.too_long} longer than max_length "
                         f"{config.max_length} (longest {train.longest} tokens); raise max_length or use other data",
                         config.train_file)
    val = load_split(config.val_file, tokenizer, template, config.max_length) if config.val_file else None
    if val is not None and not val.rows:
        raise InputError(f"no validation rows left: {val.counts['rows']} rows, {val.too_long} longer than max_length "
                         f"{config.max_length}; raise max_length or drop val_file", config.val_file)
    counts = {"train": train.counts, **({"val": val.counts} if val else {})}
    return TrainData(template=template, train=train, val=val, counts=counts)


def to_dataset(split: Split):
    from datasets import Dataset

    return Dataset.from_list(split.examples)
