"""From items to verdicts through a backend: build the request for (item, order, mode), turn the
generation into a Verdict with the template's parser. Shared by `score`, the judge server, and
the evaluation that runs during training, so all three judge exactly the same way.

Modes: `full` (free text, parsed), `verdict` (the reply constrained to the template's verdict
regex: always parses), `logprob` (verdict mode plus the top logprobs at the verdict token(s):
probabilities of 1/2/tie, or the expected score for pointwise templates, G-Eval style).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from judge.backends.base import Backend, BackendError, Generation, GenerationParams, Request
from judge.core.errors import ConfigError
from judge.core.records import Item, Verdict
from judge.templates import Prompt, Template

MODES = ("full", "verdict", "logprob")
TOP_LOGPROBS = 20


def params_for(template: Template, mode: str, *, max_tokens: int = 512, temperature: float = 0.0,
               seed: int | None = 0) -> GenerationParams:
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "full":
        return GenerationParams(max_tokens=max_tokens, temperature=temperature, seed=seed)
    if mode == "logprob" and not template.logprob_slots:
        raise ConfigError(f"template {template.name} has no verdict token to read probabilities from; "
                          f"use --mode verdict or full")
    return GenerationParams(max_tokens=template.verdict_max_tokens, temperature=0.0, seed=seed,
                            regex=template.verdict_regex, logprobs=TOP_LOGPROBS if mode == "logprob" else None)


def request_for(template: Template, item: Item, order: str, params: GenerationParams, adapter: str | None = None) -> Request:
    return Request(prompt=template.render(item, order), params=params, adapter=adapter)


def orders_for(swap: bool, mode: str) -> tuple[str, ...]:
    return ("ab", "ba") if swap and mode == "pairwise" else ("ab",)


def verdict_from(template: Template, item_id: str, order: str, generation: Generation, *, mode: str,
                 judge: str | None, sample: int = 0) -> Verdict:
    """The Verdict for one generation, mapped back to the original answer order (by the template,
    probabilities included). A backend error (e.g. the prompt exceeds the context) is a recorded
    failure, like a reply that does not parse."""
    if generation.error:
        return Verdict(id=item_id, order=order, raw=generation.text or "", parse_ok=False, judge=judge,
                       template=template.key, template_hash=template.text_hash, usage=generation.usage,
                       error=generation.error, sample=sample)
    info = None
    if mode == "logprob" and generation.tokens and generation.top_logprobs:
        info = template.read_logprobs(generation.tokens, generation.top_logprobs) or None
    verdict = template.verdict(item_id, order, generation.text, judge=judge, usage=generation.usage, sample=sample,
                               logprobs=info)
    if info and "expected_score" in info and verdict.parse_ok:
        verdict.scores = [info["expected_score"]]
    return verdict


def iter_verdicts(items: Sequence[Item], template: Template, backend: Backend, *, mode: str = "full",
                  swap: bool = False, batch_size: int = 64, params: GenerationParams | None = None,
                  adapter: str | None = None, done: set[tuple[str, str]] | None = None,
                  progress=None) -> Iterator[list[Verdict]]:
    """Judge every (item, order) not in `done`, a batch at a time; yields each batch's verdicts so
    the caller can persist them before the next batch (resumable runs). `progress` is a tqdm-like
    object updated by the number of judged calls. When the backend stops (BackendError), the
    verdicts of the batch's requests that did come back are yielded first, then the error raised."""
    calls = [(item.id, order, item) for item in items for order in orders_for(swap, template.mode)
             if not done or (item.id, order) not in done]
    yield from iter_calls(calls, template, backend, render=template.render, mode=mode, batch_size=batch_size,
                          params=params, adapter=adapter, progress=progress)


def iter_calls(calls: Sequence[tuple[str, str, Any]], template: Template, backend: Backend, *,
               render: Callable[[Any, str], Prompt], mode: str = "full", batch_size: int = 64,
               params: GenerationParams | None = None, adapter: str | None = None,
               progress=None) -> Iterator[list[Verdict]]:
    """The loop under `iter_verdicts`, for callers whose prompts come from elsewhere: `calls` are
    (item id, order, source), each prompt is `render(source, order)` (an item through the template;
    a training row's own messages), rendered a batch at a time, then generated and read by
    `verdict_from`. Batches, progress and BackendError as in `iter_verdicts`."""
    params = params or params_for(template, mode)

    def judged(pairs) -> list[Verdict]:
        return [verdict_from(template, item_id, order, gen, mode=mode, judge=backend.name)
                for (item_id, order, _), gen in pairs]

    for start in range(0, len(calls), batch_size):
        batch = calls[start:start + batch_size]
        requests = [Request(prompt=render(source, order), params=params, adapter=adapter) for _, order, source in batch]
        try:
            generations = backend.generate(requests)
        except BackendError as e:
            answered = [(key, gen) for key, gen in zip(batch, e.partial) if gen is not None]
            if answered:
                yield judged(answered)
            raise
        yield judged(zip(batch, generations))
        if progress is not None:
            progress.update(len(batch))


def judge_items(items: Iterable[Item], template: Template, backend: Backend, **kwargs) -> list[Verdict]:
    """All verdicts at once (see `iter_verdicts`)."""
    return [v for batch in iter_verdicts(list(items), template, backend, **kwargs) for v in batch]
