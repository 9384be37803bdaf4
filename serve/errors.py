"""The one error envelope of the judge API, `{"error": {"message", "type", "param", "code"}}` as vLLM
and OpenAI shape it, and the one place where exceptions become HTTP statuses.

Only our own validation of the request is 4xx; an unreachable engine is 503, a slow one 504, and
everything else 500 with a generic message: no stack trace or exception text from inside the
server ever reaches a client (it goes to the server log).
"""

from __future__ import annotations

import logging

import httpx
import openai
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from judge.core.errors import ConfigError, InputError, JudgeforgeError

from serve.protocol import ErrorInfo, ErrorResponse

log = logging.getLogger("judgeforge.serve")

ERROR_TYPES = {
    400: "BadRequestError", 401: "AuthenticationError", 403: "PermissionDeniedError", 404: "NotFoundError",
    405: "MethodNotAllowedError", 408: "RequestTimeoutError", 413: "RequestTooLargeError",
    415: "UnsupportedMediaTypeError", 422: "ValidationError", 500: "InternalServerError",
    503: "ServiceUnavailableError", 504: "TimeoutError",
}


class ApiError(JudgeforgeError):
    """An error with its HTTP status; `param` names the request field at fault, where there is one."""

    status = 500

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.message, self.param = message, param


class BadRequest(ApiError):
    status = 400


class Invalid(ApiError):
    """A request that is well-formed but asks for something we cannot do (unknown judge, a template
    of the other mode, a mode the template lacks)."""

    status = 422


class NotFound(ApiError):
    status = 404


class TooLarge(ApiError):
    status = 413


class EngineUnavailable(ApiError):
    status = 503


class EngineExited(JudgeforgeError):
    """The engine child died while serving: `judgeforge serve` exits non-zero so that its supervisor
    (systemd, Docker, Kubernetes) restarts it, rather than answering 503 forever."""


class ServerStartError(JudgeforgeError):
    """A child server (vLLM, or `judgeforge serve` under a test) did not come up; the message carries
    the root cause found in its log and the end of the log."""


def envelope(status: int, message: str, param: str | None = None, headers: dict | None = None) -> JSONResponse:
    error = ErrorInfo(message=message, type=ERROR_TYPES.get(status, "Error"), param=param, code=status)
    return JSONResponse(ErrorResponse(error=error).model_dump(), status_code=status, headers=headers)


def classify(exc: BaseException) -> tuple[int, str, str | None]:
    """(status, client-safe message, param) for any exception."""
    if isinstance(exc, ApiError):
        return exc.status, exc.message, exc.param
    if isinstance(exc, (ConfigError, InputError)):  # a bad template/mode/judge choice or a field a template needs
        return 422, str(exc), getattr(exc, "param", None)
    if isinstance(exc, (openai.APITimeoutError, httpx.TimeoutException, TimeoutError)):
        return 504, "the judge engine did not answer in time", None
    if isinstance(exc, (openai.APIConnectionError, httpx.TransportError)):
        return 503, "the judge engine is not reachable", None
    if isinstance(exc, openai.APIStatusError):
        return 500, f"the judge engine failed ({exc.status_code}): {_engine_message(exc)}", None
    return 500, "internal server error (details are in the server log)", None


def _engine_message(exc) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}  # the openai client unwraps {"error": {...}}
    return str(body.get("message") or exc.message)[:500]


def _validation_param(loc: tuple) -> str | None:
    """("body", "items", 0, "pairwise", "answer2") -> "items[0].answer2" (the union tags dropped)."""
    parts: list[str] = []
    for part in loc[1:] if loc and loc[0] == "body" else loc:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif part not in ("pairwise", "pointwise"):
            parts.append(("." if parts else "") + str(part))
    return "".join(parts) or None


def install(app: FastAPI) -> None:
    """Route every error through the envelope."""

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": ""}
        if first.get("type") == "json_invalid":
            return envelope(400, f"the body is not valid JSON: {first.get('msg')}")
        param = _validation_param(tuple(first.get("loc", ())))
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        return envelope(422, f"{param or 'body'}: {first.get('msg')}{more}", param)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return envelope(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    engine_errors = (openai.OpenAIError, httpx.HTTPError, TimeoutError)

    async def failure(request: Request, exc: Exception) -> JSONResponse:
        status, message, param = classify(exc)
        if isinstance(exc, engine_errors):
            log.warning("%s %s: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
        return envelope(status, message, param)

    # Starlette picks the handler by the exception's class; Exception's runs in its outermost
    # middleware, which answers and then re-raises so the server log gets the traceback.
    for kind in (JudgeforgeError, *engine_errors, Exception):
        app.add_exception_handler(kind, failure)
