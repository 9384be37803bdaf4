"""A transformers (+ peft) backend: the judge as a local model in this process, either loaded from
folders (`HFBackend("models/base", adapter="runs/x/adapter")`) or wrapping a live model and
tokenizer, as the evaluation during training does. Batches are length-sorted and left-padded;
results come back in request order.

Verdict-mode requests (a `regex`) are decoded under the regex, as vLLM's structured output does:
each step scores only the tokens that keep the reply a prefix of a match (the end of sequence once
it is a whole match), so the reply always parses. Text the regex forces ("[RESULT]") is written
without asking the model, and a step with a single allowed token needs no forward pass, so a reply
costs one forward pass per real choice (JudgeLM's "8 6": two). With `logprobs`, each choice carries
the distribution over the allowed tokens, which `Template.read_logprobs` turns into verdict
probabilities.
"""

from __future__ import annotations

import contextlib
import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import regex  # `re` has no partial matching; the `regex` package (a transformers dependency) has
import torch

from ..models import load_judge
from .base import Generation, GenerationParams, Request
from .encoding import context_refusal, encode_prompt

class HFBackend:
    """`Backend` over a transformers causal LM. `model` is a folder (loaded, with `adapter` on top
    and the adapter's tokenizer when it ships one) or a live model (a peft model included), then
    `tokenizer` is required."""

    def __init__(self, model, tokenizer=None, *, adapter: str | os.PathLike | None = None, name: str | None = None,
                 dtype: str = "auto", device: str | None = None, batch_size: int = 8, max_context: int | None = None):
        if isinstance(model, (str, os.PathLike)):
            name = name or Path(adapter or model).name
            model, tokenizer = load_judge(model, adapter, dtype=dtype, device=device)
        elif tokenizer is None or adapter is not None:
            raise TypeError("a live model needs its tokenizer, and takes no adapter path (wrap it with peft first)")
        self.model, self.tokenizer = model, tokenizer
        self.name = name or Path(getattr(model.config, "_name_or_path", "") or "hf-model").name
        self.batch_size = batch_size
        self.max_context = max_context or getattr(model.config, "max_position_embeddings", None)
        eos = model.generation_config.eos_token_id if model.generation_config else None
        self.eos_ids = [e for e in (eos if isinstance(eos, list) else [eos]) if e is not None] or [tokenizer.eos_token_id]
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_ids[0]
        self._constraints: dict[str, _Constraint] = {}

    # ---- the Backend interface -------------------------------------------------------------
    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        results: list[Generation | None] = [None] * len(requests)
        encoded = [self.encode(r.prompt) for r in requests]
        groups: dict[GenerationParams, list[int]] = defaultdict(list)
        for i, (request, ids) in enumerate(zip(requests, encoded)):
            error = self._refusal(request, ids)
            if error:
                results[i] = Generation(text="", error=error, usage={"prompt_tokens": len(ids), "completion_tokens": 0})
            else:
                groups[request.params].append(i)
        with self._inference():
            for params, indices in groups.items():
                indices.sort(key=lambda i: -len(encoded[i]))  # similar lengths share a batch: little padding
                for start in range(0, len(indices), self.batch_size):
                    chunk = indices[start:start + self.batch_size]
                    run = self._constrained if params.regex else self._generate
                    for i, generation in zip(chunk, run(params, [encoded[i] for i in chunk])):
                        results[i] = generation
        return results

    def encode(self, prompt) -> list[int]:
        return encode_prompt(self.tokenizer, prompt)

    def _refusal(self, request: Request, ids: list[int]) -> str | None:
        if request.adapter not in (None, self.name):
            return f"this backend serves only {self.name}; adapter {request.adapter!r} is not loaded"
        return context_refusal(ids, request.params.max_tokens, self.max_context)

    @contextlib.contextmanager
    def _inference(self):
        """Eval mode (no dropout) for the call, then the caller's mode again: training wraps the live model."""
        training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                yield
        finally:
            self.model.train(training)

    def _pad(self, batch: list[list[int]]) -> dict:
        padded = self.tokenizer.pad({"input_ids": batch}, padding=True, padding_side="left", return_tensors="pt")
        device = next(self.model.parameters()).device
        return {"input_ids": padded["input_ids"].to(device), "attention_mask": padded["attention_mask"].to(device)}

    def _usage(self, prompt: list[int], completion: int) -> dict:
        return {"prompt_tokens": len(prompt), "completion_tokens": completion}

    # ---- free generation ------------------------------------------------------------------
    def _generate(self, params: GenerationParams, batch: list[list[int]]) -> list[Generation]:
        from transformers import GenerationConfig

        inputs = self._pad(batch)
        width = inputs["input_ids"].shape[1]
        sample = params.temperature > 0
        config = GenerationConfig(
            max_new_tokens=params.max_tokens, do_sample=sample, temperature=params.temperature if sample else None,
            top_k=None, top_p=None, pad_token_id=self.pad_id, eos_token_id=self.eos_ids,
            stop_strings=list(params.stop) or None, return_dict_in_generate=True, output_scores=bool(params.logprobs),
        )
        if sample and params.seed is not None:
            torch.manual_seed(params.seed)
        out = self.model.generate(**inputs, generation_config=config, tokenizer=self.tokenizer)
        generations = []
        for row, ids in enumerate(batch):
            new = out.sequences[row, width:].tolist()
            n = next((k for k, t in enumerate(new) if t in self.eos_ids or t == self.pad_id), len(new))
            text = _cut_at_stop(self.tokenizer.decode(new[:n], skip_special_tokens=True), params.stop)
            tokens = top = None
            if params.logprobs:
                tokens = [self.tokenizer.decode([t]) for t in new[:n]]
                top = [self._top(out.scores[k][row], params.logprobs) for k in range(n)]
            generations.append(Generation(text=text, tokens=tokens, top_logprobs=top, usage=self._usage(ids, n)))
        return generations

    def _top(self, scores: torch.Tensor, k: int, allowed: list[int] | None = None) -> dict[str, float]:
        """Top-k token text -> logprob; over the `allowed` ids only when given (renormalised over them).
        The end of sequence reads as ""."""
        scores = scores.float()
        ids = torch.arange(scores.shape[-1], device=scores.device) if allowed is None else torch.tensor(allowed)
        logprobs = torch.log_softmax(scores[ids.to(scores.device)], dim=-1)
        values, positions = logprobs.topk(min(k, len(ids)))
        top: dict[str, float] = {}
        for value, position in zip(values.tolist(), positions.tolist()):
            token_id = int(ids[position])
            text = "" if token_id in self.eos_ids else self.tokenizer.decode([token_id])
            top.setdefault(text, value)  # two ids may decode alike: keep the likelier
        return top

    # ---- decoding under a regex (verdict mode) -------------------------------------------
    def _constraint(self, pattern: str) -> _Constraint:
        if pattern not in self._constraints:
            self._constraints[pattern] = _Constraint(pattern, self.tokenizer, self.eos_ids)
        return self._constraints[pattern]

    def _constrained(self, params: GenerationParams, batch: list[list[int]]) -> list[Generation]:
        constraint = self._constraint(params.regex)
        n = len(batch)
        texts, new_ids = [""] * n, [[] for _ in range(n)]
        tokens, tops = [[] for _ in range(n)], [[] for _ in range(n)]
        done = [False] * n
        generator = torch.Generator().manual_seed(params.seed or 0)

        def take(row: int, token_id: int, top: dict) -> None:
            new_ids[row].append(token_id)
            tops[row].append(top)
            if token_id in self.eos_ids:
                tokens[row].append("")
                done[row] = True
            else:
                tokens[row].append(self.tokenizer.decode([token_id]))
                texts[row] += tokens[row][-1]

        prompt = None  # the batch's prompt, run once with a KV cache when the first choice comes
        while True:
            choosing = []  # (row, allowed ids) that need the model
            for row in range(n):
                while not done[row] and len(new_ids[row]) < params.max_tokens:
                    forced = constraint.forced(texts[row])
                    if forced:  # text the regex dictates: written, not scored
                        for token_id in self.tokenizer(forced, add_special_tokens=False)["input_ids"]:
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
            prompt = prompt or _CachedPrompt(self.model, self._pad(batch))
            logits = prompt.next_logits(new_ids, self.pad_id)
            for row, allowed in choosing:
                restricted = logits[row].float()[allowed].cpu()
                if params.temperature > 0:
                    probs = torch.softmax(restricted / params.temperature, -1)
                    pick = int(torch.multinomial(probs, 1, generator=generator))
                else:
                    pick = int(restricted.argmax())
                take(row, allowed[pick], self._top(logits[row], params.logprobs or 1, allowed))
        return [Generation(text=texts[row], tokens=tokens[row] if params.logprobs else None,
                           top_logprobs=tops[row] if params.logprobs else None,
                           usage=self._usage(batch[row], len(new_ids[row]))) for row in range(n)]


class _CachedPrompt:
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


class _Constraint:
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


def _cut_at_stop(text: str, stop: tuple[str, ...]) -> str:
    """OpenAI semantics: the reply ends before the first stop string."""
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=len(text))
    return text[:cut]
