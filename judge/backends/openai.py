"""A Backend for any OpenAI-compatible chat endpoint: `judgeforge serve`, a vLLM server, OpenAI,
Ollama. The template is applied client side (the rendered chat messages are sent as they are), so
a remote judge sees exactly the prompt an offline one does.

Requests run concurrently (asyncio + `openai.AsyncOpenAI`, at most `concurrency` in flight).
`GenerationParams` map onto the request: `regex` becomes vLLM's `structured_outputs` (the older
`guided_*` fields are silently ignored by current vLLM), `logprobs` becomes `logprobs` +
`top_logprobs`, and `Request.adapter` selects the served model (a LoRA adapter's name on vLLM).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence

from .base import Generation, Request


class OpenAIBackend:
    """`generate` (sync, for `judgeforge score`) opens its own client per call, because each call
    runs its own event loop; long-lived async callers (the judge server) pass `client` and use
    `acomplete`, which raises the openai errors instead of recording them."""

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None, *,
                 concurrency: int = 16, timeout: float = 600.0, max_retries: int = 2, name: str | None = None,
                 client=None):
        self.model = model
        self.name = name or model
        self.base_url = base_url
        # A local vLLM needs no key, but the openai client refuses to start without one.
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.client = client

    def _new_client(self):
        import openai

        return openai.AsyncOpenAI(base_url=self.base_url, api_key=self.api_key, timeout=self.timeout,
                                  max_retries=self.max_retries)

    def body(self, request: Request) -> dict:
        """The chat-completion arguments for one request (also what benchmarks send directly)."""
        params = request.params
        body: dict = {"model": request.adapter or self.model, "messages": request.prompt.messages,
                      "max_tokens": params.max_tokens, "temperature": params.temperature}
        if params.seed is not None:
            body["seed"] = params.seed
        if params.stop:
            body["stop"] = list(params.stop)
        if params.logprobs:
            body.update(logprobs=True, top_logprobs=params.logprobs)
        if params.regex:
            body["extra_body"] = {"structured_outputs": {"regex": params.regex}}
        return body

    async def _complete(self, client, request: Request) -> Generation:
        response = await client.chat.completions.create(**self.body(request))
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
        import openai

        slots = asyncio.Semaphore(self.concurrency)

        async def one(request: Request) -> Generation:
            async with slots:
                try:
                    return await self._complete(client, request)
                except openai.OpenAIError as e:  # recorded on the verdict (parse_ok false), never a made-up score
                    return Generation(text="", error=f"{type(e).__name__}: {e}")

        return list(await asyncio.gather(*(one(r) for r in requests)))

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        """One Generation per request, in order; a failed request becomes `Generation(error=...)`.
        Not callable from inside a running event loop (use `acomplete` there)."""

        async def run() -> list[Generation]:
            async with self._new_client() as client:
                return await self._gather(client, requests)

        return asyncio.run(run())
