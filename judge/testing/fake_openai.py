"""A fault-injecting fake of an OpenAI-compatible server (`/v1/chat/completions`, `/v1/models`) on
127.0.0.1, for tests and benchmarks of anything that talks to a teacher or an upstream judge.

It answers after a fixed latency, and injects 429s (with Retry-After), 500s, long stalls and 401s
at configurable rates. Replies come from a function of the request body, so a test knows what the
"teacher" says to each prompt. Counters (requests, successful replies, faults, peak concurrency)
are kept under a lock and read over HTTP at `GET /_stats`, the same way whether the server runs
in a thread of the test process or in a subprocess of its own (`process=True`: no GIL shared with
the client, used by benchmarks; a test can then SIGKILL its client and keep the server).

    with FakeOpenAI(latency=0.05, rate_limit_rate=0.15) as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="x")
        ...
        fake.stats()["ok"]

Run on its own: `python -m judge.testing.fake_openai --config '{"latency": 0.2}'` prints its URL.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
import importlib
import json
import random
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

URL_LINE = "FAKE_OPENAI_URL "


@dataclass(frozen=True)
class FakeConfig:
    latency: float = 0.0  # seconds before every successful reply
    rate_limit_rate: float = 0.0  # share of requests answered 429
    retry_after: float | None = 0.1  # the 429s' Retry-After in seconds (None: no header)
    error_rate: float = 0.0  # share of requests answered 500
    stall_rate: float = 0.0  # share of requests that wait `stall_seconds` more before replying
    stall_seconds: float = 2.0
    unauthorized: bool = False  # answer every request 401
    api_key: str | None = None  # when set, any other bearer token gets 401
    models: tuple[str, ...] = ()  # when set, other model names get 404
    # "module:function" (works in a subprocess too) or, in-thread only, a callable: request body -> reply text
    reply: str | Callable[[dict], str] = "judge.testing.fake_openai:hashed_scores_reply"
    seed: int = 0


def hashed_scores_reply(body: dict) -> str:
    """A JudgeLM-style reply fixed by the request (messages and seed): the same prompt always gets
    the same verdict, different samples (seeds) may differ."""
    digest = hashlib.sha256(json.dumps([body.get("messages"), body.get("seed")], sort_keys=True).encode()).digest()
    a, b = digest[0] % 10 + 1, digest[1] % 10 + 1
    return f"{a} {b}\nAssistant 1 scores {a} and Assistant 2 scores {b} (a deterministic fake verdict)."


def _resolve(reply: str | Callable[[dict], str]) -> Callable[[dict], str]:
    if callable(reply):
        return reply
    module, _, name = reply.partition(":")
    return getattr(importlib.import_module(module), name)


def _tokens(text: str) -> int:
    return len(text) // 4 + 1  # a tokenizer-free count: about 4 characters per token


def _error(status: int, message: str, kind: str, headers: dict | None = None):
    body = {"error": {"message": message, "type": kind, "param": None, "code": status}}
    return JSONResponse(body, status_code=status, headers=headers)


class _State:
    """Counters shared by the handlers and `/_stats`; the lock makes them safe to read from any thread."""

    def __init__(self, seed: int):
        self.lock = threading.Lock()
        self.counts: Counter = Counter()
        self.served: Counter = Counter()  # prompt hash -> successful replies (repeats show re-sent requests)
        self.in_flight = 0
        self.rng = random.Random(seed)

    def draw(self) -> tuple[float, float]:
        with self.lock:
            return self.rng.random(), self.rng.random()

    def add(self, **deltas: int) -> None:
        with self.lock:
            self.counts.update(deltas)

    def enter(self) -> None:
        with self.lock:
            self.in_flight += 1
            self.counts["requests"] += 1
            self.counts["max_in_flight"] = max(self.counts["max_in_flight"], self.in_flight)

    def leave(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def snapshot(self) -> dict:
        with self.lock:
            keys = ("requests", "ok", "rate_limited", "server_errors", "stalls", "unauthorized", "not_found",
                    "max_in_flight", "prompt_tokens", "completion_tokens")
            out = {k: self.counts[k] for k in keys}
            out.update(in_flight=self.in_flight, distinct_ok=len(self.served),
                       repeated_ok=sum(self.served.values()) - len(self.served))
            return out


def create_app(config: FakeConfig, state: _State) -> FastAPI:
    reply = _resolve(config.reply)
    app = FastAPI(title="fake OpenAI-compatible teacher")

    def _refused(request: Request, model: str | None):
        token = request.headers.get("authorization", "")
        if config.unauthorized or (config.api_key and token != f"Bearer {config.api_key}"):
            state.add(unauthorized=1)
            return _error(401, "Incorrect API key provided.", "invalid_request_error")
        if model is not None and config.models and model not in config.models:
            state.add(not_found=1)
            return _error(404, f"The model `{model}` does not exist.", "invalid_request_error")
        return None

    @app.get("/v1/models")
    async def models(request: Request):
        refused = _refused(request, None)
        return refused or {"object": "list", "data": [{"id": m, "object": "model", "created": 0, "owned_by": "fake"}
                                                      for m in config.models or ("fake-teacher",)]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        try:
            body = await request.json()
        except ClientDisconnect:  # the client was killed mid-request: nobody to answer
            return None
        refused = _refused(request, body.get("model"))
        if refused:
            return refused
        state.enter()
        try:
            fault, stall = state.draw()
            if fault < config.rate_limit_rate:
                state.add(rate_limited=1)
                headers = {"retry-after": f"{config.retry_after:g}"} if config.retry_after is not None else None
                return _error(429, "Rate limit reached, please retry later.", "rate_limit_error", headers)
            if fault < config.rate_limit_rate + config.error_rate:
                state.add(server_errors=1)
                return _error(500, "The server had an error while processing your request.", "server_error")
            delay = config.latency
            if stall < config.stall_rate:
                state.add(stalls=1)
                delay += config.stall_seconds
            if delay:
                await asyncio.sleep(delay)
            text = reply(body)
            prompt_tokens = sum(_tokens(str(m.get("content", ""))) for m in body.get("messages", []))
            usage = {"prompt_tokens": prompt_tokens, "completion_tokens": _tokens(text),
                     "total_tokens": prompt_tokens + _tokens(text)}
            key = hashlib.sha256(json.dumps([body.get("messages"), body.get("seed")], sort_keys=True).encode()).hexdigest()
            with state.lock:
                state.counts.update(ok=1, prompt_tokens=usage["prompt_tokens"], completion_tokens=usage["completion_tokens"])
                state.served[key] += 1
            return {"id": f"chatcmpl-fake-{key[:12]}", "object": "chat.completion", "created": int(time.time()),
                    "model": body.get("model"), "usage": usage,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}
        finally:
            state.leave()

    @app.get("/_stats")
    async def stats():
        return state.snapshot()

    return app


def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)  # listening before the URL is announced, so early clients queue instead of failing
    return sock


def _server(config: FakeConfig):
    import uvicorn

    app = create_app(config, _State(config.seed))
    return uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                         timeout_graceful_shutdown=1, backlog=2048))


class FakeOpenAI:
    """The fake server as a context manager: in a thread of this process, or (`process=True`) in a
    subprocess. `base_url` ends in `/v1`, as OpenAI clients expect."""

    def __init__(self, config: FakeConfig | None = None, *, process: bool = False, **overrides):
        self.config = dataclasses.replace(config or FakeConfig(), **overrides)
        if process and callable(self.config.reply):
            raise ValueError("a subprocess fake needs reply='module:function', not a callable")
        self.process = process
        self.base_url: str | None = None
        self._server = self._thread = self._proc = None

    def __enter__(self) -> FakeOpenAI:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        if self.process:
            self._start_process()
        else:
            self._start_thread()

    def _start_thread(self) -> None:
        sock = _listening_socket()
        self.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
        self._server = _server(self.config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake OpenAI server did not start")
            time.sleep(0.01)

    def _start_process(self) -> None:
        config = json.dumps(dataclasses.asdict(self.config))
        self._proc = subprocess.Popen([sys.executable, "-m", "judge.testing.fake_openai", "--config", config],
                                      stdout=subprocess.PIPE, text=True)
        line = self._proc.stdout.readline()
        if not line.startswith(URL_LINE):
            self.stop()
            raise RuntimeError(f"the fake OpenAI server did not start (said {line!r})")
        self.base_url = line[len(URL_LINE):].strip()

    def stats(self) -> dict:
        return httpx.get(self.base_url.removesuffix("/v1") + "/_stats", timeout=10).json()

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._server = self._thread = None
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc.stdout.close()
            self._proc = None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fault-injecting fake OpenAI-compatible server on 127.0.0.1.")
    parser.add_argument("--config", default="{}", help="FakeConfig fields as JSON, e.g. '{\"latency\": 0.2}'")
    fields = json.loads(parser.parse_args(argv).config)
    if "models" in fields:
        fields["models"] = tuple(fields["models"])
    config = FakeConfig(**fields)
    sock = _listening_socket()
    print(f"{URL_LINE}http://127.0.0.1:{sock.getsockname()[1]}/v1", flush=True)
    _server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
