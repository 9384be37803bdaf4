"""The one retry policy for every call to an OpenAI-compatible endpoint: `OpenAIBackend` sends
through a `Retrier`, whoever it serves (distill's teacher, `score --backend openai`).

Retries are done here, not by the openai client (built with `max_retries=0`), because a run must
(1) count retries by cause for its stats and progress bar, (2) honour `Retry-After` however long it
is (the client caps it at 60 s and then ignores it), and (3) stop at once on errors no retry can fix
(401/403/404, an exhausted quota) instead of retrying them. A request the endpoint refuses as longer
than its context is the one failure that belongs to a single request (`PromptTooLong`): the caller
records it and goes on with the others.
"""

from __future__ import annotations

import asyncio
import email.utils
import itertools
import random
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from judge.core.errors import ConfigError, JudgeforgeError
from judge.core.manifest import mask_urls

CAUSES = ("rate_limit", "server_error", "timeout", "connection")
T = TypeVar("T")

# vLLM: "This model's maximum context length is 2048 tokens..." / "... exceeds model's maximum context
# length (2048)"; OpenAI: code "context_length_exceeded".
_TOO_LONG = re.compile(r"context[ _]length|context window", re.IGNORECASE)


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 6  # retries per request on 429, 5xx, timeouts and dropped connections
    backoff: float = 1.0  # first retry waits 0.5-1x this, doubling per retry, up to max_backoff
    max_backoff: float = 60.0
    max_retry_after: float = 600.0  # a longer Retry-After stops the run (rerun later) instead of sleeping

    def __post_init__(self):
        if self.max_retries < 0:
            raise ConfigError(f"--max-retries must be 0 or more, got {self.max_retries}")

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """At least the server's Retry-After; otherwise exponential backoff with jitter (half fixed,
        half random, so concurrent requests spread out but always wait)."""
        if retry_after is not None:
            return retry_after + rng.uniform(0, min(1.0, retry_after / 10))
        cap = min(self.max_backoff, self.backoff * 2 ** attempt)
        return cap / 2 + rng.uniform(0, cap / 2)


@dataclass(frozen=True)
class Endpoint:
    """Who is called, as the error messages name it: `role` ("the teacher", "the judge"), its URL and
    model, and the flags that set them."""

    role: str
    url: str
    model: str
    model_flag: str
    url_flag: str
    resume: str  # what a rerun does, said when the run stops


class BadReply(Exception):
    """A 200 that is not a chat completion: retried like a server error."""


class PromptTooLong(JudgeforgeError):
    """The endpoint refused one request as longer than its context: permanent, for that request only."""


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


class Retrier:
    """`await retrier.call(send)`: `send()` makes one attempt (an openai call); retried by cause under
    `policy`. Counts retries by cause (`retries`). Raises `error` (a JudgeforgeError subclass) when a
    request cannot succeed; once a failure no retry can fix has happened, every later call raises it
    too, so nothing more is sent."""

    def __init__(self, endpoint: Endpoint, policy: RetryPolicy, *, timeout: float, error: type[JudgeforgeError],
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, rng: random.Random | None = None):
        self.endpoint, self.policy, self.timeout, self.error = endpoint, policy, timeout, error
        self.retries: Counter = Counter()
        self._fatal: JudgeforgeError | None = None
        self._sleep = sleep
        self._rng = rng or random.Random()

    async def call(self, send: Callable[[], Awaitable[T]]) -> T:
        import openai

        for attempt in itertools.count():
            if self._fatal:
                raise self._fatal
            wait = None
            try:
                return await send()
            except openai.APIStatusError as e:
                try:
                    cause, wait = self.classify(e)
                except PromptTooLong:
                    raise
                except JudgeforgeError as fatal:
                    self._fatal = fatal
                    raise
                detail = f"HTTP {e.status_code}: {e.message}"
            except openai.APITimeoutError:
                cause, detail = "timeout", f"no answer within {self.timeout:g} s"
            except openai.APIConnectionError as e:
                cause, detail = "connection", f"connection failed: {e.__cause__ or e}"
            except BadReply as e:
                cause, detail = "server_error", str(e)
            if attempt == self.policy.max_retries:
                raise self.error(f"{self.endpoint.role} at {mask_urls(self.endpoint.url)} failed {attempt + 1} times "
                                 f"on one request (last: {detail}); {self.endpoint.resume}")
            self.retries[cause] += 1
            await self._sleep(self.policy.delay(attempt, wait, self._rng))

    def classify(self, error) -> tuple[str, float | None]:
        """(cause, Retry-After) for a retryable status; PromptTooLong for a request too long for the
        context; `self.error` for the rest."""
        status, model, role = error.status_code, self.endpoint.model, self.endpoint.role
        where = mask_urls(self.endpoint.url)
        if status in (400, 413) and (_TOO_LONG.search(error.message or "") or error.code == "context_length_exceeded"):
            raise PromptTooLong(f"{role} at {where} refused the prompt as too long (HTTP {status}): {error.message}")
        if status == 401:
            raise self.error(f"{role} at {where} refused the API key (401 Unauthorized): set OPENAI_API_KEY "
                             f"to a valid key for this endpoint")
        if status == 403:
            raise self.error(f"{role} at {where} denied access to model {model!r} (403 Forbidden): {error.message}")
        if status == 404:
            raise self.error(f"model {model!r} or its chat endpoint was not found at {where} (404): check "
                             f"{self.endpoint.model_flag} and {self.endpoint.url_flag} (it usually ends in /v1)")
        if status == 429 and error.code == "insufficient_quota":
            raise self.error(f"the account at {where} has no quota left (429 insufficient_quota): {error.message}")
        if status == 429:
            wait = retry_after_seconds(error.response.headers)
            if wait is not None and wait > self.policy.max_retry_after:
                raise self.error(f"{role} at {where} asks to wait {wait:.0f} s (Retry-After), more than "
                                 f"{self.policy.max_retry_after:g} s: rerun later; {self.endpoint.resume}")
            return "rate_limit", wait
        if status >= 500 or status in (408, 409):
            return "server_error", retry_after_seconds(error.response.headers)
        raise self.error(f"{role} at {where} rejected a request for model {model!r} (HTTP {status}): {error.message}")
