"""What the judge API refuses before doing any work, and that one large or slow request cannot stall
`/health` or the others: the body limit, the in-flight limit, tokenization off the event loop, the
Host check (DNS rebinding) without an API key, and the upstream key that is not forwarded."""

import json
import threading
import time

import pytest
from fake_engine import KEY, FakeEngine, engine, make_client  # noqa: F401 (engine: a fixture)
from test_app import AUTH, PAIR, assert_error

from judge.cli import main
from serve.service import Limits


def test_a_body_over_the_limit_is_413_before_it_is_parsed(engine):
    with make_client(engine, limits=Limits(max_body=1000)) as client:
        big = json.dumps({**PAIR, "answer1": "x" * 2000})
        assert "1000 bytes" in assert_error(client.post("/v1/judge/pairwise", content=big, headers=AUTH), 413)["message"]
        # not JSON at all: still 413, not 400, as the body is never parsed
        assert_error(client.post("/v1/judge/pairwise", content=b"{" * 2000, headers=AUTH), 413)
        # no Content-Length (a chunked body) is counted as it arrives
        chunks = (b"x" * 100 for _ in range(20))
        assert_error(client.post("/v1/judge/pairwise", content=chunks, headers=AUTH), 413)
        assert_error(client.post("/v1/chat/completions", content=big, headers=AUTH), 413)
        assert engine.bodies == []
        assert client.post("/v1/judge/pairwise", json=PAIR, headers=AUTH).status_code == 200  # under the limit


def test_a_full_server_answers_503_with_retry_after_and_health_stays_up():
    engine = FakeEngine(hold=threading.Event())
    with make_client(engine, limits=Limits(max_in_flight=1)) as client:
        first = {}
        worker = threading.Thread(target=lambda: first.update(r=client.post("/v1/judge/pairwise", json=PAIR,
                                                                            headers=AUTH)))
        worker.start()
        try:
            deadline = time.monotonic() + 60
            while not engine.bodies and time.monotonic() < deadline:  # the first reaches the engine and waits there
                time.sleep(0.01)
            busy = client.post("/v1/judge/pairwise", json=PAIR, headers=AUTH)
            assert "--max-in-flight" in assert_error(busy, 503)["message"]
            assert busy.headers["retry-after"] == "1"
            assert client.get("/health").status_code == 200
            assert client.get("/v1/models", headers=AUTH).status_code == 200
        finally:
            engine.hold.set()
            worker.join()
    assert first["r"].status_code == 200 and len(engine.bodies) == 1


def test_health_answers_while_a_request_is_being_tokenized(engine, monkeypatch):
    """The length check runs off the event loop: a tokenizer stuck on a huge input stalls nothing else."""
    entered, release, released = threading.Event(), threading.Event(), []

    def slow_encode(tokenizer, prompt):
        entered.set()
        released.append(release.wait(timeout=30))  # False: nothing answered /health while we held the loop
        return [1] * 10

    monkeypatch.setattr("serve.service.encode_prompt", slow_encode)
    with make_client(engine, tokenizer=object(), limits=Limits(max_model_len=512)) as client:
        judged = {}
        worker = threading.Thread(target=lambda: judged.update(r=client.post("/v1/judge/pairwise", json=PAIR,
                                                                             headers=AUTH)))
        worker.start()
        entered.wait(timeout=30)
        health = client.get("/health")
        release.set()
        worker.join()
    assert health.status_code == 200 and released == [True]
    assert judged["r"].status_code == 200


@pytest.mark.parametrize("host", ["localhost:8000", "127.0.0.1", "[::1]:8000", "LOCALHOST", "10.1.2.3:8000"])
def test_without_a_key_the_local_names_and_the_bound_address_are_answered(engine, host):
    with make_client(engine, api_key=None, host="10.1.2.3") as client:
        assert client.post("/v1/judge/pairwise", json=PAIR, headers={"host": host}).status_code == 200


@pytest.mark.parametrize("host", ["evil.example:8000", "evil.example", "localhost.evil.example", "10.9.9.9:8000"])
def test_without_a_key_other_hosts_are_refused(engine, host):
    """DNS rebinding: a page on evil.example resolved to 127.0.0.1 must not drive a keyless server."""
    with make_client(engine, api_key=None) as client:
        for method, path, body in (("POST", "/v1/judge/pairwise", PAIR), ("GET", "/health", None),
                                   ("POST", "/v1/chat/completions", {"model": "base", "messages": []})):
            error = assert_error(client.request(method, path, json=body, headers={"host": host}), 403)
            assert "--api-key" in error["message"]
    assert engine.bodies == []


def test_with_a_key_any_host_is_answered(engine):
    with make_client(engine) as client:
        assert client.post("/v1/judge/pairwise", json=PAIR, headers={**AUTH, "host": "judge.internal"}).status_code == 200


@pytest.fixture
def served_config(monkeypatch):
    """Run `judgeforge serve ...` up to the point where it would start serving; return its config."""
    seen = []
    monkeypatch.setattr("serve.server.serve", seen.append)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-environment")
    monkeypatch.delenv("JUDGEFORGE_API_KEY", raising=False)

    def run(*flags):
        assert main(["serve", "--upstream", "http://127.0.0.1:9/v1", *flags]) == 0
        return seen[-1]

    return run


def test_upstream_gets_openai_api_key_only_behind_a_key_of_our_own(served_config):
    assert served_config().upstream_api_key is None  # an open judge API would lend the paid key to anyone
    assert served_config("--api-key", KEY).upstream_api_key == "sk-from-the-environment"
    assert served_config("--upstream-api-key", "explicit").upstream_api_key == "explicit"


def test_the_limits_are_flags(served_config):
    config = served_config("--max-body-mb", "2", "--max-in-flight", "8")
    assert (config.max_body_mb, config.max_in_flight) == (2.0, 8)
    assert (served_config().max_body_mb, served_config().max_in_flight) == (16.0, 256)
