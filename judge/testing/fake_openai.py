"""A fault-injecting fake of an OpenAI-compatible server (`/v1/chat/completions`, `/v1/models`, and
the Batch API's `/v1/files` and `/v1/batches`) on 127.0.0.1, for tests and benchmarks of anything
that talks to a teacher or an upstream judge.

It answers after a fixed latency, and injects 429s (with Retry-After), 500s, long stalls and 401s
at configurable rates. Replies come from a function of the request body, so a test knows what the
"teacher" says to each prompt. Counters (requests, successful replies, faults, peak concurrency)
are kept under a lock and read over HTTP at `GET /_stats`, the same way whether the server runs
in a thread of the test process or in a subprocess of its own (`process=True`: no GIL shared with
the client, used by benchmarks; a test can then SIGKILL its client and keep the server).

    with FakeOpenAI(latency=0.05, rate_limit_rate=0.15) as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="x")
        ...
        fake.stats()["ok"]

A batch (files.create(purpose="batch") then batches.create) answers each input line with the same
reply function, finishing its rows evenly over `batch_delay` seconds (request_counts grow while it
is in_progress); `batch_error_rate` of the rows go to the error file as 500s; with
`batch_expire_fraction` the batch expires at `batch_delay` after completing that share, the rest
written to the error file as `batch_expired`; a cancelled batch keeps the rows finished before the
cancel. A file over `batch_max_requests` lines, or with a repeated custom_id, fails validation.
`fake.configure(batch_delay=...)` changes the batch settings of a running server (for new batches).

Run on its own: `python -m judge.testing.fake_openai --config '{"latency": 0.2}'` prints its URL.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
import importlib
import json
import random
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

URL_LINE = "FAKE_OPENAI_URL "


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


def hashed_scores_reply(body: dict) -> str:
    """A JudgeLM-style reply fixed by the request (messages and seed): the same prompt always gets
    the same verdict, different samples (seeds) may differ."""
    digest = hashlib.sha256(json.dumps([body.get("messages"), body.get("seed")], sort_keys=True).encode()).digest()
    a, b = digest[0] % 10 + 1, digest[1] % 10 + 1
    return f"{a} {b}\nAssistant 1 scores {a} and Assistant 2 scores {b} (a deterministic fake verdict)."


def _resolve(reply: str | Callable[[dict], str]) -> Callable[[dict], str]:
    if callable(reply):
        return reply
    module, _, name = reply.partition(":")
    return getattr(importlib.import_module(module), name)


def _tokens(text: str) -> int:
    return len(text) // 4 + 1  # a tokenizer-free count: about 4 characters per token


def _error(status: int, message: str, kind: str, headers: dict | None = None):
    body = {"error": {"message": message, "type": kind, "param": None, "code": status}}
    return JSONResponse(body, status_code=status, headers=headers)


def _prompt_hash(body: dict) -> str:
    return hashlib.sha256(json.dumps([body.get("messages"), body.get("seed")], sort_keys=True).encode()).hexdigest()


def _completion(body: dict, text: str) -> dict:
    """The chat.completion object for `text`, with a tokenizer-free usage."""
    prompt_tokens = sum(_tokens(str(m.get("content", ""))) for m in body.get("messages", []))
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": _tokens(text),
             "total_tokens": prompt_tokens + _tokens(text)}
    return {"id": f"chatcmpl-fake-{_prompt_hash(body)[:12]}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model"), "usage": usage,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}


class _State:
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


def create_app(config: FakeConfig, state: _State) -> FastAPI:
    reply = _resolve(config.reply)
    app = FastAPI(title="fake OpenAI-compatible teacher")

    def _refused(request: Request, model: str | None):
        token = request.headers.get("authorization", "")
        if config.unauthorized or (config.api_key and token != f"Bearer {config.api_key}"):
            state.add(unauthorized=1)
            return _error(401, "Incorrect API key provided.", "invalid_request_error")
        if model is not None and config.models and model not in config.models:
            state.add(not_found=1)
            return _error(404, f"The model `{model}` does not exist.", "invalid_request_error")
        return None

    @app.get("/v1/models")
    async def models(request: Request):
        refused = _refused(request, None)
        return refused or {"object": "list", "data": [{"id": m, "object": "model", "created": 0, "owned_by": "fake"}
                                                      for m in config.models or ("fake-teacher",)]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        try:
            body = await request.json()
        except ClientDisconnect:  # the client was killed mid-request: nobody to answer
            return None
        refused = _refused(request, body.get("model"))
        if refused:
            return refused
        state.enter()
        try:
            fault, stall = state.draw()
            if fault < config.rate_limit_rate:
                state.add(rate_limited=1)
                headers = {"retry-after": f"{config.retry_after:g}"} if config.retry_after is not None else None
                return _error(429, "Rate limit reached, please retry later.", "rate_limit_error", headers)
            if fault < config.rate_limit_rate + config.error_rate:
                state.add(server_errors=1)
                return _error(500, "The server had an error while processing your request.", "server_error")
            delay = config.latency
            if stall < config.stall_rate:
                state.add(stalls=1)
                delay += config.stall_seconds
            if delay:
                await asyncio.sleep(delay)
            completion = _completion(body, reply(body))
            usage = completion["usage"]
            with state.lock:
                state.counts.update(ok=1, prompt_tokens=usage["prompt_tokens"], completion_tokens=usage["completion_tokens"])
                state.served[_prompt_hash(body)] += 1
            return completion
        finally:
            state.leave()

    _batch_routes(app, config, state, reply, _refused)

    @app.get("/_stats")
    async def stats():
        return state.snapshot()

    @app.post("/_configure")
    async def configure(request: Request):
        fields = await request.json()
        unknown = set(fields) - {f.name for f in dataclasses.fields(FakeConfig) if f.name.startswith("batch_")}
        if unknown:
            return _error(400, f"only batch_* settings can change at run time, not {sorted(unknown)}",
                          "invalid_request_error")
        with state.lock:
            state.batch_settings.update(fields)
        return {"batch_settings": state.batch_settings}

    return app


_BATCH_TERMINAL = ("completed", "failed", "expired", "cancelled")


def _batch_routes(app: FastAPI, config: FakeConfig, state: _State, reply: Callable[[dict], str], refused) -> None:
    """/v1/files and /v1/batches: a batch's rows are decided at create time (reply or 500, and when
    each finishes); its output and error files are written when it reaches a final state."""
    from fastapi.responses import Response

    def setting(name: str):
        return state.batch_settings.get(name, getattr(config, name))

    def new_file(content: bytes, purpose: str, filename: str) -> dict:
        with state.lock:
            file_id = f"file-fake-{len(state.files) + 1}"
            state.files[file_id] = {"purpose": purpose, "filename": filename, "content": content,
                                    "created_at": int(time.time())}
        return file_object(file_id)

    def file_object(file_id: str) -> dict:
        f = state.files[file_id]
        return {"id": file_id, "object": "file", "bytes": len(f["content"]), "created_at": f["created_at"],
                "filename": f["filename"], "purpose": f["purpose"], "status": "processed"}

    def rows_of(content: bytes) -> tuple[list[dict], str | None]:
        """The input lines, or why the file fails validation."""
        try:
            lines = [json.loads(line) for line in content.decode().splitlines() if line.strip()]
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            return [], f"the input file is not valid JSONL ({e})"
        if len(lines) > setting("batch_max_requests"):
            return [], f"the input file has {len(lines)} requests, more than the limit of {setting('batch_max_requests')}"
        ids = [line.get("custom_id") for line in lines]
        if len(set(ids)) != len(ids) or None in ids:
            return [], "every line needs a custom_id, unique within the file"
        if any(line.get("method") != "POST" or line.get("url") != "/v1/chat/completions"
               or not isinstance(line.get("body"), dict) for line in lines):
            return [], "every line must POST a body to /v1/chat/completions"
        return lines, None

    def finished_by(batch: dict, now: float) -> list[dict]:
        return [row for row in batch["_rows"] if row["done_at"] <= now]

    def settle(batch: dict) -> dict:
        """Advance a batch to where the clock says it is; write its files once it is final."""
        now = time.time()
        if batch["status"] == "in_progress" and now >= batch["_due"]:
            expiring = batch["_expiring"]
            batch["status"] = "expired" if expiring else "completed"
            batch["expired_at" if expiring else "completed_at"] = int(now)
            finish(batch, now, "batch_expired" if expiring else None)
        done = finished_by(batch, now) if batch["status"] == "in_progress" else [r for r in batch["_rows"] if r["kept"]]
        batch["request_counts"] = {"total": len(batch["_rows"]), "completed": sum(r["ok"] for r in done),
                                   "failed": sum(not r["ok"] for r in done)}
        return {k: v for k, v in batch.items() if not k.startswith("_")}

    def finish(batch: dict, now: float, unfinished_code: str | None) -> None:
        output, errors = [], []
        for row in batch["_rows"]:
            row["kept"] = row["done_at"] <= now or unfinished_code is None
            line = {"id": f"batch_req_{row['custom_id'][:16]}", "custom_id": row["custom_id"]}
            if not row["kept"]:
                errors.append({**line, "response": None, "error": {
                    "code": unfinished_code, "message": "This request could not be executed before the batch ended."}})
            elif row["ok"]:
                output.append({**line, "response": {"status_code": 200, "request_id": line["id"], "body": row["body"]},
                               "error": None})
            else:
                errors.append({**line, "response": {"status_code": 500, "request_id": line["id"], "body": {"error": {
                    "message": "The server had an error processing your request.", "type": "server_error"}}},
                    "error": None})
        with state.lock:
            for row in batch["_rows"]:
                if row["kept"] and row["ok"]:
                    state.counts.update(batch_ok=1, prompt_tokens=row["body"]["usage"]["prompt_tokens"],
                                        completion_tokens=row["body"]["usage"]["completion_tokens"])
                    state.served[row["hash"]] += 1
                elif row["kept"]:
                    state.counts.update(batch_errors=1)

        def jsonl(rows):
            return "".join(json.dumps(r) + "\n" for r in rows).encode()

        if output:
            batch["output_file_id"] = new_file(jsonl(output), "batch_output", "batch_output.jsonl")["id"]
        if errors:
            batch["error_file_id"] = new_file(jsonl(errors), "batch_output", "batch_errors.jsonl")["id"]

    @app.post("/v1/files")
    async def upload(request: Request):
        if refused(request, None):
            return refused(request, None)
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            return _error(400, "a file is required", "invalid_request_error")
        state.add(files_uploaded=1)
        return new_file(await upload.read(), str(form.get("purpose")), upload.filename or "upload.jsonl")

    @app.get("/v1/files/{file_id}")
    async def get_file(file_id: str, request: Request):
        if file_id not in state.files:
            return _error(404, f"No such File object: {file_id}", "invalid_request_error")
        return refused(request, None) or file_object(file_id)

    @app.get("/v1/files/{file_id}/content")
    async def file_content(file_id: str, request: Request):
        if file_id not in state.files:
            return _error(404, f"No such File object: {file_id}", "invalid_request_error")
        return refused(request, None) or Response(state.files[file_id]["content"],
                                                  media_type="application/octet-stream")

    @app.post("/v1/batches")
    async def create_batch(request: Request):
        if refused(request, None):
            return refused(request, None)
        body = await request.json()
        file_id = body.get("input_file_id")
        if file_id not in state.files or state.files[file_id]["purpose"] != "batch":
            return _error(400, f"input_file_id {file_id!r} is not a file uploaded with purpose 'batch'",
                          "invalid_request_error")
        if body.get("endpoint") != "/v1/chat/completions" or body.get("completion_window") != "24h":
            return _error(400, "this fake supports endpoint /v1/chat/completions with completion_window 24h",
                          "invalid_request_error")
        lines, invalid = rows_of(state.files[file_id]["content"])
        now = time.time()
        with state.lock:
            batch_id = f"batch_fake_{len(state.batches) + 1}"
            state.counts.update(batches_created=1)
            draws = [(state.rng.random(), state.rng.random()) for _ in lines]
        delay, expire, error_rate = setting("batch_delay"), setting("batch_expire_fraction"), setting("batch_error_rate")
        keep = len(lines) if expire is None else int(len(lines) * expire)
        rows = [{"custom_id": line["custom_id"], "hash": _prompt_hash(line["body"]), "ok": draws[i][0] >= error_rate,
                 "body": _completion(line["body"], reply(line["body"])),
                 "done_at": now + (delay * (i + 1) / max(keep, 1) if i < keep else 2 * delay + 1)}  # after the expiry
                for i, line in enumerate(lines)]
        batch = {"id": batch_id, "object": "batch", "endpoint": body["endpoint"], "input_file_id": file_id,
                 "completion_window": "24h", "status": "in_progress", "created_at": int(now),
                 "in_progress_at": int(now), "expires_at": int(now + 86400), "metadata": body.get("metadata"),
                 "output_file_id": None, "error_file_id": None, "errors": None, "_rows": rows,
                 "_due": now + delay, "_expiring": expire is not None}
        if invalid:
            batch.update(status="failed", failed_at=int(now), _rows=[],
                         errors={"object": "list", "data": [{"code": "invalid_request", "message": invalid}]})
        with state.lock:
            state.batches[batch_id] = batch
        return settle(batch)

    @app.get("/v1/batches/{batch_id}")
    async def get_batch(batch_id: str, request: Request):
        if batch_id not in state.batches:
            return _error(404, f"No such Batch object: {batch_id}", "invalid_request_error")
        return refused(request, None) or settle(state.batches[batch_id])

    @app.post("/v1/batches/{batch_id}/cancel")
    async def cancel_batch(batch_id: str, request: Request):
        if batch_id not in state.batches:
            return _error(404, f"No such Batch object: {batch_id}", "invalid_request_error")
        if refused(request, None):
            return refused(request, None)
        batch = state.batches[batch_id]
        settle(batch)
        if batch["status"] not in _BATCH_TERMINAL:
            now = time.time()
            batch.update(status="cancelled", cancelling_at=int(now), cancelled_at=int(now))
            state.add(batches_cancelled=1)
            finish(batch, now, "batch_cancelled")
        return settle(batch)

    @app.get("/v1/batches")
    async def list_batches(request: Request, after: str | None = None, limit: int = 20):
        if refused(request, None):
            return refused(request, None)
        ids = sorted(state.batches, key=lambda b: int(b.rsplit("_", 1)[1]), reverse=True)  # newest first
        if after in ids:
            ids = ids[ids.index(after) + 1:]
        page = [settle(state.batches[b]) for b in ids[:limit]]
        return {"object": "list", "data": page, "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None, "has_more": len(ids) > limit}


def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)  # listening before the URL is announced, so early clients queue instead of failing
    return sock


def _server(config: FakeConfig):
    import uvicorn

    app = create_app(config, _State(config.seed))
    return uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                         timeout_graceful_shutdown=1, backlog=2048))


class FakeOpenAI:
    """The fake server as a context manager: in a thread of this process, or (`process=True`) in a
    subprocess. `base_url` ends in `/v1`, as OpenAI clients expect."""

    def __init__(self, config: FakeConfig | None = None, *, process: bool = False, **overrides):
        self.config = dataclasses.replace(config or FakeConfig(), **overrides)
        if process and callable(self.config.reply):
            raise ValueError("a subprocess fake needs reply='module:function', not a callable")
        self.process = process
        self.base_url: str | None = None
        self._server = self._thread = self._proc = None

    def __enter__(self) -> FakeOpenAI:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        if self.process:
            self._start_process()
        else:
            self._start_thread()

    def _start_thread(self) -> None:
        sock = _listening_socket()
        self.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
        self._server = _server(self.config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake OpenAI server did not start")
            time.sleep(0.01)

    def _start_process(self) -> None:
        config = json.dumps(dataclasses.asdict(self.config))
        self._proc = subprocess.Popen([sys.executable, "-m", "judge.testing.fake_openai", "--config", config],
                                      stdout=subprocess.PIPE, text=True)
        line = self._proc.stdout.readline()
        if not line.startswith(URL_LINE):
            self.stop()
            raise RuntimeError(f"the fake OpenAI server did not start (said {line!r})")
        self.base_url = line[len(URL_LINE):].strip()

    def stats(self) -> dict:
        return httpx.get(self.base_url.removesuffix("/v1") + "/_stats", timeout=10).json()

    def configure(self, **batch_settings) -> None:
        """Change batch_* settings of the running server; batches created from now on use them."""
        httpx.post(self.base_url.removesuffix("/v1") + "/_configure", json=batch_settings, timeout=10).raise_for_status()

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._server = self._thread = None
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc.stdout.close()
            self._proc = None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fault-injecting fake OpenAI-compatible server on 127.0.0.1.")
    parser.add_argument("--config", default="{}", help="FakeConfig fields as JSON, e.g. '{\"latency\": 0.2}'")
    fields = json.loads(parser.parse_args(argv).config)
    if "models" in fields:
        fields["models"] = tuple(fields["models"])
    config = FakeConfig(**fields)
    sock = _listening_socket()
    print(f"{URL_LINE}http://127.0.0.1:{sock.getsockname()[1]}/v1", flush=True)
    _server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
