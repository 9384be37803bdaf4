"""The judge API against a fake engine: every route, auth, validation, limits, engine failures, and
the error envelope.

Covers: serve/protocol.py, serve/errors.py, serve/service.py."""

import json

import httpx
import pytest
from fake_engine import (ENGINE_KEY, KEY, api, engine, judge_adapter, make_client,  # noqa: F401 (api, engine: fixtures)
                         prefers_first, prefers_good)

from judge.templates import get_template
from serve.service import Limits

PAIR = {"question": "Which is right?", "answer1": "bad", "answer2": "GOOD"}
CHAT = {"model": "base", "messages": [{"role": "user", "content": "GOOD bad"}]}
SINGLE = {"question": "Is it right?", "answer": "GOOD"}
AUTH = {"Authorization": f"Bearer {KEY}"}


def assert_error(response, status: int, param: str | None = None) -> dict:
    """The envelope, and nothing from inside the server (no traceback, no exception repr)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["code"] == status and body["error"]["message"] and body["error"]["type"]
    assert body["error"]["param"] == param
    assert "Traceback" not in response.text and 'File "' not in response.text
    return body["error"]


def test_health_needs_no_key_and_fails_when_the_engine_is_unhealthy(engine):
    with make_client(engine) as client:
        assert client.get("/health").json() == {"status": "ok"}  # nothing about the engine (its address)
        engine.healthy = False
        assert_error(client.get("/health"), 503)


@pytest.mark.parametrize("method,path,body", [
    ("GET", "/v1/models", None), ("POST", "/v1/judge/pairwise", PAIR), ("POST", "/v1/judge/pointwise", SINGLE),
    ("POST", "/v1/judge/batch", {"items": [PAIR]}), ("POST", "/v1/chat/completions", CHAT),
    ("POST", "/v1/completions", {"model": "base", "prompt": "hi"}),
])
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {KEY}"}])
def test_every_route_but_health_needs_the_key(engine, method, path, body, headers):
    with make_client(engine) as client:
        response = client.request(method, path, json=body, headers=headers)
        assert_error(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"
        assert engine.bodies == []  # refused before reaching the engine
        assert client.request(method, path, json=body, headers=AUTH).status_code == 200


def test_no_key_configured_means_open(engine):
    with make_client(engine, api_key=None) as client:
        assert client.post("/v1/judge/pairwise", json=PAIR).status_code == 200


def test_models_lists_each_judge_with_its_templates(engine, tmp_path):
    adapter = judge_adapter(tmp_path / "adapter")
    with make_client(engine, adapters={"mine": adapter}, template="score-100",
                     limits=Limits(max_model_len=512)) as client:
        data = client.get("/v1/models", headers=AUTH).json()["data"]
    assert [(m["id"], m["parent"], m["templates"]) for m in data] == [
        ("base", None, {"pairwise": "judgelm@1", "pointwise": "score-100@1"}),
        ("mine", "base", {"pairwise": "pandalm@1", "pointwise": "score-100@1"}),
    ]
    assert {m["object"] for m in data} == {"model"} and {m["max_model_len"] for m in data} == {512}


def test_adapter_judge_is_called_by_name_with_its_own_template(engine, tmp_path):
    engine.reply = lambda body: "2\n\n### Reason: the second is right"
    with make_client(engine, adapters={"mine": judge_adapter(tmp_path)}) as client:
        verdict = client.post("/v1/judge/pairwise", json={**PAIR, "judge": "mine"}, headers=AUTH).json()
    assert engine.bodies[-1]["model"] == "mine"
    assert "### Evaluation:" in engine.bodies[-1]["messages"][-1]["content"]  # PandaLM's prompt
    assert (verdict["judge"], verdict["template"], verdict["winner"], verdict["parse_ok"]) == ("mine", "pandalm@1", "2", True)


def test_pairwise_swap_asks_both_orders_and_reports_consistency(api, engine):
    verdict = api.post("/v1/judge/pairwise", json={**PAIR, "swap": True, "id": "x"}).json()
    assert len(engine.bodies) == 2
    first, second = (b["messages"][-1]["content"] for b in engine.bodies)
    assert first.index("bad") < first.index("GOOD") and second.index("GOOD") < second.index("bad")
    assert [v["order"] for v in verdict["verdicts"]] == ["ab", "ba"]
    assert [v["winner"] for v in verdict["verdicts"]] == ["2", "2"]  # mapped back to the request's order
    assert [v["raw"].split("\n")[0] for v in verdict["verdicts"]] == ["2 9", "9 2"]
    assert (verdict["id"], verdict["winner"], verdict["consistent"], verdict["scores"]) == ("x", "2", True, [2.0, 9.0])
    assert verdict["usage"]["prompt_tokens"] == 200 and verdict["usage"]["total_tokens"] > 200


def test_a_position_biased_judge_is_inconsistent_and_its_conflict_a_tie(engine):
    engine.reply = prefers_first
    with make_client(engine) as client:
        verdict = client.post("/v1/judge/pairwise", json={**PAIR, "swap": True}, headers=AUTH).json()
    assert [v["winner"] for v in verdict["verdicts"]] == ["1", "2"]
    assert (verdict["winner"], verdict["consistent"], verdict["scores"]) == ("tie", False, [5.5, 5.5])


def test_verdict_mode_sends_the_templates_regex_as_structured_output(api, engine):
    verdict = api.post("/v1/judge/pairwise", json={**PAIR, "mode": "verdict"}).json()
    template = get_template("judgelm")
    body = engine.bodies[-1]
    assert body["structured_outputs"] == {"regex": template.verdict_regex}
    assert body["max_tokens"] == template.verdict_max_tokens and body["temperature"] == 0
    assert (verdict["mode"], verdict["winner"], verdict["parse_ok"], verdict["reason"]) == ("verdict", "2", True, None)


def test_logprob_mode_returns_the_expected_score(api, engine):
    verdict = api.post("/v1/judge/pointwise", json={**SINGLE, "mode": "logprob"}).json()
    assert engine.bodies[-1]["logprobs"] is True and engine.bodies[-1]["top_logprobs"] == 20
    # the fake puts 80% on the reply's "4" and 20% on "1": expected score 0.8 * 4 + 0.2 * 1
    assert verdict["score"] == pytest.approx(3.4, abs=1e-3)
    assert verdict["logprobs"]["expected_score"] == verdict["score"] and verdict["raw"] == "[RESULT] 4"


def test_pointwise_full_mode_parses_the_score(api):
    verdict = api.post("/v1/judge/pointwise", json={**SINGLE, "rubric": "Is it right?"}).json()
    assert (verdict["kind"], verdict["score"], verdict["parse_ok"], verdict["template"]) == (
        "pointwise", 4.0, True, "prometheus-absolute@1")


@pytest.mark.parametrize("body,param", [
    ({"question": "q", "answer1": "a"}, "answer2"),
    ({**PAIR, "answer_2": "typo"}, "answer_2"),
    ({**PAIR, "swap": "maybe"}, "swap"),
    ({**PAIR, "mode": "fast"}, "mode"),
    ({**PAIR, "question": ""}, "question"),
    ({**PAIR, "max_tokens": 0}, "max_tokens"),
])
def test_invalid_fields_are_422_naming_the_field(api, engine, body, param):
    error = assert_error(api.post("/v1/judge/pairwise", json=body), 422, param)
    assert error["message"].startswith(param)
    assert engine.bodies == []


def test_unusable_choices_are_refused_naming_the_field(api):
    assert_error(api.post("/v1/judge/pairwise", json={**PAIR, "judge": "nobody"}), 404, "judge")
    assert "judgelm" in assert_error(api.post("/v1/judge/pairwise", json={**PAIR, "template": "nope"}), 422,
                                     "template")["message"]  # the known templates are listed
    assert_error(api.post("/v1/judge/pairwise", json={**PAIR, "template": "prometheus-absolute"}), 422, "template")
    assert_error(api.post("/v1/judge/pointwise", json={**SINGLE, "template": "score-100", "mode": "logprob",
                                                      "reference": "r"}), 422, "mode")
    assert_error(api.post("/v1/judge/pointwise", json={**SINGLE, "template": "rag-faithfulness"}), 422)  # no context


@pytest.mark.parametrize("content", [b'{"question": ', b"not json", b'{"question": "q",}'])
def test_malformed_json_is_400(api, content):
    assert "JSON" in assert_error(api.post("/v1/judge/pairwise", content=content,
                                           headers={"content-type": "application/json"}), 400)["message"]


def test_a_body_that_is_not_an_object_is_422(api):
    assert_error(api.post("/v1/judge/pairwise", json=["q", "a", "b"]), 422)


def test_unknown_route_and_method_use_the_envelope(api):
    assert_error(api.get("/v1/nothing"), 404)
    assert_error(api.get("/v1/judge/pairwise"), 405)


@pytest.fixture(scope="module")
def tokenizer(smollm2_path):
    """The length check's tokenizer, as `judgeforge serve` loads it (from the files, without torch)."""
    from judge.backends.tokenizer_files import load_tokenizer_files

    return load_tokenizer_files(smollm2_path)


