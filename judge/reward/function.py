"""`JudgeReward`: a judge as a reward function for TRL's `GRPOTrainer(reward_funcs=[...])`.

TRL calls `f(prompts=[...], completions=[...], **columns)` once per batch and wants one float per
completion, or None where it does not apply (it then leaves that completion out of the reward
statistics and, when every reward function says None, out of the loss). `AsyncJudgeReward` is the
same with `async def __call__`, which TRL runs on its own event loop concurrently with the other
async reward functions.

Every judgment goes through the one judging path (`judge.scoring.judging`: template, backend, parser), so a
reward is exactly what `judgeforge score` would say about the same item. A completion whose
judgment gives no grade is None, counted (`unparsed`), logged and reported to TRL as the metric
`judge_reward/unparsed`; a judge that is down raises after the backend's retries: a run never trains
on invented rewards.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

from judge.backends.adapters import choose_template, find_adapter_info
from judge.backends.base import Backend, BackendError, Generation
from judge.backends.retry import RetryPolicy
from judge.reward.plan import KINDS, TEMPLATE_MODE, plan_calls, rewards_from, text_of
from judge.scoring.judging import params_for, request_for, verdict_from

log = logging.getLogger("judgeforge.reward")


class JudgeReward:
    """A judge as a TRL reward function.

    `model`: the judge's model name at `base_url` (any OpenAI-compatible endpoint: vLLM,
    `judgeforge serve`, OpenAI), or pass an in-process `backend` instead. `template`: the judge's
    prompt (default: its own, as `judgeforge serve` lists it at /v1/models or a local judge folder's
    judgeforge.json says, else judgelm for the pairwise kinds and prometheus-absolute for pointwise). `mode`: full, verdict or logprob
    (default: the expected grade from the verdict-token probabilities, a smooth reward).
    `kind`: pointwise, pairwise (against the reference) or group (win rate within one prompt's
    completions); `reference_key`: the dataset column holding reference answers (used where
    present). `swap` asks pairwise comparisons in both orders and averages them (position bias).
    """

    def __init__(self, model: str | None = None, base_url: str | None = None, api_key: str | None = None,
                 template: str | None = None, mode: str = "logprob", reference_key: str = "reference",
                 concurrency: int = 16, *, kind: str = "pointwise", swap: bool = False, max_tokens: int = 512,
                 backend: Backend | None = None, retry: RetryPolicy = RetryPolicy(), timeout: float = 600.0,
                 name: str | None = None):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if backend is None:
            if not model:
                raise ValueError("JudgeReward needs the judge's model name (with base_url), or a backend")
            from judge.backends.openai import OpenAIBackend

            backend = OpenAIBackend(model, base_url, api_key, concurrency=concurrency, retry=retry, timeout=timeout)
            if template is None:  # the judge's own template, where its server lists one (judgeforge serve)
                template = served_template(backend.base_url, backend.api_key, model, TEMPLATE_MODE[kind])
        info = find_adapter_info(model) if model and not base_url and Path(model).is_dir() else None
        self.template = choose_template(TEMPLATE_MODE[kind], explicit=template, info=info,
                                        context=f"; the {kind} reward needs a {TEMPLATE_MODE[kind]} template")
        self.params = params_for(self.template, mode, max_tokens=max_tokens)
        self.backend, self.mode, self.kind, self.swap = backend, mode, kind, swap
        self.reference_key = reference_key
        self.__name__ = name or f"judge_{kind}"
        self.judged = 0  # completions rewarded
        self.unparsed = 0  # completions whose judgment gave no grade (reward None)
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop the backend's async client was made on

    def _calls(self, prompts: Sequence, completions: Sequence, columns: dict):
        references = columns.get(self.reference_key) or [None] * len(completions)
        questions = [text_of(p) for p in prompts]
        answers = [text_of(c) for c in completions]
        refs = [None if r is None else text_of(r) for r in references]
        calls = plan_calls(self.kind, questions, answers, refs, self.swap)
        requests = [request_for(self.template, call.item, call.order, self.params) for call in calls]
        return calls, requests

    def _rewards(self, size: int, calls, generations: Sequence[Generation], columns: dict) -> list[float | None]:
        verdicts = [verdict_from(self.template, call.item.id, call.order, generation, mode=self.mode,
                                 judge=self.backend.name) for call, generation in zip(calls, generations)]
        rewards, _ = rewards_from(self.kind, self.template, size, calls, verdicts)
        missing = [i for i, r in enumerate(rewards) if r is None]
        self.judged += size
        self.unparsed += len(missing)
        if missing:
            failed = next((v for v in verdicts if not v.parse_ok), None)
            log.warning("%s: no grade for %d of %d completions (indices %s; reward None): %s", self.__name__,
                        len(missing), size, missing[:20], failed.error or repr(failed.raw[:200]) if failed else
                        "no comparison in their group")
        if callable(columns.get("log_metric")):
            columns["log_metric"](f"{self.__name__}/unparsed", float(len(missing)))
        return rewards

    def __call__(self, prompts: Sequence, completions: Sequence, **columns) -> list[float | None]:
        calls, requests = self._calls(prompts, completions, columns)
        return self._rewards(len(completions), calls, self.backend.generate(requests) if requests else [], columns)

    async def acall(self, prompts: Sequence, completions: Sequence, **columns) -> list[float | None]:
        """The same rewards from inside an event loop: requests run concurrently on the backend's
        long-lived client (`acomplete`), or in a worker thread for a backend without one."""
        calls, requests = self._calls(prompts, completions, columns)
        complete = getattr(self.backend, "acomplete", None)
        if complete is None:
            generations = await asyncio.to_thread(self.backend.generate, requests) if requests else []
        else:
            self._bind_client()
            generations = await asyncio.gather(*(complete(r) for r in requests))
        return self._rewards(len(completions), calls, generations, columns)

    def _bind_client(self) -> None:
        """An async client belongs to the event loop it was made on: a call from another loop (a
        second `asyncio.run`) gets a new one."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop and getattr(self.backend, "client", None) is not None:
            self.backend.client = None  # the old loop is gone: its client cannot be closed from here
        self._loop = loop


