"""A Python client for the judge routes of `judgeforge serve`.

    from judge.client import JudgeClient

    with JudgeClient("http://127.0.0.1:8000", api_key="...") as judge:
        verdict = judge.pairwise("What is 2+2?", "4", "5", swap=True, mode="verdict")
        verdict["winner"], verdict["consistent"]          # "1", True
        judge.pointwise("What is 2+2?", "4", mode="logprob")["score"]
        judge.batch([{"question": "q", "answer1": "a", "answer2": "b"}, {"question": "q", "answer": "a"}])

Responses are the server's JSON as dicts (see /docs). A non-2xx answer raises `JudgeAPIError`
carrying the server's status, error type, message and the field at fault. For generic OpenAI
calls, point the `openai` client at `BASE_URL/v1` instead.
"""

from __future__ import annotations

import os

import httpx

from judge.core.errors import JudgeforgeError


class JudgeAPIError(JudgeforgeError):
    def __init__(self, status: int, message: str, type: str | None = None, param: str | None = None):
        super().__init__(f"{status} {type or 'error'}: {message}")
        self.status, self.message, self.type, self.param = status, message, type, param


class JudgeClient:
    """Sync client; `api_key` defaults to $JUDGEFORGE_API_KEY. `http_client` replaces the
    connection (any httpx.Client, e.g. FastAPI's TestClient)."""

    def __init__(self, base_url: str = "http://127.0.0.1:8000", api_key: str | None = None, *, timeout: float = 600.0,
                 http_client: httpx.Client | None = None):
        api_key = api_key or os.environ.get("JUDGEFORGE_API_KEY")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.owned = http_client is None
        self.http = http_client or httpx.Client(timeout=timeout)
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        self.headers = headers

    def __enter__(self) -> JudgeClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.owned:
            self.http.close()

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        response = self.http.request(method, self.base_url + path, json=body, headers=self.headers)
        if response.is_success:
            return response.json()
        try:
            error = response.json()["error"]
        except (ValueError, KeyError, TypeError):
            error = {"message": response.text[:500] or response.reason_phrase}
        raise JudgeAPIError(response.status_code, error.get("message", ""), error.get("type"), error.get("param"))

    def health(self) -> dict:
        return self._call("GET", "/health")

    def models(self) -> list[dict]:
        """The judges, each with its templates per mode."""
        return self._call("GET", "/v1/models")["data"]

    def pairwise(self, question: str, answer1: str, answer2: str, *, swap: bool = False, mode: str = "full",
                 **fields) -> dict:
        """`fields`: reference, rubric, context, judge, template, max_tokens, id."""
        return self._call("POST", "/v1/judge/pairwise", {"question": question, "answer1": answer1,
                                                         "answer2": answer2, "swap": swap, "mode": mode, **fields})

    def pointwise(self, question: str, answer: str, *, mode: str = "full", **fields) -> dict:
        """`fields`: reference, rubric, context, judge, template, max_tokens, id."""
        return self._call("POST", "/v1/judge/pointwise", {"question": question, "answer": answer, "mode": mode, **fields})

    def batch(self, items: list[dict]) -> list[dict]:
        """Pairwise (answer1/answer2) and pointwise (answer) items, mixed; results in the same order."""
        return self._call("POST", "/v1/judge/batch", {"items": items})["results"]
