"""Decoding under a regex (the hf backend's verdict mode) on a tiny random Llama: which tokens may
come next, and the prompt's KV cache that makes each choice cost only the reply's tokens."""

import torch

from judge.backends.constrained import CachedPrompt, Constraint
from judge.backends.hf import HFBackend
from judge.templates import Prompt


def prompt(words: int) -> Prompt:
    text = " ".join(f"word{i}" for i in range(words))
    return Prompt(messages=[{"role": "user", "content": text}], text=text)


def test_the_regex_decides_which_tokens_may_come_next(tiny_llama):
    """SmolLM2 spells "Tie" as "T" + "ie" and "10" as "1" + "0": both stay reachable; forced text
    ("[RESULT]") is written without asking the model, up to a space the model may fold into " A"."""
    backend = HFBackend(*tiny_llama)
    decode = backend.tokenizer.decode

    def constraint(pattern):
        return Constraint(pattern, backend.tokenizer, backend.eos_ids)

    pandalm = constraint("(1|2|Tie)")
    assert {"1", "2", "T"} <= {decode([i]) for i in pandalm.allowed("")} and pandalm.forced("T") == "ie"
    judgelm = constraint(r"([1-9]|10) ([1-9]|10)")
    assert {decode([i]) for i in judgelm.allowed("1")} == {"0", " "}
    assert [decode([i]) for i in judgelm.allowed("8")] == [" "]
    assert {decode([i]) for i in judgelm.allowed("8 1")} == {"0", "<|im_end|>"}  # "8 1" may end or go on to 10
    assert judgelm.allowed("8 10") == backend.eos_ids[:1]  # nothing extends a whole "10": only the end
    relative = constraint(r"\[RESULT\] (A|B)")
    assert relative.forced("") == "[RESULT]" and " A" in {decode([i]) for i in relative.allowed("[RESULT]")}


def test_cached_prompt_logits_equal_a_full_forward_pass(tiny_llama):
    """Verdict decoding runs the prompt once and then only the reply tokens: same logits as running
    prompt + reply from scratch, row by row, whatever the padding."""
    model, tokenizer = tiny_llama
    backend = HFBackend(model, tokenizer)
    prompts = [backend.encode(prompt(n)) for n in (12, 3, 7)]
    replies = [[33, 216], [], [40]]
    with torch.inference_mode():
        cached = CachedPrompt(model, backend.pad(prompts))
        for _ in range(2):  # the cache is cut back after each call: asking twice gives the same answer
            got = cached.next_logits(replies, backend.pad_id)
            for row, (p, r) in enumerate(zip(prompts, replies)):
                want = model(input_ids=torch.tensor([p + r])).logits[0, -1]
                torch.testing.assert_close(got[row], want, atol=1e-4, rtol=1e-4)
