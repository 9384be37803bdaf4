"""serve.upstream: the engine connection. Its judge backend sends the one request body through the
server's pool and leaves failures to serve.errors (no retry policy of its own); the health check
falls back to the model list; the base URL is normalised."""

import asyncio
import json

import httpx
import openai
import pytest

from judge.backends import GenerationParams, Request
from judge.templates import Prompt
from serve.errors import classify
from serve.upstream import Upstream, api_url

PROMPT = Prompt([{"role": "user", "content": "Which is better?"}], "Which is better?")
COMPLETION = {"id": "x", "object": "chat.completion", "created": 0, "model": "lora-a",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": "1"}, "finish_reason": "stop"}],
              "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}


def on(handler, **kwargs) -> Upstream:
    upstream = Upstream("http://engine:8000", "engine-key", transport=httpx.MockTransport(handler), **kwargs)
    upstream.open()
    return upstream


async def judged(upstream: Upstream, request: Request):
    try:
        return await upstream.backend("base").acomplete(request)
    finally:
        await upstream.close()


@pytest.mark.parametrize("given", ["http://h:1", "http://h:1/", "http://h:1/v1", "http://h:1/v1/"])
def test_the_api_url_ends_in_v1_once(given):
    assert api_url(given) == "http://h:1/v1"


def test_a_judge_call_sends_the_request_body_with_the_engine_key_and_reads_the_reply():
    seen = []

    def engine(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers["authorization"], json.loads(request.content)))
        return httpx.Response(200, json=COMPLETION)

    params = GenerationParams(max_tokens=4, regex="(1|2)", logprobs=2)
    generation = asyncio.run(judged(on(engine), Request(PROMPT, params, adapter="lora-a")))
    assert (generation.text, generation.usage, generation.model, generation.finish_reason) == (
        "1", {"prompt_tokens": 5, "completion_tokens": 1}, "lora-a", "stop")
    ((url, auth, body),) = seen
    assert url == "http://engine:8000/v1/chat/completions" and auth == "Bearer engine-key"
    assert body["model"] == "lora-a" and body["structured_outputs"] == {"regex": "(1|2)"} and body["top_logprobs"] == 2


def test_an_engine_failure_is_raised_once_for_the_server_to_map():
    calls = []

    def down(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ConnectError("refused")

    with pytest.raises(openai.APIConnectionError) as caught:
        asyncio.run(judged(on(down, max_retries=0), Request(PROMPT)))
    assert len(calls) == 1  # no retry policy in the server: the client answers 503 at once
    assert classify(caught.value)[0] == 503


def test_health_falls_back_to_the_model_list_and_a_dead_child_is_unhealthy():
    def no_health(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404 if request.url.path == "/health" else 200, json={"data": []})

    async def check(upstream: Upstream) -> bool:
        try:
            return await upstream.healthy()
        finally:
            await upstream.close()

    assert asyncio.run(check(on(no_health)))
    assert not asyncio.run(check(on(lambda r: httpx.Response(503))))
    assert not asyncio.run(check(on(no_health, alive=lambda: False)))
