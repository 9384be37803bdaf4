"""The teacher: any OpenAI-compatible chat endpoint (OpenAI, vLLM's server, Ollama's `/v1`) behind
`openai.AsyncOpenAI`, with bounded concurrency, a per-request timeout and retries.

The client is built with `max_retries=0` and retries are done here, because distill must (1) count
retries by cause for its stats and progress bar, (2) honour `Retry-After` however long it is (the
client caps it at 60 s and then ignores it), and (3) stop at once on errors no retry can fix
(401/403/404, an exhausted quota) instead of retrying them.

Requests go through the client's raw `post` (the SDK's documented way to send a body as is, with
the same auth, timeout and error classes) rather than the typed `chat.completions.create`, which
re-validates every message against its TypedDicts: ~0.5 ms of CPU per request, a sixth of the
throughput at 64 concurrent requests on a 2-core machine.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass

from .errors import ConfigError, TeacherError

CAUSES = ("rate_limit", "server_error", "timeout", "connection")


@dataclass(frozen=True)
class TeacherConfig:
    model: str
    base_url: str | None = None  # default: $OPENAI_BASE_URL, else OpenAI
    api_key: str | None = None  # default: $OPENAI_API_KEY
    concurrency: int = 8  # requests in flight at once (a request keeps its slot while it backs off)
    timeout: float = 120.0  # seconds per attempt
    max_retries: int = 6  # retries per request on 429, 5xx, timeouts and dropped connections
    temperature: float = 0.0
    seed: int | None = 0
    max_tokens: int = 1024
    regex: str | None = None  # constrain replies with vLLM structured outputs (vLLM-served teachers only)
    backoff: float = 1.0  # first retry waits 0.5-1x this, doubling per retry, up to max_backoff
    max_backoff: float = 60.0
    max_retry_after: float = 600.0  # a longer Retry-After stops the run (rerun later) instead of sleeping

    def __post_init__(self):
        if self.concurrency < 1:
            raise ConfigError(f"--concurrency must be at least 1, got {self.concurrency}")
        if self.timeout <= 0:
            raise ConfigError(f"--timeout must be positive, got {self.timeout}")
        if self.max_retries < 0:
            raise ConfigError(f"--max-retries must be 0 or more, got {self.max_retries}")
        if self.max_tokens < 1:
            raise ConfigError(f"--max-tokens must be at least 1, got {self.max_tokens}")

    @property
    def resolved_base_url(self) -> str | None:
        return self.base_url or os.environ.get("OPENAI_BASE_URL") or None

    def sampling(self, sample: int = 0) -> dict:
        """The request's sampling parameters. Sample k uses seed + k, so K samples differ even on a
        server that honours the seed."""
        params = {"temperature": self.temperature, "max_tokens": self.max_tokens}
        if self.seed is not None:
            params["seed"] = self.seed + sample
        if self.regex:
            params["structured_outputs"] = {"regex": self.regex}
        return params


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


def retry_after_seconds(headers) -> float | None:
    """Seconds the server asked us to wait: `retry-after-ms` (OpenAI), `retry-after` in seconds or
    as an HTTP date.

    >>> retry_after_seconds({"retry-after": "2"}), retry_after_seconds({"retry-after-ms": "250"})
    (2.0, 0.25)
    >>> retry_after_seconds({}) is None
    True
    """
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) / scale)
        except ValueError:
            try:
                return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
            except (TypeError, ValueError):
                return None
    return None


class Teacher:
    """`await teacher.complete(messages, sampling)` -> Reply. Counts successful calls (`calls`) and
    retries by cause (`retries`); raises TeacherError when a request cannot succeed."""

    def __init__(self, config: TeacherConfig, *, client=None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, rng: random.Random | None = None):
        self.config = config
        self.calls = 0
        self.retries: Counter = Counter()
        self._client = client if client is not None else _client(config)
        self._slots = asyncio.Semaphore(config.concurrency)
        self._fatal: TeacherError | None = None  # once auth or the model fails, nothing more is sent
        self._sleep = sleep
        self._rng = rng or random.Random()

    @property
    def where(self) -> str:
        return self.config.resolved_base_url or "https://api.openai.com/v1"

    async def complete(self, messages: list[dict], sampling: dict | None = None) -> Reply:
        import openai

        sampling = self.config.sampling() if sampling is None else sampling
        async with self._slots:
            for attempt in range(self.config.max_retries + 1):
                if self._fatal:
                    raise self._fatal
                wait = None
                try:
                    response = await self._client.post(
                        "/chat/completions", cast_to=object,
                        body={"model": self.config.model, "messages": messages, **sampling})
                except openai.APIStatusError as e:
                    try:
                        cause, wait = self._classify(e)
                    except TeacherError as fatal:
                        self._fatal = fatal
                        raise
                    detail = f"HTTP {e.status_code}: {e.message}"
                except openai.APITimeoutError:
                    cause, detail = "timeout", f"no answer within {self.config.timeout:g} s"
                except openai.APIConnectionError as e:
                    cause, detail = "connection", str(e.__cause__ or e)
                else:
                    if isinstance(response, dict) and "choices" in response:
                        self.calls += 1
                        return _reply(response)
                    cause, detail = "server_error", f"not a chat completion: {str(response)[:200]!r}"
                if attempt == self.config.max_retries:
                    raise TeacherError(f"the teacher at {self.where} failed {attempt + 1} times on one request "
                                       f"(last: {detail}); everything answered so far is cached, rerun to resume")
                self.retries[cause] += 1
                await self._sleep(self._delay(attempt, wait))

    def _classify(self, error) -> tuple[str, float | None]:
        """(cause, Retry-After) for a retryable status; TeacherError for the rest."""
        status, model, where = error.status_code, self.config.model, self.where
        if status == 401:
            raise TeacherError(f"the teacher at {where} refused the API key (401 Unauthorized): set OPENAI_API_KEY "
                               f"to a valid key for this endpoint")
        if status == 403:
            raise TeacherError(f"the teacher at {where} denied access to model {model!r} (403 Forbidden): "
                               f"{error.message}")
        if status == 404:
            raise TeacherError(f"model {model!r} or its chat endpoint was not found at {where} (404): check "
                               f"--teacher-model and --teacher-base-url (it usually ends in /v1)")
        if status == 429 and error.code == "insufficient_quota":
            raise TeacherError(f"the teacher account at {where} has no quota left (429 insufficient_quota): "
                               f"{error.message}")
        if status == 429:
            wait = retry_after_seconds(error.response.headers)
            if wait is not None and wait > self.config.max_retry_after:
                raise TeacherError(f"the teacher at {where} asks to wait {wait:.0f} s (Retry-After), more than "
                                   f"{self.config.max_retry_after:g} s: rerun later, cached replies are kept")
            return "rate_limit", wait
        if status >= 500 or status in (408, 409):
            return "server_error", retry_after_seconds(error.response.headers)
        raise TeacherError(f"the teacher at {where} rejected a request for model {model!r} "
                           f"(HTTP {status}): {error.message}")

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """At least the server's Retry-After; otherwise exponential backoff with jitter (half fixed,
        half random, so concurrent requests spread out but always wait)."""
        if retry_after is not None:
            return retry_after + self._rng.uniform(0, min(1.0, retry_after / 10))
        cap = min(self.config.max_backoff, self.config.backoff * 2 ** attempt)
        return cap / 2 + self._rng.uniform(0, cap / 2)

    async def aclose(self) -> None:
        await self._client.close()


def _reply(data: dict) -> Reply:
    choice = (data["choices"] or [{}])[0]
    usage = data.get("usage")
    if usage:
        usage = {"prompt_tokens": usage.get("prompt_tokens"), "completion_tokens": usage.get("completion_tokens")}
    return Reply(text=(choice.get("message") or {}).get("content") or "", usage=usage or None, model=data.get("model"),
                 finish_reason=choice.get("finish_reason"))
