"""What the judge API refuses before any route runs, as plain ASGI so that a refusal costs nothing
and `/health` stays answerable however busy or large the judge requests are:

- a `Host` it does not answer to, when no API key guards it (a web page on another site can make
  a browser on this machine call `http://evil.example:8000` resolved to 127.0.0.1: DNS rebinding);
- a POST when `max_in_flight` are already being worked on (503 with `Retry-After`);
- a body over `max_body` bytes (413, judged by `Content-Length` before reading, and by counting
  for a chunked body, before any of it is parsed).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from .errors import envelope

LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
RETRY_AFTER_S = 1


def allowed_hosts(bound: str) -> frozenset[str]:
    """The names a `Host` header may carry for a server bound to `bound` without an API key."""
    return LOCAL_NAMES | {bound.strip("[]").lower()}


def host_name(value: str) -> str | None:
    """"Example.COM:8000" -> "example.com", "[::1]:8000" -> "::1"; None for a malformed header."""
    try:
        return urlsplit("//" + value).hostname
    except ValueError:
        return None


class Bounds:
    """ASGI middleware. `hosts` None accepts any `Host` (an API key guards the server)."""

    def __init__(self, app, *, max_body: int, max_in_flight: int, hosts: frozenset[str] | None):
        self.app, self.max_body, self.max_in_flight, self.hosts = app, max_body, max_in_flight, hosts
        self.in_flight = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self.hosts is not None and host_name(headers.get("host", "")) not in self.hosts:
            return await envelope(403, f"this server answers to {', '.join(sorted(self.hosts))} only, not Host "
                                       f"{headers.get('host', '(none)')!r}; use one of those names, or start it with "
                                       f"--api-key to serve other names")(scope, receive, send)
        if scope["method"] != "POST":
            return await self.app(scope, receive, send)
        if self.in_flight >= self.max_in_flight:
            return await envelope(503, f"the server is working on {self.max_in_flight} requests (--max-in-flight); "
                                       f"retry in a moment", headers={"Retry-After": str(RETRY_AFTER_S)}
                                  )(scope, receive, send)
        self.in_flight += 1
        try:
            try:
                body = await self._read_body(headers.get("content-length"), receive)
            except _Refused as refused:
                return await envelope(refused.status, str(refused))(scope, receive, send)
            if body is not None:
                await self.app(scope, _replay(body, receive), send)
        finally:
            self.in_flight -= 1

    async def _read_body(self, declared: str | None, receive) -> bytes | None:
        """The whole body, or None if the client went away before sending it."""
        too_large = _Refused(413, f"the request body is over {self.max_body} bytes (--max-body-mb); send less per "
                                  f"request (a large batch as several)")
        if declared is not None:
            if not declared.isdigit():
                raise _Refused(400, f"invalid Content-Length {declared!r}")
            if int(declared) > self.max_body:
                raise too_large
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise too_large
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


class _Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _replay(body: bytes, receive):
    """A `receive` that gives the app the body already read, then the client's later messages
    (a disconnect while a response streams)."""
    sent = False

    async def replayed():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
