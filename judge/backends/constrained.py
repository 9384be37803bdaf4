"""Decoding under a regex for the hf backend (verdict mode), as vLLM's structured output does: each
step scores only the tokens that keep the reply a prefix of a match (the end of sequence once it is
a whole match), so the reply always parses. Text the regex forces ("[RESULT]") is written without
asking the model, and a step with a single allowed token needs no forward pass, so a reply costs one
forward pass per real choice (JudgeLM's "8 6": two); the prompt itself runs once, with a KV cache.
With `logprobs`, each choice carries the distribution over the allowed tokens, which
`Template.read_logprobs` turns into verdict probabilities.
"""

from __future__ import annotations

from typing import Protocol

import regex  # `re` has no partial matching; the `regex` package (a transformers dependency) has
import torch

from judge.backends.base import Generation, GenerationParams


class TokenModel(Protocol):
    """What constrained decoding needs of a transformers backend (judge.backends.hf.HFBackend),
    declared here so this module does not import the backend that calls it."""
    model: object
    tokenizer: object
    eos_ids: list[int]
    pad_id: int

    def pad(self, batch: list[list[int]]) -> dict: ...

    def top_logprobs(self, scores, k: int, allowed: list[int] | None = None) -> dict[str, float]: ...


class Constraint:
    """Which tokens may follow a reply so that it stays a prefix of a `pattern` match. The answers
    depend only on the text so far, so they are cached: a verdict regex has a handful of states."""

    def __init__(self, pattern: str, tokenizer, eos_ids: list[int]):
        self.pattern = regex.compile(pattern)
        special = set(tokenizer.all_special_ids)
        vocab = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
        self.vocab = [(i, t) for i, t in enumerate(vocab) if t and i not in special]
        self.chars = sorted({t[0] for _, t in self.vocab})
        self.eos_ids = eos_ids
        self._allowed: dict[str, list[int]] = {}
        self._forced: dict[str, str] = {}

    def _viable(self, text: str) -> bool:
        return self.pattern.fullmatch(text, partial=True) is not None

    def allowed(self, text: str) -> list[int]:
        if text not in self._allowed:
            ids = [i for i, t in self.vocab if self._viable(text + t)]
            if self.pattern.fullmatch(text):
                ids += self.eos_ids[:1]
            self._allowed[text] = ids
        return self._allowed[text]

    def forced(self, text: str) -> str:
        """The characters the pattern dictates after `text`, up to (not including) whitespace: a
        token often carries its leading space (" A"), so the model keeps choosing how to spell it."""
        if text not in self._forced:
            run = ""
            while not self.pattern.fullmatch(text + run):
                nexts = [c for c in self.chars if self._viable(text + run + c)]
                if len(nexts) != 1 or nexts[0].isspace():
                    break
                run += nexts[0]
            self._forced[text] = run
        return self._forced[text]


class CachedPrompt:
    """A left-padded batch of prompts run once with a KV cache; `next_logits` then costs only the
    few reply tokens written since (each row's, right-padded), and the cache is cut back after."""

    def __init__(self, model, inputs: dict):
        self.model, self.mask = model, inputs["attention_mask"]
        positions = (self.mask.cumsum(-1) - 1).clamp(min=0)  # left padding shifts positions
        out = model(**inputs, position_ids=positions, use_cache=True, logits_to_keep=1)
        self.cache, self.first = out.past_key_values, out.logits[:, -1, :]
        self.lengths = self.mask.sum(-1, keepdim=True)

    def next_logits(self, replies: list[list[int]], pad_id: int) -> torch.Tensor:
        width = max(len(r) for r in replies)
        if width == 0:
            return self.first
        device = self.mask.device
        ids = torch.tensor([r + [pad_id] * (width - len(r)) for r in replies], device=device)
        reply_mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in replies], device=device)
        out = self.model(input_ids=ids, attention_mask=torch.cat([self.mask, reply_mask.to(self.mask.dtype)], -1),
                         position_ids=self.lengths + torch.arange(width, device=device), past_key_values=self.cache,
                         use_cache=True)
        self.cache.crop(-width)
        last = torch.tensor([max(len(r) - 1, 0) for r in replies], device=device)
        logits = out.logits[torch.arange(len(replies), device=device), last]
        empty = torch.tensor([len(r) == 0 for r in replies], device=device)
        return torch.where(empty[:, None], self.first, logits)


def decode_constrained(backend: TokenModel, constraint: Constraint, params: GenerationParams,
                       batch: list[list[int]]) -> list[Generation]:
    """One reply per prompt of `batch` (token ids), each a prefix of a `constraint` match."""
    tokenizer, eos_ids = backend.tokenizer, backend.eos_ids
    n = len(batch)
    texts, new_ids = [""] * n, [[] for _ in range(n)]
    tokens, tops = [[] for _ in range(n)], [[] for _ in range(n)]
    done = [False] * n
    generator = torch.Generator().manual_seed(params.seed or 0)

    def take(row: int, token_id: int, top: dict) -> None:
        new_ids[row].append(token_id)
        tops[row].append(top)
        if token_id in eos_ids:
            tokens[row].append("")
            done[row] = True
        else:
            tokens[row].append(tokenizer.decode([token_id]))
            texts[row] += tokens[row][-1]

    prompt = None  # the batch's prompt, run once with a KV cache when the first choice comes
    while True:
        choosing = []  # (row, allowed ids) that need the model
        for row in range(n):
            while not done[row] and len(new_ids[row]) < params.max_tokens:
                forced = constraint.forced(texts[row])
                if forced:  # text the regex dictates: written, not scored
                    for token_id in tokenizer(forced, add_special_tokens=False)["input_ids"]:
                        take(row, token_id, {})
                    continue
                allowed = constraint.allowed(texts[row])
                if len(allowed) == 1:
                    take(row, allowed[0], {})
                    continue
                if allowed:
                    choosing.append((row, allowed))
                else:
                    done[row] = True  # a whole match nothing can extend, or no token fits (reply fails to parse)
                break
        if not choosing:
            break
        prompt = prompt or CachedPrompt(backend.model, backend.pad(batch))
        logits = prompt.next_logits(new_ids, backend.pad_id)
        for row, allowed in choosing:
            restricted = logits[row].float()[allowed].cpu()
            if params.temperature > 0:
                probs = torch.softmax(restricted / params.temperature, -1)
                pick = int(torch.multinomial(probs, 1, generator=generator))
            else:
                pick = int(restricted.argmax())
            take(row, allowed[pick], backend.top_logprobs(logits[row], params.logprobs or 1, allowed))
    return [Generation(text=texts[row], tokens=tokens[row] if params.logprobs else None,
                       top_logprobs=tops[row] if params.logprobs else None,
                       usage={"prompt_tokens": len(batch[row]), "completion_tokens": len(new_ids[row])})
            for row in range(n)]
