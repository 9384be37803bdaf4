"""A fake OpenAI-compatible grader on 127.0.0.1 for the reward tests: `/v1/chat/completions` answers
with text and, when asked, per-token top logprobs, as vLLM does; `/v1/models` lists the judge with
`templates`, as `judgeforge serve` does. `decide(user_text, body)` returns the
reply as positions: (token, {token: probability} or None), so a test states the grade distribution
the judge holds for each prompt and knows the exact reward to expect."""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Positions = list[tuple[str, dict[str, float] | None]]


def grade_reply(dist: dict[str, float], feedback: str = "") -> Positions:
    """Prometheus' '[RESULT] k', k the most likely grade of `dist`."""
    lead = [(feedback, None)] if feedback else []
    return lead + [("[RESULT]", None), (" ", None), (max(dist, key=dist.get), dist)]


def scores_reply(first: dict[str, float], second: dict[str, float]) -> Positions:
    """JudgeLM's 'a b' score pair."""
    return [(max(first, key=first.get), first), (" ", None), (max(second, key=second.get), second)]


def marked(user: str, label: str) -> str:
    """The word after `label` in the prompt (the tests write answers such as 'grade4 ...')."""
    match = re.search(re.escape(label) + r"\s*(\S+)", user)
    return match.group(1) if match else ""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            self.server.bodies.append(body)
        positions = self.server.decide(body["messages"][-1]["content"], body)
        text = "".join(token for token, _ in positions)
        choice = {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}
        if body.get("logprobs"):
            choice["logprobs"] = {"content": [
                {"token": token, "logprob": math.log(dist[token]) if dist else 0.0,
                 "top_logprobs": [{"token": t, "logprob": math.log(p)} for t, p in (dist or {token: 1.0}).items()]}
                for token, dist in positions]}
        data = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                           "choices": [choice], "usage": {"prompt_tokens": 10, "completion_tokens": len(positions)}}
                          ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        """/v1/models as `judgeforge serve` lists it, with the judge's templates when the test set some."""
        data = json.dumps({"object": "list", "data": [{"id": "judge", "templates": self.server.templates}]}).encode()
        self.send_response(200 if self.path == "/v1/models" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class RewardJudge(ThreadingHTTPServer):
    """The fake in a daemon thread while used as a context manager; `bodies` holds every request."""

    daemon_threads = True

    def __init__(self, decide: Callable[[str, dict], Positions], templates: dict | None = None):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.decide, self.templates, self.lock, self.bodies = decide, templates or {}, threading.Lock(), []
        self.base_url = f"http://127.0.0.1:{self.server_address[1]}/v1"

    def __enter__(self) -> RewardJudge:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()
