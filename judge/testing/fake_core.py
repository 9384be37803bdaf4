"""The fake OpenAI server's settings (`FakeConfig`), its shared state (counters, files, batches)
and the helpers its routes share: error bodies, completion objects, tokenizer-free token counts."""

from __future__ import annotations

import hashlib
import importlib
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from fastapi.responses import JSONResponse


@dataclass(frozen=True)
class FakeConfig:
    latency: float = 0.0  # seconds before every successful reply
    rate_limit_rate: float = 0.0  # share of requests answered 429
    retry_after: float | None = 0.1  # the 429s' Retry-After in seconds (None: no header)
    error_rate: float = 0.0  # share of requests answered 500
    stall_rate: float = 0.0  # share of requests that wait `stall_seconds` more before replying
    stall_seconds: float = 2.0
    unauthorized: bool = False  # answer every request 401
    api_key: str | None = None  # when set, any other bearer token gets 401
    models: tuple[str, ...] = ()  # when set, other model names get 404
    # "module:function" (works in a subprocess too) or, in-thread only, a callable: request body -> reply text
    reply: str | Callable[[dict], str] = "judge.testing.fake_openai:hashed_scores_reply"
    seed: int = 0
    batch_delay: float = 0.0  # seconds from batches.create until the batch is done
    batch_error_rate: float = 0.0  # share of batch rows answered 500 (in the error file)
    batch_expire_fraction: float | None = None  # set: batches expire after completing this share of rows
    batch_max_requests: int = 50_000  # more lines in one input file fail validation, as at OpenAI
    batch_create_errors: int = 0  # the first N batches.create answer 500 AFTER creating the batch (a lost reply)
    batch_list_lag: float = 0.0  # seconds a new batch stays out of batches.list (a lagging listing)


def hashed_scores_reply(body: dict) -> str:
    """A JudgeLM-style reply fixed by the request (messages and seed): the same prompt always gets
    the same verdict, different samples (seeds) may differ."""
    digest = hashlib.sha256(json.dumps([body.get("messages"), body.get("seed")], sort_keys=True).encode()).digest()
    a, b = digest[0] % 10 + 1, digest[1] % 10 + 1
    return f"{a} {b}\nAssistant 1 scores {a} and Assistant 2 scores {b} (a deterministic fake verdict)."


def resolve_reply(reply: str | Callable[[dict], str]) -> Callable[[dict], str]:
    if callable(reply):
        return reply
    module, _, name = reply.partition(":")
    return getattr(importlib.import_module(module), name)


def tokens(text: str) -> int:
    return len(text) // 4 + 1  # a tokenizer-free count: about 4 characters per token


def error_response(status: int, message: str, kind: str, headers: dict | None = None):
    body = {"error": {"message": message, "type": kind, "param": None, "code": status}}
    return JSONResponse(body, status_code=status, headers=headers)


def prompt_hash(body: dict) -> str:
    return hashlib.sha256(json.dumps([body.get("messages"), body.get("seed")], sort_keys=True).encode()).hexdigest()


def completion(body: dict, text: str) -> dict:
    """The chat.completion object for `text`, with a tokenizer-free usage."""
    prompt_tokens = sum(tokens(str(m.get("content", ""))) for m in body.get("messages", []))
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": tokens(text),
             "total_tokens": prompt_tokens + tokens(text)}
    return {"id": f"chatcmpl-fake-{prompt_hash(body)[:12]}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model"), "usage": usage,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}


class State:
    """Counters shared by the handlers and `/_stats`; the lock makes them safe to read from any thread."""

    def __init__(self, seed: int):
        self.lock = threading.Lock()
        self.counts: Counter = Counter()
        self.served: Counter = Counter()  # prompt hash -> successful replies (repeats show re-sent requests)
        self.in_flight = 0
        self.rng = random.Random(seed)
        self.files: dict[str, dict] = {}  # file id -> {"purpose", "filename", "content": bytes, "created_at"}
        self.batches: dict[str, dict] = {}  # batch id -> the Batch object plus "_rows" (private, not served)
        self.batch_settings: dict = {}  # POST /_configure: batch_* fields that override the FakeConfig

    def draw(self) -> tuple[float, float]:
        with self.lock:
            return self.rng.random(), self.rng.random()

    def add(self, **deltas: int) -> None:
        with self.lock:
            self.counts.update(deltas)

    def enter(self) -> None:
        with self.lock:
            self.in_flight += 1
            self.counts["requests"] += 1
            self.counts["max_in_flight"] = max(self.counts["max_in_flight"], self.in_flight)

    def leave(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def snapshot(self) -> dict:
        with self.lock:
            keys = ("requests", "ok", "rate_limited", "server_errors", "stalls", "unauthorized", "not_found",
                    "max_in_flight", "prompt_tokens", "completion_tokens", "files_uploaded", "batches_created",
                    "batches_cancelled", "batch_ok", "batch_errors")
            out = {k: self.counts[k] for k in keys}
            out.update(in_flight=self.in_flight, distinct_ok=len(self.served),
                       repeated_ok=sum(self.served.values()) - len(self.served))
            return out
