"""The OpenAI-compatible backend against a mocked endpoint (httpx.MockTransport): request bodies,
response mapping, bounded concurrency, retries by cause, per-request and run-stopping failures."""

import asyncio
import json

import httpx
import openai
import pytest

from judge.backends import GenerationParams, Request
from judge.backends.base import BackendError
from judge.backends.openai import OpenAIBackend
from judge.backends.retry import RetryPolicy
from judge.core.records import PairItem
from judge.scoring.judging import judge_items, params_for
from judge.templates import Prompt, get_template

PROMPT = Prompt(messages=[{"role": "user", "content": "hello"}], text="hello")


def completion(text: str, logprobs: list | None = None) -> dict:
    choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
    if logprobs:
        choice["logprobs"] = {"content": [{"token": t, "logprob": lp, "top_logprobs": [{"token": a, "logprob": b}
                                                                                      for a, b in top.items()]}
                                          for t, lp, top in logprobs]}
    return {"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": [choice],
            "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}}


class Endpoint:
    """A mocked server: `answer(body) -> httpx.Response`; records bodies and the peak concurrency."""

    def __init__(self, answer, delay: float = 0.0):
        self.answer, self.delay = answer, delay
        self.bodies, self.in_flight, self.peak = [], 0, 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            return self.answer(body)
        finally:
            self.in_flight -= 1


def backend_on(endpoint: Endpoint, monkeypatch, retries: int = 0, **kwargs) -> OpenAIBackend:
    backend = OpenAIBackend("base-model", "http://judge/v1", "key", retry=RetryPolicy(retries, backoff=0.01), **kwargs)
    monkeypatch.setattr(backend, "_new_client", lambda: openai.AsyncOpenAI(
        base_url="http://judge/v1", api_key="key", max_retries=0,
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(endpoint))))
    return backend


def test_params_map_onto_the_chat_request():
    backend = OpenAIBackend("base-model")
    plain = backend.body(Request(PROMPT, GenerationParams(max_tokens=30, temperature=0.5, seed=None, stop=("###",))))
    assert plain == {"model": "base-model", "messages": PROMPT.messages, "max_tokens": 30, "temperature": 0.5,
                     "stop": ["###"]}
    verdict = backend.body(Request(PROMPT, params_for(get_template("pandalm"), "logprob"), adapter="my-lora"))
    assert verdict["model"] == "my-lora" and verdict["seed"] == 0
    assert verdict["structured_outputs"] == {"regex": "(1|2|Tie)"}  # on the wire as is; not the ignored guided_regex
    assert (verdict["logprobs"], verdict["top_logprobs"]) == (True, 20)


def test_generations_come_back_in_order_with_usage_and_logprobs(monkeypatch):
    def answer(body):
        text = body["messages"][0]["content"].upper()
        return httpx.Response(200, json=completion(text, [(text, -0.1, {text: -0.1, "x": -2.4})]))

    endpoint = Endpoint(answer)
    prompts = [Prompt(messages=[{"role": "user", "content": f"p{i}"}], text="") for i in range(5)]
    generations = backend_on(endpoint, monkeypatch).generate([Request(p, GenerationParams(logprobs=2)) for p in prompts])
    assert [g.text for g in generations] == [f"P{i}" for i in range(5)]
    assert generations[0].tokens == ["P0"] and generations[0].top_logprobs == [{"P0": -0.1, "x": -2.4}]
    assert generations[0].usage == {"prompt_tokens": 7, "completion_tokens": 2}
    assert endpoint.bodies[0]["logprobs"] is True and endpoint.bodies[0]["top_logprobs"] == 2


def test_concurrency_is_bounded(monkeypatch):
    endpoint = Endpoint(lambda body: httpx.Response(200, json=completion("ok")), delay=0.05)
    backend = backend_on(endpoint, monkeypatch, concurrency=3)
    assert len(backend.generate([Request(PROMPT)] * 12)) == 12
    assert endpoint.peak == 3