def test_too_long_input_is_413_before_the_engine(engine, tokenizer, smollm2_path):
    from transformers import AutoTokenizer

    with make_client(engine, tokenizer=tokenizer, limits=Limits(max_model_len=512)) as client:
        long = {**PAIR, "answer1": "word " * 600}
        assert "512" in assert_error(client.post("/v1/judge/pairwise", json=long, headers=AUTH), 413)["message"]
        assert engine.bodies == []
        # a prompt that fits gets its free-text budget cut to the room left in the context, counted
        # as transformers' tokenizer counts it
        client.post("/v1/judge/pairwise", json={**PAIR, "answer1": "word " * 100}, headers=AUTH)
        reference = AutoTokenizer.from_pretrained(smollm2_path)
        size = len(reference.apply_chat_template(engine.bodies[-1]["messages"], add_generation_prompt=True)["input_ids"])
        assert engine.bodies[-1]["max_tokens"] == 512 - size


def test_batch_judges_mixed_items_in_order(api):
    items = [PAIR, SINGLE, {**PAIR, "answer1": "GOOD", "answer2": "bad", "swap": True}]
    response = api.post("/v1/judge/batch", json={"items": items}).json()
    assert [(r["kind"], r.get("winner"), r.get("score")) for r in response["results"]] == [
        ("pairwise", "2", None), ("pointwise", None, 4.0), ("pairwise", "1", None)]
    assert response["usage"]["prompt_tokens"] == 400  # four engine calls of 100 prompt tokens


