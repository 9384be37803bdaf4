"""The fake OpenAI server's app: `/v1/models`, `/v1/chat/completions` (with injected 429s, 500s,
stalls and 401s), `/_stats` and `/_configure`; the Batch API's routes come from `fake_batches`."""

from __future__ import annotations

import asyncio
import dataclasses

from fastapi import FastAPI, Request
from starlette.requests import ClientDisconnect

from judge.testing.fake_batches import add_batch_routes
from judge.testing.fake_core import FakeConfig, State, completion, error_response, prompt_hash, resolve_reply


def create_app(config: FakeConfig, state: State) -> FastAPI:
    reply = resolve_reply(config.reply)
    app = FastAPI(title="fake OpenAI-compatible teacher")

    def _refused(request: Request, model: str | None):
        token = request.headers.get("authorization", "")
        if config.unauthorized or (config.api_key and token != f"Bearer {config.api_key}"):
            state.add(unauthorized=1)
            return error_response(401, "Incorrect API key provided.", "invalid_request_error")
        if model is not None and config.models and model not in config.models:
            state.add(not_found=1)
            return error_response(404, f"The model `{model}` does not exist.", "invalid_request_error")
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
                return error_response(429, "Rate limit reached, please retry later.", "rate_limit_error", headers)
            if fault < config.rate_limit_rate + config.error_rate:
                state.add(server_errors=1)
                return error_response(500, "The server had an error while processing your request.", "server_error")
            delay = config.latency
            if stall < config.stall_rate:
                state.add(stalls=1)
                delay += config.stall_seconds
            if delay:
                await asyncio.sleep(delay)
            answer = completion(body, reply(body))
            usage = answer["usage"]
            with state.lock:
                state.counts.update(ok=1, prompt_tokens=usage["prompt_tokens"], completion_tokens=usage["completion_tokens"])
                state.served[prompt_hash(body)] += 1
            return answer
        finally:
            state.leave()

    add_batch_routes(app, config, state, reply, _refused)

    @app.get("/_stats")
    async def stats():
        return state.snapshot()

    @app.post("/_configure")
    async def configure(request: Request):
        fields = await request.json()
        unknown = set(fields) - {f.name for f in dataclasses.fields(FakeConfig) if f.name.startswith("batch_")}
        if unknown:
            return error_response(400, f"only batch_* settings can change at run time, not {sorted(unknown)}",
                          "invalid_request_error")
        with state.lock:
            state.batch_settings.update(fields)
        return {"batch_settings": state.batch_settings}

    return app
