"""A Backend for any OpenAI-compatible chat endpoint: `judgeforge serve`, a vLLM server, OpenAI,
Ollama. The template is applied client side (the rendered chat messages are sent as they are), so
a remote judge sees exactly the prompt an offline one does.

Requests run concurrently (asyncio + `openai.AsyncOpenAI`, at most `concurrency` in flight), with
the teacher's retry policy (`judge.retry`: retries by cause, Retry-After, backoff with jitter; 401,
403 and 404 stop at once). A request the endpoint refuses as longer than its context is that
request's failure (`Generation(error=...)`, recorded on its verdict); any other failure that retries
cannot fix stops the run with BackendError: a judge that did not answer is never a verdict.
`GenerationParams` map onto the request: `regex` becomes vLLM's `structured_outputs` (the older
`guided_*` fields are silently ignored by current vLLM), `logprobs` becomes `logprobs` +
`top_logprobs`, and `Request.adapter` selects the served model (a LoRA adapter's name on vLLM).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence

from ..retry import BadReply, Endpoint, PromptTooLong, Retrier, RetryPolicy
from .base import BackendError, Generation, Request


def sampling_fields(*, max_tokens: int, temperature: float, seed: int | None, stop: Sequence[str] | None = None,
                    logprobs: int | None = None, regex: str | None = None) -> dict:
    """The sampling fields of an OpenAI-compatible chat request as they go on the wire: the one place
    they are built, for this backend and for the teacher (live and batch requests, and so its cache
    keys). `regex` becomes vLLM's `structured_outputs`."""
    fields: dict = {"temperature": temperature, "max_tokens": max_tokens}
    if seed is not None:
        fields["seed"] = seed
    if stop:
        fields["stop"] = list(stop)
    if logprobs:
        fields.update(logprobs=True, top_logprobs=logprobs)
    if regex:
        fields["structured_outputs"] = {"regex": regex}
    return fields


class OpenAIBackend:
    """`generate` (sync, for `judgeforge score`) opens its own client per call, because each call
    runs its own event loop, and retries under `retry`; long-lived async callers (the judge server)
    pass `client` and use `acomplete`, which raises the openai errors for the caller to map."""

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None, *,
                 concurrency: int = 16, timeout: float = 600.0, retry: RetryPolicy = RetryPolicy(),
                 name: str | None = None, client=None):
        self.model = model
        self.name = name or model
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
        # A local vLLM needs no key, but the openai client refuses to start without one.
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        self.concurrency = concurrency
        self.timeout = timeout
        self.client = client
        endpoint = Endpoint("the judge", self.base_url, model, "--model", "--base-url",
                            "nothing more is sent")
        self.retrier = Retrier(endpoint, retry, timeout=timeout, error=BackendError)

    def _new_client(self):
        import openai

        return openai.AsyncOpenAI(base_url=self.base_url, api_key=self.api_key, timeout=self.timeout, max_retries=0)

    def body(self, request: Request) -> dict:
        """The chat-completion arguments for one request (also what benchmarks send directly)."""
        params = request.params
        fields = sampling_fields(max_tokens=params.max_tokens, temperature=params.temperature, seed=params.seed,
                                 stop=params.stop, logprobs=params.logprobs, regex=params.regex)
        body: dict = {"model": request.adapter or self.model, "messages": request.prompt.messages, **fields}
        if "structured_outputs" in body:  # not an argument of the typed `create`: the SDK sends extra_body as is
            body["extra_body"] = {"structured_outputs": body.pop("structured_outputs")}
        return body

    async def _complete(self, client, request: Request) -> Generation:
        response = await client.chat.completions.create(**self.body(request))
        if not getattr(response, "choices", None):
            raise BadReply(f"not a chat completion: {str(response)[:200]!r}")
        choice = response.choices[0]
        tokens = top = None
        content = choice.logprobs.content if choice.logprobs else None
        if content:
            tokens = [position.token for position in content]
            top = [{alt.token: alt.logprob for alt in position.top_logprobs} for position in content]
        usage = response.usage
        return Generation(text=choice.message.content or "", tokens=tokens, top_logprobs=top,
                          usage={"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens}
                          if usage else None)

    async def acomplete(self, request: Request) -> Generation:
        """One request through the long-lived client; openai errors propagate to the caller."""
        if self.client is None:
            self.client = self._new_client()
        return await self._complete(self.client, request)

    async def _gather(self, client, requests: Sequence[Request]) -> list[Generation]:
        slots = asyncio.Semaphore(self.concurrency)
        results: list[Generation | None] = [None] * len(requests)
        stop = asyncio.Event()  # a request failed for good: a task that gets a slot after that sends nothing

        async def one(i: int, request: Request) -> None:
            async with slots:
                if stop.is_set():
                    return
                try:
                    results[i] = await self.retrier.call(lambda: self._complete(client, request))
                except PromptTooLong as e:  # this request's failure, recorded on its verdict (parse_ok false)
                    results[i] = Generation(text="", error=str(e))
                except BackendError:
                    stop.set()
                    raise

        tasks = [asyncio.create_task(one(i, r)) for i, r in enumerate(requests)]
        try:
            await asyncio.gather(*tasks)
        except BackendError as e:
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