def test_batch_limits_and_item_errors_name_the_item(engine, tokenizer):
    with make_client(engine, tokenizer=tokenizer, limits=Limits(max_batch=2, max_model_len=512)) as client:
        assert_error(client.post("/v1/judge/batch", json={"items": [PAIR] * 3}, headers=AUTH), 413, "items")
        assert_error(client.post("/v1/judge/batch", json={"items": [PAIR, {"question": "q", "answer1": "a"}]},
                                 headers=AUTH), 422, "items[1].answer2")
        long = {**SINGLE, "answer": "word " * 600}
        assert_error(client.post("/v1/judge/batch", json={"items": [SINGLE, long]}, headers=AUTH), 413, "items[1]")
        assert_error(client.post("/v1/judge/batch", json={"items": [PAIR, {**PAIR, "judge": "x"}]}, headers=AUTH), 404,
                     "items[1].judge")
        assert_error(client.post("/v1/judge/batch", json={"items": [{**SINGLE, "template": "judgelm"}]},
                                 headers=AUTH), 422, "items[0].template")
        assert engine.bodies == []  # a bad item stops the batch before any of it reaches the engine


def test_a_slow_engine_is_504(engine):
    engine.delay = 2.0
    with make_client(engine, limits=Limits(timeout=0.2)) as client:
        assert_error(client.post("/v1/judge/pairwise", json=PAIR, headers=AUTH), 504)


def refuse(request):
    raise httpx.ConnectError("connection refused")


