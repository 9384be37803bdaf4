"""The judge API (FastAPI): `/health`, `/v1/models`, `/v1/judge/{pairwise,pointwise,batch}`, and
`/v1/chat/completions` + `/v1/completions` forwarded to the engine, so one address serves judge
clients and generic OpenAI clients alike. OpenAPI docs at `/docs`.

`create_app` takes the engine as an `Upstream`, so tests run the real app against a fake engine.
Bearer auth (when an API key is set) guards every route but `/health`; without a key, only requests
addressed to this machine's own names are answered (`bounds`). When the engine is a child process
of ours and it dies, `on_engine_exit` is called (the server then stops, see `serve.server`).
"""

from __future__ import annotations

import asyncio
import secrets
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from judge import __version__

from . import errors
from .bounds import Bounds, allowed_hosts
from .errors import EngineUnavailable, Unauthorized
from .judges import Judge
from .protocol import (BatchRequest, BatchResponse, ErrorResponse, Health, JudgeCard, JudgeList, PairwiseRequest,
                       PairwiseResponse, PointwiseRequest, PointwiseResponse)
from .reward import RewardSettings, add_reward_route
from .service import JudgeService, Limits
from .upstream import Upstream

_ERRORS = {status: {"model": ErrorResponse, "description": kind} for status, kind in errors.ERROR_TYPES.items()
           if status in (400, 401, 403, 404, 413, 422, 500, 503, 504)}
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
    app.add_middleware(Bounds, max_body=limits.max_body, max_in_flight=limits.max_in_flight,
                       hosts=None if api_key else allowed_hosts(host))
    bearer = HTTPBearer(auto_error=False, description="the server's --api-key")

    async def authorized(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if api_key and (credentials is None or not secrets.compare_digest(credentials.credentials.encode(),
                                                                           api_key.encode())):
            raise Unauthorized("missing or wrong API key: send 'Authorization: Bearer <key>'")

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

    api = APIRouter(dependencies=[Depends(authorized)], responses=_ERRORS)

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
        """Forwarded to the engine as is (streaming included)."""
        return await upstream.forward(request, "/chat/completions")

    @api.post("/v1/completions", tags=["openai"])
    async def completions(request: Request):
        """Forwarded to the engine as is (streaming included)."""
        return await upstream.forward(request, "/completions")

    add_reward_route(api, service, reward, timed)  # POST /get_reward (OpenRLHF's remote reward model)
    app.include_router(api)
    return app
