"""The OpenAI-compatible server behind the judge API (our vLLM child, or `--upstream URL`): one
connection pool for its health check, the judge calls (through `OpenAIBackend`) and the
forwarded `/v1/chat/completions` and `/v1/completions`, streaming included."""

from __future__ import annotations

import httpx
from fastapi import Request
from fastapi.responses import Response, StreamingResponse
from starlette.background import BackgroundTask

from judge.backends.openai import OpenAIBackend

# Hop-by-hop and length headers are the transport's business, not the forwarded message's; the
# client's credentials are for this server, the engine gets its own.
_DROPPED = {"host", "authorization", "content-length", "connection", "keep-alive", "transfer-encoding", "te", "upgrade",
            "proxy-authorization", "proxy-connection", "trailer"}


def api_url(url: str) -> str:
    """The OpenAI base URL (ending in /v1) for a server address given with or without it."""
    url = url.rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


class Upstream:
    """`transport` replaces the network (tests pass an ASGI app's); `alive` is a callable that says
    whether a child engine process still runs (None when the engine is not ours)."""

    def __init__(self, url: str, api_key: str | None = None, *, timeout: float = 600.0, max_retries: int = 1,
                 transport: httpx.AsyncBaseTransport | None = None, alive=None):
        self.base_url = api_url(url)
        self.root = self.base_url.removesuffix("/v1")
        self.api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries
        self.transport = transport
        self.alive = alive
        self.http: httpx.AsyncClient | None = None

    def open(self) -> None:
        """Create the connection pool (inside the server's event loop)."""
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        self.http = httpx.AsyncClient(transport=self.transport, headers=headers,
                                      timeout=httpx.Timeout(self.timeout, connect=10.0),
                                      limits=httpx.Limits(max_connections=512, max_keepalive_connections=128))

    async def close(self) -> None:
        if self.http is not None:
            await self.http.aclose()
            self.http = None

    def backend(self, model: str) -> OpenAIBackend:
        """The judge calls' backend on this pool (`Request.adapter` picks the served model per call):
        one attempt per call (plus the client's own `max_retries`), the openai errors left for
        serve.errors to map to statuses, and no concurrency bound of its own (serve.bounds has one)."""
        import openai

        client = openai.AsyncOpenAI(base_url=self.base_url, api_key=self.api_key or "EMPTY", http_client=self.http,
                                    timeout=self.timeout, max_retries=self.max_retries)
        return OpenAIBackend(model, self.base_url, self.api_key, timeout=self.timeout, client=client, retry=None,
                             concurrency=None)

    async def healthy(self) -> bool:
        """vLLM's /health; servers without one (OpenAI, Ollama) count as healthy when they list models."""
        if self.alive is not None and not self.alive():
            return False
        try:
            response = await self.http.get(self.root + "/health", timeout=10.0)
            if response.status_code == 404:
                response = await self.http.get(self.base_url + "/models", timeout=10.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def forward(self, request: Request, path: str) -> Response:
        """Send the client's body to the engine and its answer back, streamed as it arrives."""
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROPPED}
        outgoing = self.http.build_request("POST", self.base_url + path, content=await request.body(), headers=headers)
        response = await self.http.send(outgoing, stream=True)
        kept = {k: v for k, v in response.headers.items() if k.lower() not in _DROPPED}
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            return StreamingResponse(response.aiter_raw(), status_code=response.status_code, headers=kept,
                                     background=BackgroundTask(response.aclose))
        content = await response.aread()  # decoded: the compression header no longer applies
        await response.aclose()
        kept.pop("content-encoding", None)
        return Response(content, status_code=response.status_code, headers=kept)
