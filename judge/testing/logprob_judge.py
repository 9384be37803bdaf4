"""A fake local judge that answers with logprobs: an OpenAI-compatible `/v1/chat/completions` on
127.0.0.1 whose reply carries per-token top logprobs, as vLLM returns them to `score --mode logprob`
and to a reward function; `/v1/models` lists the judge with `templates`, as `judgeforge serve` does.
A test states what the judge believes about each prompt, so it knows the exact verdict, cascade
decision or reward to expect. Used by the cascade's and the reward's tests and the cascade demo (the
teacher fake, `judge.testing.fake_openai`, returns text only).

    with LogprobJudge(lambda prompt: {"1": 0.9, "2": 0.1}) as judge:   # one verdict token
        ScoreConfig(..., backend="openai", base_url=judge.base_url, mode="logprob")
    with LogprobJudge(reply=lambda prompt, body: [("[RESULT]", None), (" ", None), ("4", {"4": 0.7, "5": 0.3})]):
        ...                                                            # a reply of several positions
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# A reply as its positions: (token, {token: probability} at that position, or None for a sure token)
Positions = list[tuple[str, dict[str, float] | None]]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            self.server.bodies.append(body)
        positions = self.server.reply(body["messages"][-1]["content"], body)
        choice = {"index": 0, "finish_reason": "stop",
                  "message": {"role": "assistant", "content": "".join(token for token, _ in positions)}}
        if body.get("logprobs"):
            choice["logprobs"] = {"content": [
                {"token": token, "logprob": math.log(dist[token]) if dist else 0.0, "bytes": None,
                 "top_logprobs": [{"token": t, "logprob": math.log(p), "bytes": None}
                                  for t, p in (dist or {token: 1.0}).items() if p > 0]}
                for token, dist in positions]}
        prompt_tokens = len(json.dumps(body["messages"])) // 4
        self._send(200, {"id": "chatcmpl-logprob-judge", "object": "chat.completion", "created": 0,
                         "model": body["model"], "choices": [choice],
                         "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(positions),
                                   "total_tokens": prompt_tokens + len(positions)}})

    def do_GET(self):
        """/v1/models as `judgeforge serve` lists it, with the judge's templates when the test set some."""
        self._send(200 if self.path == "/v1/models" else 404,
                   {"object": "list", "data": [{"id": "judge", "templates": self.server.templates}]})

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):  # quiet: tests read counters, not access logs
        pass


class LogprobJudge(ThreadingHTTPServer):
    """The server in a daemon thread while used as a context manager. `distribution(prompt)` gives a
    one-token reply (the most likely token); `reply(prompt, body)` gives the reply's positions.
    `bodies` holds every request, `requests` counts them."""

    daemon_threads = True

    def __init__(self, distribution: Callable[[str], dict[str, float]] | None = None, *,
                 reply: Callable[[str, dict], Positions] | None = None, templates: dict | None = None):
        if (distribution is None) == (reply is None):
            raise TypeError("give either distribution or reply")
        super().__init__(("127.0.0.1", 0), _Handler)
        self.reply = reply or (lambda prompt, body: [_most_likely(distribution(prompt))])
        self.templates, self.lock, self.bodies = templates or {}, threading.Lock(), []
        self.base_url = f"http://127.0.0.1:{self.server_address[1]}/v1"

    @property
    def requests(self) -> int:
        return len(self.bodies)

    def __enter__(self) -> LogprobJudge:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()


def _most_likely(dist: dict[str, float]) -> tuple[str, dict[str, float]]:
    return max(dist, key=dist.get), dist
