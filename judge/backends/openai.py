"""A Backend for any OpenAI-compatible chat endpoint: `judgeforge serve`, a vLLM server, OpenAI,
Ollama, and distill's teacher. The template is applied client side (the rendered chat messages are
sent as they are), so a remote judge sees exactly the prompt an offline one does.

Requests run concurrently (asyncio + `openai.AsyncOpenAI`, at most `concurrency` in flight, a
request keeping its slot while it backs off), with one retry policy (`judge.backends.retry`: retries by
cause, Retry-After, backoff with jitter; 401, 403 and 404 stop at once) and counters of calls and
retries by cause. A request the endpoint refuses as longer than its context is that request's
failure (`Generation(error=...)`); any other failure that retries cannot fix stops the run with
BackendError (or the caller's error class, e.g. TeacherError): a judge that did not answer is never
a verdict.

Requests go through the client's raw `post` (the SDK's documented way to send a body as is, with
the same auth, timeout and error classes) rather than the typed `chat.completions.create`, which
re-validates every message against its TypedDicts: ~0.5 ms of CPU per request, a sixth of the
throughput at 64 concurrent requests on a 2-core machine. Replies are read from the JSON dict.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence

from judge.backends.base import BackendError, Generation, Request
from judge.backends.retry import BadReply, Endpoint, PromptTooLong, Retrier, RetryPolicy


def request_body(request: Request, model: str) -> dict:
    """The chat-completion body of one request as it goes on the wire: the one place it is built, for
    live requests, the Batch API's input lines and the reply cache's keys. `adapter` names the served
    model (a LoRA adapter on vLLM); `regex` becomes vLLM's `structured_outputs` (the older `guided_*`
    fields are silently ignored by current vLLM); `logprobs` becomes `logprobs` + `top_logprobs`."""
    params = request.params
    body: dict = {"model": request.adapter or model, "messages": request.prompt.messages,
                  "temperature": params.temperature, "max_tokens": params.max_tokens}
    if params.seed is not None:
        body["seed"] = params.seed
    if params.stop:
        body["stop"] = list(params.stop)
    if params.logprobs:
        body.update(logprobs=True, top_logprobs=params.logprobs)
    if params.regex:
        body["structured_outputs"] = {"regex": params.regex}
    return body


def read_completion(data) -> Generation:
    """A chat completion's JSON (live or a Batch API output line) as a Generation; BadReply when it is
    not one (retried like a server error)."""
    if not (isinstance(data, dict) and data.get("choices")):
        raise BadReply(f"not a chat completion: {str(data)[:200]!r}")
    choice = data["choices"][0]
    tokens = top = None
    content = (choice.get("logprobs") or {}).get("content")
    if content:
        tokens = [position["token"] for position in content]
        top = [{alt["token"]: alt["logprob"] for alt in position.get("top_logprobs") or []} for position in content]
    usage = data.get("usage")
    if usage:
        usage = {"prompt_tokens": usage.get("prompt_tokens"), "completion_tokens": usage.get("completion_tokens")}
    return Generation(text=(choice.get("message") or {}).get("content") or "", tokens=tokens, top_logprobs=top,
                      usage=usage or None, model=data.get("model"), finish_reason=choice.get("finish_reason"))


class OpenAIBackend:
    """`generate` (sync, for `judgeforge score`) opens its own client per call, because each call runs
    its own event loop. Long-lived async callers use `acomplete` on one client (`client`, or one made
    on first use; `aclose` closes it): distill's workers under the retry policy, the judge server with
    `retry=None` (one attempt, the openai errors raised for it to map to HTTP statuses) and
    `concurrency=None` (it bounds its own requests in flight). `calls` counts answered requests,
    `retries` the retries by cause (`judge.backends.retry.CAUSES`)."""

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None, *,
                 concurrency: int | None = 16, timeout: float = 600.0, retry: RetryPolicy | None = RetryPolicy(),
                 name: str | None = None, client=None, endpoint: Endpoint | None = None,
                 error: type[Exception] = BackendError, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 rng: random.Random | None = None):
        self.model = model
        self.name = name or model
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
        # A local vLLM needs no key, but the openai client refuses to start without one.
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        self.concurrency = concurrency
        self.timeout = timeout
        self.client = client
        self.error = error
        endpoint = endpoint or Endpoint("the judge", self.base_url, model, "--model", "--base-url",
                                        "nothing more is sent")
        self.retrier = None if retry is None else Retrier(endpoint, retry, timeout=timeout, error=error, sleep=sleep,
                                                          rng=rng)
        self.retries: Counter = self.retrier.retries if self.retrier else Counter()
        self.calls = 0
        self._slots: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None

    def _new_client(self):
        import openai

        return openai.AsyncOpenAI(base_url=self.base_url, api_key=self.api_key, timeout=self.timeout, max_retries=0)

    def body(self, request: Request) -> dict:
        """The chat-completion body for one request (also what benchmarks send directly)."""
        return request_body(request, self.model)

    def _slot(self):
        """The concurrency bound of the running event loop (`generate` runs a loop per call)."""
        if self.concurrency is None:
            return contextlib.nullcontext()
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots[0] is not loop:
            self._slots = (loop, asyncio.Semaphore(self.concurrency))
        return self._slots[1]

    async def _send(self, client, request: Request) -> Generation:
        return read_completion(await client.post("/chat/completions", cast_to=object, body=self.body(request)))

    async def _complete(self, client, request: Request, stop: asyncio.Event | None = None) -> Generation | None:
        """One request under the policy; None, sending nothing, when `stop` was set while it waited."""
        if self.retrier is None:
            generation = await self._send(client, request)
        else:
            async with self._slot():
                if stop is not None and stop.is_set():
                    return None
                try:
                    generation = await self.retrier.call(lambda: self._send(client, request))
                except PromptTooLong as e:  # this request's failure, recorded on its verdict (parse_ok false)
                    return Generation(text="", error=str(e))
        self.calls += 1
        return generation

    async def acomplete(self, request: Request) -> Generation:
        """One request through the long-lived client, under this backend's policy."""
        if self.client is None:
            self.client = self._new_client()
        return await self._complete(self.client, request)

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None

    async def _gather(self, client, requests: Sequence[Request]) -> list[Generation]:
        results: list[Generation | None] = [None] * len(requests)
        stop = asyncio.Event()  # a request failed for good: a task that gets a slot after that sends nothing

        async def one(i: int, request: Request) -> None:
            try:
                results[i] = await self._complete(client, request, stop)
            except self.error:
                stop.set()
                raise

        tasks = [asyncio.create_task(one(i, r)) for i, r in enumerate(requests)]
        try:
            await asyncio.gather(*tasks)
        except self.error as e:
            for task in tasks:  # nothing more is sent; what already came back is handed to the caller
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise BackendError(str(e), partial=results) from None
        return results

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        """One Generation per request, in order; a prompt too long for the endpoint's context becomes
        `Generation(error=...)`; BackendError (with the generations that came back) when the endpoint
        fails for good. Not callable from inside a running event loop (use `acomplete` there)."""

        async def run() -> list[Generation]:
            async with self._new_client() as client:
                return await self._gather(client, requests)

        return asyncio.run(run())
