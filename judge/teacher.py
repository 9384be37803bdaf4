"""The teacher: any OpenAI-compatible chat endpoint (OpenAI, vLLM's server, Ollama's `/v1`) behind
`openai.AsyncOpenAI`, with bounded concurrency, a per-request timeout and retries by cause
(`judge.retry`, the policy the OpenAI backend uses too).

Requests go through the client's raw `post` (the SDK's documented way to send a body as is, with
the same auth, timeout and error classes) rather than the typed `chat.completions.create`, which
re-validates every message against its TypedDicts: ~0.5 ms of CPU per request, a sixth of the
throughput at 64 concurrent requests on a 2-core machine.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass

from .backends.openai import sampling_fields
from .errors import ConfigError, TeacherError
from .retry import CAUSES, BadReply, Endpoint, PromptTooLong, Retrier, RetryPolicy

__all__ = ["CAUSES", "Reply", "Teacher", "TeacherConfig"]  # CAUSES: distill's stats name the retry causes


@dataclass(frozen=True)
class TeacherConfig:
    model: str
    base_url: str | None = None  # default: $OPENAI_BASE_URL, else OpenAI
    api_key: str | None = None  # default: $OPENAI_API_KEY
    concurrency: int = 8  # requests in flight at once (a request keeps its slot while it backs off)
    timeout: float = 120.0  # seconds per attempt
    max_retries: int = RetryPolicy.max_retries  # the retry policy's defaults live in judge.retry
    temperature: float = 0.0
    seed: int | None = 0
    max_tokens: int = 1024
    regex: str | None = None  # constrain replies with vLLM structured outputs (vLLM-served teachers only)
    backoff: float = RetryPolicy.backoff
    max_backoff: float = RetryPolicy.max_backoff
    max_retry_after: float = RetryPolicy.max_retry_after

    def __post_init__(self):
        if self.concurrency < 1:
            raise ConfigError(f"--concurrency must be at least 1, got {self.concurrency}")
        if self.timeout <= 0:
            raise ConfigError(f"--timeout must be positive, got {self.timeout}")
        if self.max_tokens < 1:
            raise ConfigError(f"--max-tokens must be at least 1, got {self.max_tokens}")
        self.retry_policy  # checks --max-retries and the backoff settings now, before any work

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.max_retries, self.backoff, self.max_backoff, self.max_retry_after)

    @property
    def resolved_base_url(self) -> str | None:
        return self.base_url or os.environ.get("OPENAI_BASE_URL") or None

    def sampling(self, sample: int = 0) -> dict:
        """The request's sampling parameters. Sample k uses seed + k, so K samples differ even on a
        server that honours the seed."""
        return sampling_fields(max_tokens=self.max_tokens, temperature=self.temperature, regex=self.regex,
                               seed=None if self.seed is None else self.seed + sample)


@dataclass
class Reply:
    text: str
    usage: dict | None  # {"prompt_tokens": n, "completion_tokens": m} as the API reported them
    model: str | None = None  # the model name the server answered with
    finish_reason: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


def _client(config: TeacherConfig):
    import openai

    base_url = config.resolved_base_url
    api_key = config.api_key or os.environ.get("OPENAI_API_KEY")
    if not api_key:
        if base_url is None:
            raise ConfigError("no API key for OpenAI: set OPENAI_API_KEY, or point --teacher-base-url at a "
                              "local server (vLLM, Ollama) that needs none")
        api_key = "unused"  # local servers ignore the key, the client insists on one
    return openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=config.timeout)


class Teacher:
    """`await teacher.complete(messages, sampling)` -> Reply. Counts successful calls (`calls`) and
    retries by cause (`retries`); raises TeacherError when a request cannot succeed."""

    def __init__(self, config: TeacherConfig, *, client=None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, rng: random.Random | None = None):
        self.config = config
        self.calls = 0
        self._client = client if client is not None else _client(config)
        self._slots = asyncio.Semaphore(config.concurrency)
        endpoint = Endpoint("the teacher", self.where, config.model, "--teacher-model", "--teacher-base-url",
                            "everything answered so far is cached, rerun to resume")
        self._retrier = Retrier(endpoint, config.retry_policy, timeout=config.timeout, error=TeacherError,
                                sleep=sleep, rng=rng)
        self.retries = self._retrier.retries

    @property
    def where(self) -> str:
        return self.config.resolved_base_url or "https://api.openai.com/v1"

    async def complete(self, messages: list[dict], sampling: dict | None = None) -> Reply:
        sampling = self.config.sampling() if sampling is None else sampling
        body = {"model": self.config.model, "messages": messages, **sampling}

        async def send() -> dict:
            response = await self._client.post("/chat/completions", cast_to=object, body=body)
            if not (isinstance(response, dict) and "choices" in response):
                raise BadReply(f"not a chat completion: {str(response)[:200]!r}")
            return response

        async with self._slots:
            try:
                response = await self._retrier.call(send)
            except PromptTooLong as e:  # distill has no per-item failure record: the run stops, as for any refusal
                raise TeacherError(str(e)) from None
        self.calls += 1
        return _reply(response)

    async def aclose(self) -> None:
        await self._client.close()


def _reply(data: dict) -> Reply:
    choice = (data["choices"] or [{}])[0]
    usage = data.get("usage")
    if usage:
        usage = {"prompt_tokens": usage.get("prompt_tokens"), "completion_tokens": usage.get("completion_tokens")}
    return Reply(text=(choice.get("message") or {}).get("content") or "", usage=usage or None, model=data.get("model"),
                 finish_reason=choice.get("finish_reason"))
