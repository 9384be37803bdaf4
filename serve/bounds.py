"""What the judge API refuses before any route runs, as plain ASGI so that a refusal costs nothing
and `/health` stays answerable however busy, large or slow the judge requests are. In order:

- a `Host` it does not answer to, when no API key guards it (a web page on another site can make
  a browser on this machine call `http://evil.example:8000` resolved to 127.0.0.1: DNS rebinding);
- without an API key, what a web page on another site could send from a browser on this machine
  without a CORS preflight: a foreign `Origin` (403) and a body that is not JSON (`text/plain`, a
  form, or no type at all: 415);
- a missing or wrong API key (401), on every route but the open ones (`/health`, the docs);
- a body over `max_body` bytes (413, judged by `Content-Length` before reading, and by counting
  for a chunked body, before any of it is parsed), or not all sent within `body_timeout` seconds (408);
- a POST when `max_in_flight` are already being worked on (503 with `Retry-After`).

A request holds an in-flight slot only once it has passed the checks above and its whole body has
arrived: sockets without the key, or still trickling their body in, cannot keep authorised
requests out.
"""

from __future__ import annotations

import asyncio
import secrets
from urllib.parse import urlsplit

from serve.errors import envelope

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


def origin_host(origin: str) -> str | None:
    """"http://localhost:5173" -> "localhost"; None for "null" (a sandboxed page, a file) or a malformed one."""
    try:
        return urlsplit(origin).hostname
    except ValueError:
        return None


def is_json(content_type: str | None) -> bool:
    """application/json, with parameters (charset) or as a +json type."""
    media = (content_type or "").partition(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class Bounds:
    """ASGI middleware. `hosts` None: no API key is set, so the Host, Origin and JSON checks guard
    the server; with `api_key`, the key does (any Host, Origin and content type are answered).
    `open_paths` are answered without the key."""

    def __init__(self, app, *, max_body: int, max_in_flight: int, body_timeout: float, api_key: str | None,
                 hosts: frozenset[str], open_paths: frozenset[str]):
        self.app, self.max_body, self.max_in_flight, self.body_timeout = app, max_body, max_in_flight, body_timeout
        self.api_key, self.hosts, self.open_paths = api_key, hosts, open_paths
        self.in_flight = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refused = self._refusal(scope, headers)
        if refused is None and scope["method"] != "POST":
            return await self.app(scope, receive, send)
        if refused is None and self.in_flight >= self.max_in_flight:  # full: answer before reading the body
            refused = self._busy()
        if refused is None:
            try:
                async with asyncio.timeout(self.body_timeout):
                    body = await self._read_body(headers.get("content-length"), receive)
            except _Refused as e:
                refused = e
            except TimeoutError:
                refused = _Refused(408, f"the request body did not arrive within {self.body_timeout:g} s "
                                        f"(--body-timeout); send it at once, or raise --body-timeout")
            else:
                if body is None:  # the client went away
                    return
                if self.in_flight >= self.max_in_flight:  # others were let in while this body arrived
                    refused = self._busy()
        if refused is not None:
            return await envelope(refused.status, str(refused), headers=refused.headers)(scope, receive, send)
        self.in_flight += 1
        try:
            await self.app(scope, _replay(body, receive), send)
        finally:
            self.in_flight -= 1

    def _refusal(self, scope, headers: dict[str, str]) -> _Refused | None:
        """What the headers alone refuse, cheapest first."""
        if self.api_key is None:
            if host_name(headers.get("host", "")) not in self.hosts:
                return _Refused(403, f"this server answers to {', '.join(sorted(self.hosts))} only, not Host "
                                     f"{headers.get('host', '(none)')!r}; use one of those names, or start it with "
                                     f"--api-key to serve other names")
            origin = headers.get("origin")
            if origin is not None and origin_host(origin) not in self.hosts:
                return _Refused(403, f"a request from a web page at {origin!r} is refused: without --api-key this "
                                     f"server answers pages of {', '.join(sorted(self.hosts))} only; start it with "
                                     f"--api-key to serve others")
            if scope["method"] == "POST" and not is_json(headers.get("content-type")):
                return _Refused(415, f"the body must be sent as Content-Type: application/json, not "
                                     f"{headers.get('content-type', '(none)')!r}")
        elif scope["path"] not in self.open_paths and not self._key_ok(headers.get("authorization", "")):
            return _Refused(401, "missing or wrong API key: send 'Authorization: Bearer <key>'",
                            {"WWW-Authenticate": "Bearer"})
        return None

    def _key_ok(self, authorization: str) -> bool:
        scheme, _, credentials = authorization.partition(" ")
        return scheme.lower() == "bearer" and secrets.compare_digest(credentials.strip().encode(),
                                                                     self.api_key.encode())

    def _busy(self) -> _Refused:
        return _Refused(503, f"the server is working on {self.max_in_flight} requests (--max-in-flight); retry in "
                             f"a moment", {"Retry-After": str(RETRY_AFTER_S)})

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
    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.headers = status, headers


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
