"""Training rows to examples: the loss on the reply only, the prompt tokenized as served, long rows
dropped and counted, mismatched templates refused.

Covers: train/data.py."""

import json

import pytest

from judge.backends.hf import HFBackend
from judge.core.errors import ConfigError, InputError
from judge.templates import get_template
from train.config import load_config
from train.data import IGNORE, encode_row, load_data, read_rows, row_prompt


def rows_of(path):
    return read_rows(str(path), get_template("pandalm"))


def test_labels_cover_the_reply_only_and_the_prompt_is_what_serving_sends(tiny_llama, synthetic_data):
    model, tokenizer = tiny_llama
    template = get_template("pandalm")
    row = rows_of(synthetic_data / "train.jsonl")[0]
    example = encode_row(tokenizer, template, row)
    n_prompt = sum(label == IGNORE for label in example["labels"])
    assert example["input_ids"][:n_prompt] == HFBackend(model, tokenizer).encode(row_prompt(template, row))
    reply = tokenizer.decode([t for t in example["labels"] if t != IGNORE])
    assert reply == row.messages[-1]["content"] + "<|im_end|>\n"
    assert example["labels"][n_prompt:] == example["input_ids"][n_prompt:]


def test_without_a_chat_template_the_raw_prompt_is_used_and_the_reply_ends_with_eos(tiny_llama, synthetic_data):
    _, tokenizer = tiny_llama
    tokenizer.chat_template = None
    row = rows_of(synthetic_data / "train.jsonl")[0]
    example = encode_row(tokenizer, get_template("pandalm"), row)
    text = tokenizer.decode(example["input_ids"])
    assert "<|im_start|>" not in text and text.startswith("Below are two responses")
    assert text.endswith(row.messages[-1]["content"] + tokenizer.eos_token)


def config_for(synthetic_data, tiny_llama_path, *more):
    return load_config(None, [f"base_model={tiny_llama_path}", "template=pandalm", "output_dir=o",
                              f"train_file={synthetic_data / 'train.jsonl'}", *more])


def test_rows_longer_than_max_length_are_dropped_and_counted(tiny_llama, tiny_llama_path, synthetic_data):
    _, tokenizer = tiny_llama
    lengths = sorted(len(encode_row(tokenizer, get_template("pandalm"), r)["input_ids"])
                     for r in rows_of(synthetic_data / "train.jsonl"))
    cut = lengths[len(lengths) // 2]
    data = load_data(config_for(synthetic_data, tiny_llama_path, f"max_length={cut}"), tokenizer)
    assert data.counts["train"] == {"rows": len(lengths), "kept": sum(n <= cut for n in lengths),
                                    "too_long": sum(n > cut for n in lengths), "longest_tokens": lengths[-1]}
    assert all(len(e["input_ids"]) <= cut for e in data.train.examples)
    with pytest.raises(InputError, match=rf"no training rows left: {len(lengths)} rows, {len(lengths)} longer than "
                                         rf"max_length 16") as e:
        load_data(config_for(synthetic_data, tiny_llama_path, "max_length=16"), tokenizer)
    assert e.value.exit_code == 2


def test_an_empty_training_file_is_bad_input(tiny_llama, tiny_llama_path, tmp_path):
    (tmp_path / "train.jsonl").write_text("")
    with pytest.raises(InputError, match="no training rows left: 0 rows"):
        load_data(config_for(tmp_path, tiny_llama_path), tiny_llama[1])


def test_a_template_mismatch_names_both(tiny_llama_path, synthetic_data, tiny_llama):
    config = load_config(None, [f"base_model={tiny_llama_path}", "template=judgelm", "output_dir=o",
                                f"train_file={synthetic_data / 'train.jsonl'}"])
    with pytest.raises(ConfigError, match=r"template is judgelm@1 but .*train.jsonl:1 was rendered with pandalm@1"):
        load_data(config, tiny_llama[1])


@pytest.mark.parametrize("change,match", [
    (lambda r: r.pop("messages"), r"bad.jsonl:2: missing field 'messages'"),
    (lambda r: r["messages"].pop(), r"bad.jsonl:2: messages must end with the target reply"),
    (lambda r: r.update(template_hash="0" * 16), r"bad.jsonl:2: rendered with a pandalm@1 whose text differs"),
])
def test_bad_rows_name_file_and_line(synthetic_data, tmp_path, change, match):
    rows = [json.loads(line) for line in (synthetic_data / "train.jsonl").read_text().splitlines()[:2]]
    change(rows[1])
    (tmp_path / "bad.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(InputError, match=match):
        rows_of(tmp_path / "bad.jsonl")
