"""A transformers (+ peft) backend: the judge as a local model in this process, either loaded from
folders (`HFBackend("models/base", adapter="runs/x/adapter")`, through `judge.backends.models.load_judge`) or
wrapping a live model and tokenizer, as the evaluation during training does. Batches are
length-sorted and left-padded; results come back in request order. Verdict-mode requests (a `regex`)
are decoded under the regex by `judge.backends.constrained`, so the reply always parses.
"""

from __future__ import annotations

import contextlib
import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import torch

from judge.backends.base import Generation, GenerationParams, Request
from judge.backends.constrained import Constraint, decode_constrained
from judge.backends.dtype import DtypeChoice, choose_dtype, torch_device
from judge.backends.encoding import context_refusal, encode_prompt
from judge.backends.models import load_judge


class HFBackend:
    """`Backend` over a transformers causal LM. `model` is a folder (loaded, with `adapter` on top
    and the adapter's tokenizer when it ships one) or a live model (a peft model included), then
    `tokenizer` is required. A loaded model's dtype follows the one rule (judge.backends.dtype: `dtype="auto"`);
    `load_in_4bit` quantizes the base as QLoRA trained it (the adapter's judgeforge.json)."""

    def __init__(self, model, tokenizer=None, *, adapter: str | os.PathLike | None = None, name: str | None = None,
                 dtype: str = "auto", device: str | None = None, batch_size: int = 8, max_context: int | None = None,
                 load_in_4bit: bool = False):
        self.dtype: DtypeChoice | None = None  # how a loaded model's dtype was chosen (None for a live model)
        if isinstance(model, (str, os.PathLike)):
            name = name or Path(adapter or model).name
            device = device or torch_device()
            self.dtype = choose_dtype(dtype, "cuda" if device.startswith("cuda") else "cpu")
            model, tokenizer = load_judge(model, adapter, dtype=self.dtype.dtype, device=device,
                                          load_in_4bit=load_in_4bit)
        elif tokenizer is None or adapter is not None or load_in_4bit:
            raise TypeError("a live model needs its tokenizer, and takes no adapter path or quantization (wrap it "
                            "with peft first)")
        self.model, self.tokenizer = model, tokenizer
        self.name = name or Path(getattr(model.config, "_name_or_path", "") or "hf-model").name
        self.batch_size = batch_size
        self.max_context = max_context or getattr(model.config, "max_position_embeddings", None)
        eos = model.generation_config.eos_token_id if model.generation_config else None
        self.eos_ids = [e for e in (eos if isinstance(eos, list) else [eos]) if e is not None] or [tokenizer.eos_token_id]
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_ids[0]
        self._constraints: dict[str, Constraint] = {}

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

    def pad(self, batch: list[list[int]]) -> dict:
        """Left-padded tensors on the model's device (the last token of every row is the prompt's last)."""
        padded = self.tokenizer.pad({"input_ids": batch}, padding=True, padding_side="left", return_tensors="pt")
        device = next(self.model.parameters()).device
        return {"input_ids": padded["input_ids"].to(device), "attention_mask": padded["attention_mask"].to(device)}

    # ---- free generation ------------------------------------------------------------------
    def _generate(self, params: GenerationParams, batch: list[list[int]]) -> list[Generation]:
        from transformers import GenerationConfig

        inputs = self.pad(batch)
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
                top = [self.top_logprobs(out.scores[k][row], params.logprobs) for k in range(n)]
            generations.append(Generation(text=text, tokens=tokens, top_logprobs=top,
                                          usage={"prompt_tokens": len(ids), "completion_tokens": n}))
        return generations

    def top_logprobs(self, scores: torch.Tensor, k: int, allowed: list[int] | None = None) -> dict[str, float]:
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
    def _constraint(self, pattern: str) -> Constraint:
        if pattern not in self._constraints:  # built once per pattern: it decodes the whole vocabulary
            self._constraints[pattern] = Constraint(pattern, self.tokenizer, self.eos_ids)
        return self._constraints[pattern]

    def _constrained(self, params: GenerationParams, batch: list[list[int]]) -> list[Generation]:
        return decode_constrained(self, self._constraint(params.regex), params, batch)


def _cut_at_stop(text: str, stop: tuple[str, ...]) -> str:
    """OpenAI semantics: the reply ends before the first stop string."""
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=len(text))
    return text[:cut]
