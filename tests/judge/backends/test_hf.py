"""The transformers backend on a tiny random Llama: batching, verdicts that parse, logprobs, errors."""

import math

import pytest

from judge.backends import GenerationParams, Request
from judge.backends.hf import HFBackend
from judge.core.errors import ConfigError
from judge.core.records import PairItem, SingleItem
from judge.scoring.judging import judge_items, params_for, request_for
from judge.templates import Prompt, get_template, list_templates

PAIR = PairItem(id="p", question="Which is better?", answer1="An answer.", answer2="Another answer, longer.",
                reference="The reference.", context=["A passage."])
SINGLE = SingleItem(id="s", question="What is two plus two?", answer="Four.", reference="4", context=["2+2=4"])


def prompt(words: int) -> Prompt:
    text = " ".join(f"word{i}" for i in range(words))
    return Prompt(messages=[{"role": "user", "content": text}], text=text)


def test_batches_are_length_sorted_but_results_come_back_in_request_order(tiny_llama):
    model, tokenizer = tiny_llama
    params = GenerationParams(max_tokens=5)
    requests = [Request(prompt(n), params) for n in (3, 40, 1, 25, 9)]
    batched = HFBackend(model, tokenizer, batch_size=2).generate(requests)
    alone = [HFBackend(model, tokenizer, batch_size=1).generate([r])[0] for r in requests]
    backend = HFBackend(model, tokenizer)
    assert [g.usage["prompt_tokens"] for g in batched] == [len(backend.encode(r.prompt)) for r in requests]
    assert [g.text for g in batched] == [g.text for g in alone]  # left padding does not change greedy output
    assert all(0 < g.usage["completion_tokens"] <= 5 for g in batched)


def test_chat_template_is_used_when_the_tokenizer_has_one(tiny_llama):
    model, tokenizer = tiny_llama
    p = prompt(3)
    assert "<|im_start|>assistant" in tokenizer.decode(HFBackend(model, tokenizer).encode(p))
    tokenizer.chat_template = None  # a base model: the template's raw completion prompt
    raw = tokenizer.decode(HFBackend(model, tokenizer).encode(p))
    assert raw.strip().endswith(p.text) and "<|im_start|>" not in raw


def test_sampling_honours_the_seed(tiny_llama):
    backend = HFBackend(*tiny_llama)
    params = GenerationParams(max_tokens=8, temperature=1.0, seed=7)
    first = backend.generate([Request(prompt(4), params)])[0].text
    assert backend.generate([Request(prompt(4), params)])[0].text == first


@pytest.mark.parametrize("name", [n for n in list_templates() if get_template(n).verdict_regex])
def test_verdict_mode_always_parses(tiny_llama, name):
    template = get_template(name)
    item = PAIR if template.mode == "pairwise" else SINGLE
    verdicts = judge_items([item], template, HFBackend(*tiny_llama), mode="verdict", swap=True)
    assert verdicts and all(v.parse_ok for v in verdicts), [v.raw for v in verdicts]


@pytest.mark.parametrize("name", ["pandalm", "prometheus-relative", "prometheus-absolute", "rag-relevancy"])
def test_logprob_mode_fills_probabilities(tiny_llama, name):
    template = get_template(name)
    item = PAIR if template.mode == "pairwise" else SINGLE
    (verdict,) = judge_items([item], template, HFBackend(*tiny_llama), mode="logprob")
    assert verdict.parse_ok and verdict.logprobs
    probs = verdict.logprobs.get("probs")
    if probs:  # pairwise labels: a distribution over the allowed verdicts, argmax = the verdict
        assert math.isclose(sum(probs.values()), 1.0, abs_tol=1e-4)
        assert max(probs, key=probs.get) == verdict.winner
    else:
        lo, hi = template.score_range
        assert lo <= verdict.logprobs["expected_score"] <= hi


def test_logprobs_without_a_regex_come_from_free_generation(tiny_llama):
    (gen,) = HFBackend(*tiny_llama).generate([Request(prompt(5), GenerationParams(max_tokens=4, logprobs=3))])
    assert len(gen.tokens) == len(gen.top_logprobs) == gen.usage["completion_tokens"]
    assert all(len(top) <= 3 and all(lp <= 0 for lp in top.values()) for top in gen.top_logprobs)


def test_a_prompt_longer_than_the_context_is_an_error_not_an_exception(tiny_llama):
    backend = HFBackend(*tiny_llama)  # context 512
    gens = backend.generate([Request(prompt(600), GenerationParams(max_tokens=3)), Request(prompt(3), GenerationParams(max_tokens=3))])
    assert gens[0].error and "context of 512" in gens[0].error and gens[0].text == ""
    assert gens[1].error is None
    (verdict,) = judge_items([PAIR.__class__(**{**PAIR.__dict__, "answer1": "word " * 600})], get_template("pandalm"),
                             backend, mode="verdict")
    assert not verdict.parse_ok and "context" in verdict.error


def test_training_mode_is_restored(tiny_llama):
    model, tokenizer = tiny_llama
    model.train()
    HFBackend(model, tokenizer).generate([Request(prompt(3), GenerationParams(max_tokens=2))])
    assert model.training


def test_loads_base_and_adapter_from_folders(tiny_llama_path, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_llama_path),
                           LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    model.save_pretrained(tmp_path / "adapter")
    backend = HFBackend(tiny_llama_path, adapter=tmp_path / "adapter", dtype="float32")
    assert backend.name == "adapter" and hasattr(backend.model, "peft_config")
    (gen,) = backend.generate([Request(prompt(3), GenerationParams(max_tokens=2))])
    assert gen.error is None


def test_missing_model_path_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match="nope.*does not exist"):
        HFBackend(tmp_path / "nope")
