"""The judge API (FastAPI): `/health`, `/v1/models`, `/v1/judge/{pairwise,pointwise,batch}`, and
`/v1/chat/completions` + `/v1/completions` forwarded to the engine, so one address serves judge
clients and generic OpenAI clients alike. OpenAPI docs at `/docs`.

`create_app` takes the engine as an `Upstream`, so tests run the real app against a fake engine.
Bearer auth (when an API key is set) guards every route but `/health` and the docs; without a key,
only JSON requests addressed to this machine's own names, from no page or a local one, are answered
(`bounds`, which checks all this before a request holds an in-flight slot). The forwarded routes
take only the served judges as `model`. When the engine is a child process
of ours and it dies, `on_engine_exit` is called (the server then stops, see `serve.server`).
"""

from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.security import HTTPBearer

from judge import __version__

from serve import errors
from serve.bounds import Bounds, allowed_hosts
from serve.errors import BadRequest, EngineUnavailable, Invalid, NotFound
from serve.judges import Judge
from serve.protocol import (BatchRequest, BatchResponse, ErrorResponse, Health, JudgeCard, JudgeList, PairwiseRequest,
                       PairwiseResponse, PointwiseRequest, PointwiseResponse)
from serve.reward import RewardSettings, add_reward_route
from serve.service import JudgeService, Limits
from serve.upstream import Upstream

_ERRORS = {status: {"model": ErrorResponse, "description": kind} for status, kind in errors.ERROR_TYPES.items()
           if status in (400, 401, 403, 404, 408, 413, 415, 422, 500, 503, 504)}
ENGINE_POLL_S = 1.0


async def watch_engine(alive, on_exit, interval: float = ENGINE_POLL_S) -> None:
    """Poll a child engine's process; once it is gone, call `on_exit` (once)."""
    while alive():
        await asyncio.sleep(interval)
    errors.log.error("the judge engine exited: stopping the server (its in-flight requests get 503)")
    on_exit()


def create_app(upstream: Upstream, judges: list[Judge], *, api_key: str | None = None, tokenizer=None,
               limits: Limits = Limits(), host: str = "127.0.0.1", on_engine_exit=None,
               reward: RewardSettings = RewardSettings()) -> FastAPI:
    state: dict = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        upstream.open()
        state["service"] = JudgeService(judges, upstream.backend(judges[0].name), tokenizer=tokenizer, limits=limits)
        watcher = (asyncio.create_task(watch_engine(upstream.alive, on_engine_exit))
                   if upstream.alive is not None and on_engine_exit is not None else None)
        try:
            yield
        finally:
            if watcher is not None:
                watcher.cancel()
            state["service"].close()
            await upstream.close()

    app = FastAPI(title="judgeforge judge API", version=__version__, lifespan=lifespan,
                  description="Local LLM judges behind vLLM: pairwise and pointwise verdicts, swap checks, "
                              "structured verdicts and verdict-token probabilities.")
    errors.install(app)
    open_paths = frozenset(p for p in ("/health", app.docs_url, app.redoc_url, app.openapi_url,
                                       app.swagger_ui_oauth2_redirect_url) if p)
    app.add_middleware(Bounds, max_body=limits.max_body, max_in_flight=limits.max_in_flight,
                       body_timeout=limits.body_timeout, api_key=api_key or None, hosts=allowed_hosts(host),
                       open_paths=open_paths)
    # Declares the key in the OpenAPI docs; serve.bounds checks it, before a request holds a slot.
    bearer = HTTPBearer(auto_error=False, description="the server's --api-key")
    served = [j.name for j in judges]

    def service() -> JudgeService:
        return state["service"]

    async def timed(work):
        async with asyncio.timeout(limits.timeout):
            return await work

    @app.get("/health", response_model=Health, responses=_ERRORS, tags=["server"])
    async def health() -> Health:
        """The engine's health (no auth): 503 when it is down. Names nothing about the engine."""
        if not await upstream.healthy():
            raise EngineUnavailable("the judge engine is not healthy")
        return Health()

    api = APIRouter(dependencies=[Depends(bearer)], responses=_ERRORS)

    @api.get("/v1/models", response_model=JudgeList, tags=["judge"])
    async def models() -> JudgeList:
        """The judges this server offers, each with the template it uses per mode."""
        return JudgeList(data=[JudgeCard(id=j.name, parent=j.parent, templates=j.templates,
                                         max_model_len=limits.max_model_len) for j in judges])

    @api.post("/v1/judge/pairwise", response_model=PairwiseResponse, tags=["judge"])
    async def pairwise(body: PairwiseRequest) -> PairwiseResponse:
        """Which of two answers is better; `swap` also asks with the answers swapped."""
        return await timed(service().judge(body))

    @api.post("/v1/judge/pointwise", response_model=PointwiseResponse, tags=["judge"])
    async def pointwise(body: PointwiseRequest) -> PointwiseResponse:
        """A score for one answer."""
        return await timed(service().judge(body))

    @api.post("/v1/judge/batch", response_model=BatchResponse, tags=["judge"])
    async def batch(body: BatchRequest) -> BatchResponse:
        """Several pairwise and pointwise items in one request, judged concurrently, results in order."""
        return await timed(service().batch(body))

    @api.post("/v1/chat/completions", tags=["openai"])
    async def chat_completions(request: Request):
        """Forwarded to the engine as is (streaming included); `model` is one of the served judges."""
        check_model(await request.body(), served)
        return await upstream.forward(request, "/chat/completions")

    @api.post("/v1/completions", tags=["openai"])
    async def completions(request: Request):
        """Forwarded to the engine as is (streaming included); `model` is one of the served judges."""
        check_model(await request.body(), served)
        return await upstream.forward(request, "/completions")

    add_reward_route(api, service, reward, timed)  # POST /get_reward (OpenRLHF's remote reward model)
    app.include_router(api)
    return app


def check_model(body: bytes, served: list[str]) -> None:
    """A forwarded request may name only a served judge as `model`: the engine (or `--upstream`, on
    its own key) is not lent out for other models."""
    try:
        request = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadRequest(f"the body is not valid JSON: {e}") from None
    if not isinstance(request, dict):
        raise Invalid("the body must be a JSON object")
    choices = ", ".join(served)
    if "model" not in request:
        raise Invalid(f"model: a served judge is required, one of: {choices}", "model")
    if request["model"] not in served:
        raise NotFound(f"model {request['model']!r} is not served here; the served judges are: {choices}", "model")