def test_a_prompt_too_long_is_recorded_and_the_others_still_answer(monkeypatch):
    def answer(body):
        if body["messages"][0]["content"] == "too long":
            return httpx.Response(400, json={"error": {"message": "This model's maximum context length is 8192 tokens",
                                                       "type": "x", "code": 400}})
        return httpx.Response(200, json=completion("9 2\nfine"))

    prompts = [PROMPT, Prompt(messages=[{"role": "user", "content": "too long"}], text=""), PROMPT]
    generations = backend_on(Endpoint(answer), monkeypatch, retries=3).generate([Request(p) for p in prompts])
    assert [g.error is None for g in generations] == [True, False, True]
    assert "too long" in generations[1].error and "8192" in generations[1].error
    assert generations[1].text == ""


def test_transient_failures_are_retried_until_answered(monkeypatch):
    failures = iter([httpx.Response(500, json={"error": {"message": "boom"}}),
                     httpx.Response(429, headers={"retry-after": "0.01"}, json={"error": {"message": "slow down"}}),
                     httpx.ConnectError("reset")])

    def answer(body):
        failure = next(failures, None)
        if isinstance(failure, Exception):
            raise failure
        return failure or httpx.Response(200, json=completion("9 2\nfine"))

    endpoint = Endpoint(answer)
    backend = backend_on(endpoint, monkeypatch, retries=3, concurrency=1)
    (generation,) = backend.generate([Request(PROMPT)])
    assert generation.text == "9 2\nfine" and len(endpoint.bodies) == 4
    assert backend.retrier.retries == {"server_error": 1, "rate_limit": 1, "connection": 1}


@pytest.mark.parametrize("status,says", [(401, "OPENAI_API_KEY"), (403, "denied"), (404, "--model"),
                                         (400, "rejected")])
def test_failures_no_retry_can_fix_stop_at_once_and_are_never_verdicts(monkeypatch, status, says):
    endpoint = Endpoint(lambda body: httpx.Response(status, json={"error": {"message": "no", "code": status}}))
    backend = backend_on(endpoint, monkeypatch, retries=5, concurrency=1)
    with pytest.raises(BackendError, match=says) as caught:
        backend.generate([Request(PROMPT)] * 4)
    assert len(endpoint.bodies) == 1  # nothing retried, nothing more sent
    assert "http://judge/v1" in str(caught.value) and caught.value.partial == [None] * 4


def test_an_endpoint_that_goes_down_stops_the_batch_and_hands_back_what_came_back(monkeypatch):
    def answer(body):
        if body["messages"][0]["content"].startswith("down"):
            raise httpx.ConnectError("connection refused")
        return httpx.Response(200, json=completion("9 2\nfine"))

    prompts = [Prompt(messages=[{"role": "user", "content": c}], text="") for c in ("up", "down", "up")]
    backend = backend_on(Endpoint(answer), monkeypatch, retries=2, concurrency=3)
    with pytest.raises(BackendError, match="failed 3 times.*connection refused") as caught:
        backend.generate([Request(p) for p in prompts])
    assert [g is not None and g.text == "9 2\nfine" for g in caught.value.partial] == [True, False, True]
    assert backend.retrier.retries == {"connection": 2}


def test_score_style_judging_through_the_backend(monkeypatch):
    """judge_items (what `judgeforge score --backend openai` runs) parses the served verdicts."""
    endpoint = Endpoint(lambda body: httpx.Response(200, json=completion("2 9\nsecond")))
    items = [PairItem(id=str(i), question="q", answer1="a", answer2="b") for i in range(3)]
    verdicts = judge_items(items, get_template("judgelm"), backend_on(endpoint, monkeypatch, name="served"), swap=True)
    assert [(v.order, v.winner) for v in verdicts] == [("ab", "2"), ("ba", "1")] * 3
    assert {v.judge for v in verdicts} == {"served"}


def test_acomplete_without_a_retry_policy_raises_for_the_caller_to_map():
    """The judge server's way (serve.upstream): one attempt, the openai error left for serve.errors."""
    def refuse(request):
        raise httpx.ConnectError("refused")

    client = openai.AsyncOpenAI(base_url="http://judge/v1", api_key="k", max_retries=0,
                                http_client=httpx.AsyncClient(transport=httpx.MockTransport(refuse)))
    backend = OpenAIBackend("m", client=client, retry=None, concurrency=None)
    with pytest.raises(openai.APIConnectionError):
        asyncio.run(backend.acomplete(Request(PROMPT)))
