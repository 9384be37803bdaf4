"""The tokenizer read from a folder's files (what the judge API counts prompt tokens with, without
torch) gives the ids transformers' AutoTokenizer gives, through the one `encode_prompt`."""

import json
import shutil
import subprocess
import sys

import pytest

from judge.backends.encoding import encode_prompt
from judge.backends.tokenizer_files import load_tokenizer_files
from judge.core.errors import ConfigError
from judge.core.records import PairItem, SingleItem
from judge.templates import Prompt, get_template, list_templates

PAIR = PairItem(id="p", question="Which is better? ünïcode 🚀 <|im_end|>\n\n  two spaces", answer1="An answer.",
                answer2="Another answer,\tlonger.", reference="The reference.", context=["A passage."])
SINGLE = SingleItem(id="s", question="What is two plus two?", answer="Four.", reference="4", context=["2+2=4"])


def prompts():
    for name in list_templates():
        template = get_template(name)
        yield template.render(PAIR if template.mode == "pairwise" else SINGLE, "ab")
    yield Prompt(messages=[{"role": "system", "content": "Be fair."}, {"role": "user", "content": "Hi"}], text="Hi")


def assert_same_ids(folder):
    from transformers import AutoTokenizer

    reference, files = AutoTokenizer.from_pretrained(folder), load_tokenizer_files(folder)
    assert bool(files.chat_template) == bool(reference.chat_template)
    for prompt in prompts():
        assert encode_prompt(files, prompt) == encode_prompt(reference, prompt), prompt.messages


def test_the_same_ids_as_transformers_on_smollm2(smollm2_path):
    assert_same_ids(smollm2_path)


def test_the_same_ids_as_transformers_on_the_tiny_model(tiny_llama_path):
    assert_same_ids(tiny_llama_path)


def test_without_a_chat_template_the_raw_prompt_gets_the_special_tokens(tiny_llama_path, tmp_path):
    """A base model: no chat template, and a tokenizer that writes a BOS before the text."""
    from tokenizers import Tokenizer
    from tokenizers.processors import TemplateProcessing

    folder = shutil.copytree(tiny_llama_path, tmp_path / "base-model")
    (folder / "chat_template.jinja").unlink()
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    bos = tokenizer.token_to_id("<|im_start|>")
    tokenizer.post_processor = TemplateProcessing(single="<|im_start|> $A", special_tokens=[("<|im_start|>", bos)])
    tokenizer.save(str(folder / "tokenizer.json"))
    files = load_tokenizer_files(folder)
    assert files.chat_template is None and encode_prompt(files, next(prompts()))[0] == bos
    assert_same_ids(folder)


def test_a_folder_without_tokenizer_json_is_a_config_error(tmp_path):
    (tmp_path / "tokenizer_config.json").write_text("{}")
    with pytest.raises(ConfigError, match="no tokenizer.json"):
        load_tokenizer_files(tmp_path)


def test_counting_tokens_imports_no_torch(smollm2_path):
    code = ("import sys\nfrom judge.backends.encoding import encode_prompt\n"
            "from judge.backends.tokenizer_files import load_tokenizer_files\nfrom judge.templates import Prompt\n"
            f"tokenizer = load_tokenizer_files({str(smollm2_path)!r})\n"
            "print(len(encode_prompt(tokenizer, Prompt(messages=[{'role': 'user', 'content': 'hi'}], text='hi'))))\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert int(out[0]) > 1 and out[1] == "False"
