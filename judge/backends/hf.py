"""A transformers (+ peft) backend: the judge as a local model in this process, either loaded from
folders (`HFBackend.from_pretrained(base, adapter)`) or wrapping a live model, as the evaluation
during training does. Batches are length-sorted and left-padded; results come back in request order.

Verdict-mode requests (a `regex`) are decoded by scoring the verdict tokens of the template whose
verdict regex it is: for each of its `logprob_slots`, one forward pass on the prompt plus the reply
so far, restricted to the tokens that spell one of the slot's values and keep the reply matching the
regex. So the reply always parses, and the per-slot distributions (over the allowed tokens, as with
vLLM's structured output) are returned for `logprob` mode. Templates without slots fall back to
short greedy generation.
"""

from __future__ import annotations

import contextlib
import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import regex as partial_re  # `re` has no partial matching; the `regex` package (a transformers dependency) has
import torch

from ..errors import ConfigError
from ..templates import LogprobSlot, Prompt, get_template, list_templates
from .base import Generation, GenerationParams, Request

DTYPES = {"auto": "auto", "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_SEPARATORS = ("", " ")  # literal text tried between the reply so far and a verdict token


def check_model_path(path: str | os.PathLike, what: str = "model") -> None:
    """A missing local folder is an error naming it; hub ids are tried only when downloads are allowed."""
    if Path(path).exists():
        return
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        raise ConfigError(f"{what} path {path} does not exist (HF_HUB_OFFLINE=1, so it is not downloaded)")


def load_tokenizer(path: str | os.PathLike):
    from transformers import AutoTokenizer

    check_model_path(path, "tokenizer")
    try:
        return AutoTokenizer.from_pretrained(str(path))
    except OSError as e:
        raise ConfigError(f"cannot load the tokenizer from {path}: {e}") from None


def load_model(path: str | os.PathLike, *, dtype: str = "auto", device_map=None, **kwargs):
    """AutoModelForCausalLM.from_pretrained with judgeforge's errors (a bad path exits 2, naming it)."""
    from transformers import AutoModelForCausalLM

    if dtype not in DTYPES:
        raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    check_model_path(path, "base model")
    try:
        return AutoModelForCausalLM.from_pretrained(str(path), dtype=DTYPES[dtype], device_map=device_map, **kwargs)
    except OSError as e:
        raise ConfigError(f"cannot load the model from {path}: {e}") from None


def slots_for_regex(verdict_regex: str) -> tuple[LogprobSlot, ...]:
    """The verdict slots of the registered template(s) with this verdict regex; () when none has
    slots or two templates disagree about them."""
    found = [get_template(n).logprob_slots for n in list_templates() if get_template(n).verdict_regex == verdict_regex]
    return found[0] if found and all(slots == found[0] for slots in found) else ()


class HFBackend:
    """`Backend` over a transformers causal LM (a peft model included)."""

    def __init__(self, model, tokenizer, *, name: str | None = None, batch_size: int = 8,
                 chat_template: bool | None = None, max_context: int | None = None):
        self.model, self.tokenizer = model, tokenizer
        self.name = name or getattr(model.config, "_name_or_path", None) or "hf-model"
        self.batch_size = batch_size
        # Chat models get the template's messages through their chat template; others the raw prompt.
        self.chat = bool(tokenizer.chat_template) if chat_template is None else chat_template
        self.max_context = max_context or getattr(model.config, "max_position_embeddings", None)
        eos = model.generation_config.eos_token_id if model.generation_config else None
        self.eos_ids = [e for e in (eos if isinstance(eos, list) else [eos]) if e is not None] or [tokenizer.eos_token_id]
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_ids[0]
        self._vocab: list[str] | None = None
        self._slot_tokens: dict[tuple, list[tuple[int, str]]] = {}

    @classmethod
    def from_pretrained(cls, base: str | os.PathLike, adapter: str | os.PathLike | None = None, *,
                        dtype: str = "auto", device: str | None = None, **kwargs) -> HFBackend:
        """Base model folder plus an optional PEFT adapter folder (its tokenizer is used when it ships one)."""
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        model = load_model(base, dtype=dtype, device_map=device)
        tokenizer_source = base
        if adapter is not None:
            from peft import PeftModel

            check_model_path(adapter, "adapter")
            model = PeftModel.from_pretrained(model, str(adapter))
            if (Path(adapter) / "tokenizer_config.json").exists():
                tokenizer_source = adapter
        return cls(model, load_tokenizer(tokenizer_source), name=str(adapter or base), **kwargs)

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
                    for i, generation in zip(chunk, self._run(params, [encoded[i] for i in chunk])):
                        results[i] = generation
        return results

    def encode(self, prompt: Prompt) -> list[int]:
        """The prompt's token ids as this model sees them (chat template with the generation prompt)."""
        if self.chat:
            text = self.tokenizer.apply_chat_template(prompt.messages, tokenize=False, add_generation_prompt=True)
            return self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return self.tokenizer(prompt.text)["input_ids"]

    def _refusal(self, request: Request, ids: list[int]) -> str | None:
        if request.adapter not in (None, self.name):
            return f"this backend serves only {self.name}; adapter {request.adapter!r} is not loaded"
        if self.max_context and len(ids) >= self.max_context:
            return f"prompt has {len(ids)} tokens; the model's context is {self.max_context}"
        return None

    @contextlib.contextmanager
    def _inference(self):
        """Eval mode (no dropout) for the call, restoring training mode: training wraps the live model."""
        training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                yield
        finally:
            self.model.train(training)

    def _run(self, params: GenerationParams, batch: list[list[int]]) -> list[Generation]:
        slots = slots_for_regex(params.regex) if params.regex else ()
        if slots:
            return self._decode_slots(params, slots, batch)
        return self._generate(params, batch)

    # ---- free generation ------------------------------------------------------------------
    def _pad(self, batch: list[list[int]]) -> dict:
        padded = self.tokenizer.pad({"input_ids": batch}, padding=True, padding_side="left", return_tensors="pt")
        mask = padded["attention_mask"]
        device = next(self.model.parameters()).device
        return {"input_ids": padded["input_ids"].to(device), "attention_mask": mask.to(device)}

    def _generate(self, params: GenerationParams, batch: list[list[int]]) -> list[Generation]:
        from transformers import GenerationConfig

        inputs = self._pad(batch)
        width = inputs["input_ids"].shape[1]
        room = params.max_tokens if not self.max_context else min(params.max_tokens, self.max_context - width)
        sample = params.temperature > 0
        config = GenerationConfig(
            max_new_tokens=max(room, 1), do_sample=sample, temperature=params.temperature if sample else None,
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
            generations.append(Generation(text=text, tokens=tokens, top_logprobs=top,
                                          usage={"prompt_tokens": len(ids), "completion_tokens": n}))
        return generations

    def _top(self, scores: torch.Tensor, k: int, ids: list[int] | None = None) -> dict[str, float]:
        """Top-k token text -> logprob, over `ids` only when given (renormalised over them)."""
        scores = scores.float()
        if ids is not None:
            scores = torch.full_like(scores, float("-inf")).index_copy(0, torch.tensor(ids, device=scores.device),
                                                                     scores[ids])
        logprobs = torch.log_softmax(scores, dim=-1)
        values, indices = logprobs.topk(min(k, len(ids) if ids is not None else k))
        top: dict[str, float] = {}
        for value, index in zip(values.tolist(), indices.tolist()):
            top.setdefault(self.tokenizer.decode([index]), value)  # two ids may decode alike: keep the likelier
        return top

    # ---- verdict decoding by slots --------------------------------------------------------
    def _decode_slots(self, params: GenerationParams, slots: tuple[LogprobSlot, ...],
                      batch: list[list[int]]) -> list[Generation]:
        n = len(batch)
        texts, tokens, tops = [""] * n, [[] for _ in range(n)], [[] for _ in range(n)]
        errors: list[str | None] = [None] * n
        generator = torch.Generator().manual_seed(params.seed or 0)
        for k, slot in enumerate(slots):
            last = k == len(slots) - 1
            plans = []
            for row in range(n):
                if errors[row]:
                    plans.append(None)
                    continue
                if slot.prefix and not texts[row].endswith(slot.prefix):
                    _emit(texts, tokens, tops, row, slot.prefix)
                plan = self._slot_plan(params.regex, slot, texts[row], last)
                if plan is None:
                    errors[row] = f"no verdict token of slot {k + 1} fits {params.regex!r} after {texts[row]!r}"
                else:
                    if plan[0]:
                        _emit(texts, tokens, tops, row, plan[0])
                plans.append(plan)
            live = [row for row in range(n) if plans[row] is not None]
            if not live:
                break
            logits = self._next_logits([batch[row] + self._ids(texts[row]) for row in live])
            for row, scores in zip(live, logits):
                _, candidates = plans[row]
                ids = [token_id for token_id, _, _ in candidates]
                restricted = scores.float()[ids].cpu()
                if params.temperature > 0:
                    pick = int(torch.multinomial(torch.softmax(restricted / params.temperature, -1), 1,
                                                 generator=generator))
                else:
                    pick = int(restricted.argmax())
                _, token, tail = candidates[pick]
                texts[row] += token
                tokens[row].append(token)
                tops[row].append(self._top(scores, params.logprobs or len(ids), ids))
                if tail:  # the rest of a value the tokenizer splits ("T" + "ie")
                    _emit(texts, tokens, tops, row, tail)
        out = []
        for row, ids in enumerate(batch):
            if errors[row]:
                out.append(Generation(text="", error=errors[row], usage={"prompt_tokens": len(ids), "completion_tokens": 0}))
                continue
            usage = {"prompt_tokens": len(ids), "completion_tokens": len(self._ids(texts[row]))}
            out.append(Generation(text=texts[row], tokens=tokens[row] if params.logprobs else None,
                                  top_logprobs=tops[row] if params.logprobs else None, usage=usage))
        return out

    def _slot_plan(self, verdict_regex: str, slot: LogprobSlot, text: str, last: bool):
        """(lead, [(token id, token text, tail)]): the literal `lead` to append before scoring, and the
        tokens that start one of the slot's values (same label) so that `text + lead + token + tail`
        still matches the regex (fully, for the last slot). One lead per reply: one forward pass."""
        for lead in _SEPARATORS:
            candidates = []
            for token_id, token in self._tokens_of(slot):
                label = slot.values[token.strip()]
                for space in _SEPARATORS:
                    replies = [space + v for v, l in slot.values.items() if l == label]
                    reply = next((r for r in replies if r.startswith(lead + token)
                                  and partial_re.fullmatch(verdict_regex, text + r, partial=not last)), None)
                    if reply is not None:
                        candidates.append((token_id, token, reply[len(lead + token):]))
                        break
            if candidates:
                return lead, candidates
        return None

    def _tokens_of(self, slot: LogprobSlot) -> list[tuple[int, str]]:
        """Vocabulary tokens whose text, stripped, is one of the slot's values (how `read_logprobs`
        recognises them); special tokens excluded."""
        key = tuple(sorted(slot.values))
        if key not in self._slot_tokens:
            if self._vocab is None:
                self._vocab = self.tokenizer.batch_decode([[i] for i in range(len(self.tokenizer))])
            special = set(self.tokenizer.all_special_ids)
            self._slot_tokens[key] = [(i, t) for i, t in enumerate(self._vocab)
                                      if t.strip() in slot.values and t and i not in special]
        return self._slot_tokens[key]

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []

    def _next_logits(self, sequences: list[list[int]]) -> torch.Tensor:
        """Next-token logits after each sequence: one left-padded forward pass, last position only."""
        inputs = self._pad(sequences)
        positions = (inputs["attention_mask"].cumsum(-1) - 1).clamp(min=0)  # left padding shifts positions
        out = self.model(**inputs, position_ids=positions, logits_to_keep=1, use_cache=False)
        return out.logits[:, -1, :]


def _emit(texts: list[str], tokens: list[list[str]], tops: list[list[dict]], row: int, literal: str) -> None:
    """Literal reply text the model is not asked about (a slot's prefix, a separator)."""
    texts[row] += literal
    tokens[row].append(literal)
    tops[row].append({})


def _cut_at_stop(text: str, stop: tuple[str, ...]) -> str:
    """OpenAI semantics: the reply ends before the first stop string."""
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=len(text))
    return text[:cut]
