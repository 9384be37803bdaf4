"""What the judge API refuses before doing any work, and that one large or slow request cannot stall
`/health` or the others: the body limit, the in-flight limit (only requests being worked on count:
not sockets without the key, nor bodies still arriving, which have a deadline), tokenization off the
event loop, without an API key the Host check (DNS rebinding), non-JSON bodies and foreign Origins
(cross-site requests), and the upstream key that is not forwarded."""

import json
import socket
import threading
import time
from contextlib import contextmanager

import httpx
import pytest
import uvicorn
from fake_engine import KEY, FakeEngine, engine, make_client  # noqa: F401 (engine: a fixture)
from test_app import AUTH, CHAT, PAIR, assert_error

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


@contextmanager
def listening(app):
    """`app` served by uvicorn on 127.0.0.1 in a thread (slow sockets need a real socket); yields its port."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def slow_post(port: int, headers: dict, declared: int = 1000) -> socket.socket:
    """A POST that sends its headers and the first bytes of a `declared`-byte body, then nothing more."""
    sock = socket.create_connection(("127.0.0.1", port))
    lines = [f"POST /v1/judge/pairwise HTTP/1.1", f"Host: 127.0.0.1:{port}", "Content-Type: application/json",
             f"Content-Length: {declared}", *(f"{k}: {v}" for k, v in headers.items())]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + b'{"question": ')
    return sock


def answer(sock: socket.socket, wait: float) -> tuple[int | None, dict | None]:
    """(status, JSON body) of the response on `sock`, or (None, None) if none came within `wait` seconds."""
    sock.settimeout(wait)
    data = b""
    try:
        while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < _length(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except TimeoutError:
        if not data:
            return None, None
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def _length(data: bytes) -> int:
    head = data.partition(b"\r\n\r\n")[0].decode("latin-1").lower()
    return next((int(line.split(":")[1]) for line in head.split("\r\n") if line.startswith("content-length:")), 0)


def test_sockets_without_the_key_hold_no_slot(engine):
    """Two idle sockets without a key must not keep an authorised request out of --max-in-flight 2."""
    with listening(make_client(engine, limits=Limits(max_in_flight=2)).app) as port:
        idle = [slow_post(port, {}) for _ in range(2)]
        try:
            time.sleep(0.3)  # both are inside the server, waiting to send the rest of their bodies
            judged = httpx.post(f"http://127.0.0.1:{port}/v1/judge/pairwise", json=PAIR, headers=AUTH, timeout=30)
            assert judged.status_code == 200, judged.text
            for sock in idle:  # refused at once, without waiting for their bodies
                status, body = answer(sock, 1)
                assert status == 401 and body["error"]["code"] == 401
        finally:
            for sock in idle:
                sock.close()


@pytest.mark.parametrize("api_key", [KEY, None])
def test_a_body_sent_too_slowly_is_408_and_holds_no_slot_while_it_comes(engine, api_key):
    headers = AUTH if api_key else {}
    with listening(make_client(engine, api_key=api_key, limits=Limits(max_in_flight=2, body_timeout=1.5)).app) as port:
        slow = [slow_post(port, headers) for _ in range(2)]
        try:
            time.sleep(0.3)  # both are inside the server, sending their bodies
            judged = httpx.post(f"http://127.0.0.1:{port}/v1/judge/pairwise", json=PAIR, headers=headers, timeout=30)
            assert judged.status_code == 200, judged.text
            for sock in slow:
                status, body = answer(sock, 10)
                assert status == 408 and "--body-timeout" in body["error"]["message"]
                assert set(body["error"]) == {"message", "type", "param", "code"}
        finally:
            for sock in slow:
                sock.close()
    assert len(engine.bodies) == 1


def test_the_body_timeout_is_a_flag(served_config):
    assert served_config("--body-timeout", "5").body_timeout == 5.0
    assert served_config().body_timeout == 30.0


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                                          None])
def test_without_a_key_a_body_that_is_not_json_is_415(engine, content_type):
    """A web page's "simple" cross-site POST (no preflight) carries one of these types, or none."""
    headers = {"content-type": content_type} if content_type else {}
    with make_client(engine, api_key=None) as client:
        for path in ("/v1/judge/pairwise", "/v1/chat/completions"):
            body = json.dumps(CHAT if "chat" in path else PAIR).encode()
            error = assert_error(client.post(path, content=body, headers=headers), 415)
            assert "application/json" in error["message"]
        assert client.post("/v1/judge/pairwise", content=json.dumps(PAIR),
                           headers={"content-type": "application/json; charset=utf-8"}).status_code == 200
    assert len(engine.bodies) == 1  # only the JSON one reached the engine


@pytest.mark.parametrize("origin", ["https://evil.example", "http://evil.example:8000", "null",
                                    "http://127.0.0.1.evil.example"])
def test_without_a_key_a_foreign_origin_is_403(engine, origin):
    with make_client(engine, api_key=None) as client:
        for path, body in (("/v1/judge/pairwise", PAIR), ("/v1/chat/completions", CHAT)):
            error = assert_error(client.post(path, json=body, headers={"origin": origin}), 403)
            assert origin in error["message"] and "--api-key" in error["message"]
    assert engine.bodies == []


@pytest.mark.parametrize("origin", ["http://localhost:5173", "http://127.0.0.1:8000", "http://[::1]:3000"])
def test_without_a_key_a_local_origin_is_answered(engine, origin):
    with make_client(engine, api_key=None) as client:
        assert client.post("/v1/judge/pairwise", json=PAIR, headers={"origin": origin}).status_code == 200


def test_with_a_key_the_key_is_what_protects(engine):
    with make_client(engine) as client:
        headers = {**AUTH, "origin": "https://tool.example", "content-type": "text/plain"}
        assert client.post("/v1/chat/completions", content=json.dumps(CHAT), headers=headers).status_code == 200
        assert_error(client.post("/v1/chat/completions", json=CHAT, headers={"origin": "https://tool.example"}), 401)
