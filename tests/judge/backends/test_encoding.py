"""The prompt's token ids, once: a tokenizer that adds BOS and a chat template that starts with it
(Llama-3, Mistral) give exactly one BOS, and the vLLM backend hands those very ids to the engine and
counts them for the context check."""

from types import SimpleNamespace

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from judge.backends import GenerationParams, Request
from judge.backends.encoding import chat_or_raw, encode_prompt
from judge.templates import Prompt

WORDS = ["<s>", "</s>", "<unk>", "<|user|>", "<|assistant|>", "which", "answer", "is", "better", "?"]
PROMPT = Prompt(messages=[{"role": "user", "content": "which answer is better ?"}], text="which answer is better ?")


def bos_tokenizer(chat: bool) -> PreTrainedTokenizerFast:
    """A word-level tokenizer whose post-processor adds <s> (as Llama's does)."""
    vocab = {w: i for i, w in enumerate(WORDS)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 0)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   additional_special_tokens=["<|user|>", "<|assistant|>"])
    if chat:
        fast.chat_template = ("{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} "
                              "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}")
    return fast


def test_a_chat_template_that_starts_with_bos_gets_one_bos():
    tokenizer = bos_tokenizer(chat=True)
    text = chat_or_raw(tokenizer, PROMPT)
    assert text.startswith("<s>")
    assert tokenizer(text)["input_ids"][:2] == [0, 0]  # what tokenizing the text again (an engine's default) gives
    ids = encode_prompt(tokenizer, PROMPT)
    assert ids[0] == 0 and ids.count(0) == 1
    assert tokenizer.convert_ids_to_tokens(ids) == ["<s>", "<|user|>", "which", "answer", "is", "better", "?",
                                                    "<|assistant|>"]


def test_a_raw_prompt_gets_the_tokenizers_bos_once():
    ids = encode_prompt(bos_tokenizer(chat=False), PROMPT)
    assert ids == [0, 5, 6, 7, 8, 9]


class RecordingLLM:
    """Stands in for vllm.LLM: records the prompts and answers each with a fixed completion."""

    def __init__(self):
        self.prompts = []

    def generate(self, prompts, sampling, lora_request=None, use_tqdm=False):
        self.prompts.extend(prompts)
        return [SimpleNamespace(prompt_token_ids=p["prompt_token_ids"],
                                outputs=[SimpleNamespace(text="9 2", token_ids=[5, 6], logprobs=None)]) for p in prompts]


def test_vllm_backend_hands_the_engine_the_ids_and_counts_them_for_the_context():
    pytest.importorskip("vllm")
    from judge.backends.vllm import VLLMBackend

    tokenizer = bos_tokenizer(chat=True)
    ids = encode_prompt(tokenizer, PROMPT)
    backend = VLLMBackend.__new__(VLLMBackend)  # no engine: the recorder receives what vllm.LLM would
    backend.tokenizer, backend.llm, backend.lora, backend.max_model_len = tokenizer, RecordingLLM(), None, len(ids) + 4
    fits, too_long = backend.generate([Request(PROMPT, GenerationParams(max_tokens=4)),
                                       Request(PROMPT, GenerationParams(max_tokens=5))])
    assert [p["prompt_token_ids"] for p in backend.llm.prompts] == [ids]  # token ids, one BOS, as trained
    assert fits.text == "9 2" and fits.usage == {"prompt_tokens": len(ids), "completion_tokens": 2}
    assert too_long.error == f"prompt of {len(ids)} tokens + 5 to generate exceeds the model context of {len(ids) + 4}"
