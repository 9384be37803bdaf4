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
The first `batch_create_errors` batches.create calls answer 500 after creating their batch (the
provider created it, the reply was lost); a batch shows in batches.list `batch_list_lag` seconds
after its creation.
`fake.configure(batch_delay=...)` changes the batch settings of a running server (for new batches).

Run on its own: `python -m judge.testing.fake_openai --config '{"latency": 0.2}'` prints its URL.

This module is the server's plumbing (thread or subprocess, stats, configure); the settings and
shared state are in `fake_core`, the chat routes in `fake_chat`, the Batch API's in `fake_batches`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import socket
import subprocess
import sys
import threading
import time

import httpx

from judge.testing.fake_chat import create_app
from judge.testing.fake_core import FakeConfig, State, hashed_scores_reply

__all__ = ["FakeConfig", "FakeOpenAI", "hashed_scores_reply", "main"]

URL_LINE = "FAKE_OPENAI_URL "


def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)  # listening before the URL is announced, so early clients queue instead of failing
    return sock


def _server(config: FakeConfig):
    import uvicorn

    app = create_app(config, State(config.seed))
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