@pytest.mark.parametrize("method,path,body", [
    ("POST", "/v1/judge/pairwise", PAIR), ("POST", "/v1/judge/batch", {"items": [SINGLE]}),
    ("POST", "/v1/chat/completions", CHAT), ("GET", "/health", None),
])
def test_an_unreachable_engine_is_503(engine, method, path, body):
    with make_client(engine, transport=httpx.MockTransport(refuse)) as client:
        assert "not" in assert_error(client.request(method, path, json=body, headers=AUTH), 503)["message"]


def test_engine_failures_and_server_bugs_are_500_without_internals(engine, monkeypatch):
    def explode(body):
        raise RuntimeError("engine internals")

    engine.reply = explode
    with make_client(engine) as client:
        error = assert_error(client.post("/v1/judge/pairwise", json=PAIR, headers=AUTH), 500)
        assert "engine internals" not in error["message"]
        monkeypatch.setattr("serve.service.verdict_from", lambda *a, **k: 1 / 0)
        engine.reply = prefers_good
        error = assert_error(client.post("/v1/judge/pairwise", json=PAIR, headers=AUTH), 500)
        assert "division" not in error["message"] and "ZeroDivision" not in error["message"]


def test_openai_routes_are_forwarded_with_the_engines_key(api, engine):
    response = api.post("/v1/chat/completions", json=CHAT)
    assert response.json()["choices"][0]["message"]["content"].startswith("9 2")
    assert api.post("/v1/completions", json={"model": "base", "prompt": "hi"}).json()["choices"][0]["text"] == "echo: hi"
    streamed = api.post("/v1/chat/completions", json={**CHAT, "stream": True})
    assert streamed.headers["content-type"].startswith("text/event-stream")
    chunks = [line.removeprefix("data: ") for line in streamed.text.splitlines() if line.startswith("data: ")]
    assert chunks[-1] == "[DONE]"
    assert "".join(json.loads(c)["choices"][0]["delta"]["content"] for c in chunks[:-1]).startswith("9 2")


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions"])
def test_forwarded_requests_may_only_name_a_served_judge(engine, tmp_path, path):
    body = CHAT if "chat" in path else {"model": "base", "prompt": "hi"}
    with make_client(engine, adapters={"mine": judge_adapter(tmp_path)}) as client:
        for model in ("gpt-4o", "", 7, "base/../x"):
            error = assert_error(client.post(path, json={**body, "model": model}, headers=AUTH), 404, "model")
            assert "base, mine" in error["message"]
        missing = {k: v for k, v in body.items() if k != "model"}
        assert "base, mine" in assert_error(client.post(path, json=missing, headers=AUTH), 422, "model")["message"]
        assert "JSON" in assert_error(client.post(path, content=b"{not json", headers=AUTH), 400)["message"]
        assert_error(client.post(path, json=["base"], headers=AUTH), 422)
        assert engine.bodies == []
        assert client.post(path, json={**body, "model": "mine"}, headers=AUTH).status_code == 200
    assert [b["model"] for b in engine.bodies] == ["mine"]


def test_an_openai_client_uses_the_forwarded_route(engine):
    import openai

    with make_client(engine) as client:
        sdk = openai.OpenAI(base_url="http://localhost/v1", api_key=KEY, http_client=client, max_retries=0)
        reply = sdk.chat.completions.create(model="base", messages=CHAT["messages"])
        assert reply.choices[0].message.content.startswith("9 2")
        with pytest.raises(openai.NotFoundError, match="base"):
            sdk.chat.completions.create(model="gpt-4o", messages=CHAT["messages"])


def test_the_engine_sees_its_own_key_never_the_clients(engine):
    seen = []

    def spy(request: httpx.Request):
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200, json={"choices": []})

    with make_client(engine, transport=httpx.MockTransport(spy)) as client:
        client.post("/v1/chat/completions", json=CHAT, headers=AUTH)
    assert seen == [f"Bearer {ENGINE_KEY}"]


def test_openapi_docs_describe_the_judge_routes(api):
    paths = api.get("/openapi.json").json()["paths"]
    assert {"/health", "/v1/models", "/v1/judge/pairwise", "/v1/judge/pointwise", "/v1/judge/batch"} <= set(paths)
    assert api.get("/docs").status_code == 200
