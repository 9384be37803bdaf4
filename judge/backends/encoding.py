"""The token ids a local judge sees for a prompt, computed once and used everywhere: training
tokenizes its prompts with `encode_prompt`, the hf backend generates from these ids, the vLLM
backend hands them to the engine as they are, and every context-length check counts them.

A chat template that starts with the BOS token (Llama-3, Mistral) already writes it into the text,
so the text is tokenized without special tokens; tokenizing it again with them (what an engine does
to a text prompt) would give the model a second BOS it never saw in training.
"""

from __future__ import annotations


def chat_or_raw(tokenizer, prompt) -> str:
    """The prompt text the model sees: the chat template applied to the messages where the tokenizer
    has one, else the template's raw completion prompt (JudgeLM/PandaLM-style base models)."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(prompt.messages, tokenize=False, add_generation_prompt=True)
    return prompt.text


def encode_prompt(tokenizer, prompt) -> list[int]:
    """The prompt's token ids as the model sees them: the chat template with the generation prompt
    (its special tokens are in the text), else the raw prompt with the tokenizer's special tokens."""
    text = chat_or_raw(tokenizer, prompt)
    return tokenizer(text, add_special_tokens=not getattr(tokenizer, "chat_template", None))["input_ids"]


def context_refusal(prompt_ids: list[int], max_tokens: int, context: int | None) -> str | None:
    """Why a prompt cannot be judged within `context` tokens (None when it can): a per-request failure,
    recorded on its verdict."""
    if context and len(prompt_ids) + max_tokens > context:
        return (f"prompt of {len(prompt_ids)} tokens + {max_tokens} to generate exceeds the model context of "
                f"{context}")
    return None
