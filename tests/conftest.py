import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    """The converted SmolLM2 folder (`make model`); integration tests skip without it."""
    path = Path(os.environ.get("JUDGEFORGE_MODEL", ROOT / "models" / "SmolLM2-135M-Instruct"))
    if not (path / "config.json").exists():
        pytest.skip(f"SmolLM2 not prepared at {path}: run `make model`")
    return path


@pytest.fixture(scope="session")
def tiny_llama_path(tmp_path_factory, smollm2_path) -> Path:
    """A random Llama (hidden 64, 2 layers, 4 heads, context 512) with SmolLM2's tokenizer and chat
    template, saved once per session: real transformers/peft code paths in about a second."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(smollm2_path)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=512,
                         tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture
def tiny_llama(tiny_llama_path):
    """(model, tokenizer): a fresh fp32 copy of the tiny random Llama for each test."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype="float32")
    return model, AutoTokenizer.from_pretrained(tiny_llama_path)