def served_template(base_url: str, api_key: str, model: str, mode: str) -> str | None:
    """The template `judgeforge serve` lists for `model` and `mode` at GET /v1/models (a trained judge's
    own); None where the server lists none (vLLM, OpenAI) or has no model list (404). A server that
    cannot be reached, refuses the key or fails raises: the default template could be the wrong one."""
    import httpx

    try:
        response = httpx.get(base_url.rstrip("/") + "/models", headers={"Authorization": f"Bearer {api_key}"},
                             timeout=30.0)
    except httpx.HTTPError as e:
        raise BackendError(f"cannot reach the judge at {base_url} to read its template ({e}); is it running? "
                           f"(template= skips this)") from None
    if response.status_code in (401, 403):  # a wrong key would fail every reward call after this one
        raise BackendError(f"the judge at {base_url} refused the key (HTTP {response.status_code}) when its "
                           f"template was read: give api_key= (or set OPENAI_API_KEY)")
    if response.status_code == 404:  # a server without a model list: no template of its own to read
        return None
    if response.status_code != 200:  # a failing server: the default template could be the wrong one
        raise BackendError(f"the judge at {base_url} answered HTTP {response.status_code} when its template was "
                           f"read from /models; retry when it is healthy (template= skips this)")
    try:
        entries = response.json().get("data", [])
    except (ValueError, AttributeError):  # a 200 that is no model list (a proxy's page?): not "no template"
        raise BackendError(f"the judge at {base_url} answered /models with something that is not a model list; "
                           f"is base_url the judge's /v1? (template= skips this)") from None
    return next(((e.get("templates") or {}).get(mode) for e in entries if isinstance(e, dict) and e.get("id") == model),
                None)


class AsyncJudgeReward(JudgeReward):
    """`JudgeReward` with `async def __call__`: TRL (which checks the class's `__call__`) runs it on its
    event loop, concurrently with other async reward functions."""

    async def __call__(self, prompts: Sequence, completions: Sequence, **columns) -> list[float | None]:
        return await self.acall(prompts, completions, **columns)
