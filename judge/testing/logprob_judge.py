"""A fake local judge in logprob mode: an OpenAI-compatible `/v1/chat/completions` on 127.0.0.1
whose reply is one verdict token with its top logprobs, as vLLM returns them to `score --mode
logprob`. `distribution(prompt) -> {token: probability}` decides what it believes about each
rendered prompt; the reply is the most likely token. Used by the cascade's tests and demo (the
teacher fake, `judge.testing.fake_openai`, returns text only).

    with LogprobJudge(lambda prompt: {"1": 0.9, "2": 0.1}) as judge:
        ScoreConfig(..., backend="openai", base_url=judge.base_url, mode="logprob")
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            self.server.requests += 1
        probs = self.server.distribution(body["messages"][-1]["content"])
        token = max(probs, key=probs.get)
        top = [{"token": t, "logprob": math.log(p), "bytes": None} for t, p in probs.items() if p > 0]
        reply = {"id": "chatcmpl-logprob-judge", "object": "chat.completion", "created": 0, "model": body["model"],
                 "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": token},
                              "logprobs": {"content": [{"token": token, "logprob": math.log(probs[token]),
                                                        "bytes": None, "top_logprobs": top}]}}],
                 "usage": {"prompt_tokens": len(json.dumps(body["messages"])) // 4, "completion_tokens": 1,
                           "total_tokens": len(json.dumps(body["messages"])) // 4 + 1}}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):  # quiet: tests read counters, not access logs
        pass


class LogprobJudge(ThreadingHTTPServer):
    """The server in a daemon thread while used as a context manager; `requests` counts the calls."""

    daemon_threads = True

    def __init__(self, distribution: Callable[[str], dict[str, float]]):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.distribution = distribution
        self.lock, self.requests = threading.Lock(), 0
        self.base_url = f"http://127.0.0.1:{self.server_address[1]}/v1"

    def __enter__(self) -> LogprobJudge:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()
