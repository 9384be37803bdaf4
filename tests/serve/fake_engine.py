"""A fake vLLM engine (health, models, chat/completions with logprobs and streaming) and the judge
API in front of it, in process: the engine is reached through httpx's ASGI transport, the API
through FastAPI's TestClient, so every route runs its real code with no network and no model.

Test modules import the fixtures from here (not a conftest.py: a second module named `conftest`
would shadow tests/conftest.py for the test files that import from it).

`python fake_engine.py PORT PIDFILE` runs the fake engine as a real process in place of vLLM (its
key from VLLM_API_KEY, as vLLM takes it); it holds every chat request unanswered and prints
"holding a request", so a test can kill it mid-request."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.testclient import TestClient

from judge.backends.adapters import AdapterInfo, write_adapter_info
from judge.templates import get_template
from serve.app import create_app
from serve.judges import build_judges
from serve.reward import RewardSettings
from serve.service import Limits
from serve.upstream import Upstream

ENGINE_KEY = "engine-secret"
KEY = "judge-secret"


def prefers_good(body: dict) -> str:
    """A fair judge: whichever answer contains GOOD wins, in any order; replies in the format the
    request's structured output (or the prompt) asks for."""
    user = body["messages"][-1]["content"]
    regex = (body.get("structured_outputs") or {}).get("regex", "")
    first = "GOOD" in user and ("bad" not in user or user.index("GOOD") < user.index("bad"))
    if "[RESULT]" in regex or "[RESULT]" in user:
        return "[RESULT] 4" if regex else "Solid answer. [RESULT] 4"
    scores = "9 2" if first else "2 9"
    return scores if regex else scores + "\nThe better answer is correct."


def prefers_first(body: dict) -> str:
    """A position-biased judge: always the first answer."""
    return "9 2" if (body.get("structured_outputs") or {}).get("regex") else "9 2\nThe first one."


@dataclass
class FakeEngine:
    reply: Callable[[dict], str] = prefers_good
    delay: float = 0.0
    healthy: bool = True
    bodies: list = field(default_factory=list)
    hold: threading.Event | None = None  # chat requests wait until it is set
    key: str = ENGINE_KEY
    max_model_len: int | None = 512  # listed with the model (None: not listed, so no tokenizer is loaded)

    def app(self) -> FastAPI:
        app = FastAPI()

        def refused(request: Request):
            if request.headers.get("authorization") != f"Bearer {self.key}":
                return JSONResponse({"error": {"message": "bad key", "type": "x", "code": 401}}, status_code=401)
            return None

        @app.get("/health")
        async def health():
            return JSONResponse({}, status_code=200 if self.healthy else 500)

        @app.get("/v1/models")
        async def models(request: Request):
            return refused(request) or {"object": "list", "data": [{"id": "base", "max_model_len": self.max_model_len}]}

        @app.post("/v1/chat/completions")
        async def chat(request: Request):
            body = await request.json()
            self.bodies.append(body)
            if refused(request):
                return refused(request)
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.hold is not None:
                print("holding a request", flush=True)
            while self.hold is not None and not self.hold.is_set():
                await asyncio.sleep(0.01)
            text = self.reply(body)
            if body.get("stream"):
                return StreamingResponse(_sse(text), media_type="text/event-stream")
            message = {"role": "assistant", "content": text}
            choice = {"index": 0, "message": message, "finish_reason": "stop",
                      "logprobs": _logprobs(text) if body.get("logprobs") else None}
            usage = {"prompt_tokens": 100, "completion_tokens": len(text), "total_tokens": 100 + len(text)}
            return {"id": "c", "object": "chat.completion", "created": 0, "model": body["model"],
                    "choices": [choice], "usage": usage}

        @app.post("/v1/completions")
        async def completions(request: Request):
            body = await request.json()
            self.bodies.append(body)
            return {"id": "c", "object": "text_completion", "created": 0, "model": body["model"],
                    "choices": [{"index": 0, "text": f"echo: {body['prompt']}", "finish_reason": "stop"}]}

        return app


def _logprobs(text: str) -> dict:
    """One token per character; each position is 80% the character, 20% the digit '1'."""
    content = []
    for char in text:
        top = [{"token": char, "logprob": -0.223}]
        if char != "1":
            top.append({"token": "1", "logprob": -1.609})
        content.append({"token": char, "logprob": -0.223, "top_logprobs": top})
    return {"content": content}


async def _sse(text: str):
    for char in text:
        yield f"data: {json.dumps({'choices': [{'index': 0, 'delta': {'content': char}}]})}\n\n"
    yield "data: [DONE]\n\n"


def judge_adapter(path: Path, template: str | None = "pandalm", rank: int = 8) -> str:
    """A folder that passes for a trained adapter: adapter_config.json (unless one is there) and a
    judgeforge.json naming `template` (none when `template` is None)."""
    path.mkdir(parents=True, exist_ok=True)
    if not (path / "adapter_config.json").exists():
        (path / "adapter_config.json").write_text(json.dumps({"r": rank}))
    if template:
        t = get_template(template)
        write_adapter_info(path, AdapterInfo(template=t.key, template_hash=t.text_hash, mode=t.mode, base_model="base"))
    return str(path)


def make_client(engine: FakeEngine, *, api_key: str | None = KEY, tokenizer=None, limits: Limits = Limits(),
                adapters: dict | None = None, template: str | None = None, transport=None,
                host: str = "127.0.0.1", reward: RewardSettings = RewardSettings()) -> TestClient:
    """The app bound (as far as its Host check knows) to `host`; requests go to http://localhost."""
    upstream = Upstream("http://engine", ENGINE_KEY, transport=transport or httpx.ASGITransport(app=engine.app()),
                        max_retries=0)
    app = create_app(upstream, build_judges("base", adapters, template), api_key=api_key, tokenizer=tokenizer,
                     limits=limits, host=host, reward=reward)
    return TestClient(app, raise_server_exceptions=False, base_url="http://localhost")


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def api(engine):
    """The judge API (key KEY) in front of the fake engine; sends the key unless a test overrides it."""
    with make_client(engine) as client:
        client.headers["Authorization"] = f"Bearer {KEY}"
        yield client


if __name__ == "__main__":
    import uvicorn

    port, pidfile = int(sys.argv[1]), sys.argv[2]
    with open(pidfile, "w") as f:
        f.write(str(os.getpid()))
    engine = FakeEngine(hold=threading.Event(), key=os.environ["VLLM_API_KEY"], max_model_len=None)
    uvicorn.run(engine.app(), host="127.0.0.1", port=port, log_level="warning")
