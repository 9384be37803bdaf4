"""vLLM's OpenAI-compatible server as a child process on 127.0.0.1: the command line (LoRA modules,
rank, pass-through flags), start, wait for /health, and stop, also when this process is killed.

The engine listens on loopback only and gets a random API key of its own, so the judge API in
front of it (with its auth) is the only way in.
"""

from __future__ import annotations

import ctypes
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from judge.backends.adapters import adapter_rank, vllm_lora_rank
from judge.backends.vllm import engine_env, vllm_cpu_build

from serve.errors import ServerStartError


@dataclass
class EngineConfig:
    base: str  # model folder or hub id
    served_name: str  # what requests put in `model` for the base
    adapters: dict[str, str] = field(default_factory=dict)  # LoRA name -> folder
    tensor_parallel_size: int | None = None
    max_model_len: int | None = None
    gpu_memory_utilization: float | None = None
    extra_args: list[str] = field(default_factory=list)  # any other `vllm serve` flags, as given
    dtype: str | None = None  # judge.backends.dtype's choice; a --dtype among extra_args wins


def launcher(model: str) -> list[str]:
    """`vllm serve MODEL` where the `vllm` command works; the vllm-cpu distribution breaks it (its
    CLI looks up a distribution named `vllm`), so there the module entry point runs instead."""
    if vllm_cpu_build():
        return [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model]
    script = Path(sys.executable).with_name("vllm")
    return [str(script) if script.exists() else "vllm", "serve", model]


def engine_command(config: EngineConfig, port: int) -> list[str]:
    command = [*launcher(config.base), "--host", "127.0.0.1", "--port", str(port), "--served-model-name", config.served_name]
    if config.adapters:
        rank = max(adapter_rank(path) for path in config.adapters.values())
        command += ["--enable-lora", "--max-lora-rank", str(vllm_lora_rank(rank)),
                    "--max-loras", str(len(config.adapters)), "--lora-modules",
                    *(f"{name}={path}" for name, path in config.adapters.items())]
    for flag, value in (("--tensor-parallel-size", config.tensor_parallel_size),
                        ("--max-model-len", config.max_model_len),
                        ("--gpu-memory-utilization", config.gpu_memory_utilization),
                        ("--dtype", None if _has_flag(config.extra_args, "--dtype") else config.dtype)):
        if value is not None:
            command += [flag, str(value)]
    return command + list(config.extra_args)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """Linux: the engine gets SIGTERM if this process dies without cleaning up (e.g. SIGKILL)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


# "ValueError: ...", "torch.OutOfMemoryError: ...", a bare "RuntimeError", after vLLM's prefixes
# "(EngineCore pid=1) " and "ERROR 11-30 02:31:16 [core.py:1510] ".
_EXCEPTION_LINE = re.compile(r"^(?:\([^)]*pid=\d+\)\s*)?(?:[A-Z]+ \d\d-\d\d [\d:.]+ \[[^\]]*\]\s*)?"
                             r"([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)(?::.*)?)$")
# What vLLM's processes say after another one failed: the real cause is in an earlier traceback.
_WRAPPERS = ("root cause", "initialization failed")


def root_cause(log: str) -> str | None:
    """The last exception line of a log that is not a wrapper pointing at an earlier one: vLLM's
    log ends in "RuntimeError: Engine core initialization failed. See root cause above" after
    "Exception: WorkerProc initialization failed ...", after the worker's own traceback, e.g.
    "ValueError: Available memory on node 0 ...". None if the log holds no exception."""
    raised = [m.group(1).strip() for line in log.splitlines() if (m := _EXCEPTION_LINE.match(line.strip()))]
    causes = [line for line in raised if not any(wrapper in line for wrapper in _WRAPPERS)]
    return (causes or raised or [None])[-1]


class ChildServer:
    """An HTTP server as a child process in a session of its own: `with ChildServer(command,
    health_url) as server:` starts it, waits until `health_url` answers 200 (a clear error with the
    root cause and the end of its log if it exits or times out first), and stops its whole process
    group on the way out. Used for vLLM, and by tests and benchmarks for `judgeforge serve` itself.
    `env` adds to this process's environment; a None value removes that variable."""

    def __init__(self, command: list[str], health_url: str, *, log_path: str | Path | None = None,
                 startup_timeout: float = 900.0, env: dict | None = None, name: str = "the server"):
        self.command, self.health_url, self.name = command, health_url, name
        self.startup_timeout = startup_timeout
        self.env = {k: v for k, v in {**os.environ, **(env or {})}.items() if v is not None}
        self.log_path = Path(log_path) if log_path else Path(tempfile.mkstemp(prefix="judgeforge-", suffix=".log")[1])
        self.process: subprocess.Popen | None = None

    def __enter__(self):
        self.start()
        try:
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env=self.env, start_new_session=True, preexec_fn=_die_with_parent)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise ServerStartError(f"{self.name} exited with code {self.process.returncode} while starting"
                                       f"{self.failure_report()}")
            try:
                if httpx.get(self.health_url, timeout=5.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1.0)
        raise ServerStartError(f"{self.name} did not become healthy within {self.startup_timeout:.0f} s"
                               f"{self.failure_report()}")

    def failure_report(self, lines: int = 40) -> str:
        """": ROOT CAUSE; the end of its log (PATH):\nTAIL", for a message about a failed child."""
        cause = root_cause(self._log_end())
        return f"{': ' + cause if cause else ''}; the end of its log ({self.log_path}):\n{self.log_tail(lines)}"

    def _log_end(self, size: int = 256 * 1024) -> str:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(max(0, log.seek(0, os.SEEK_END) - size))
                return log.read().decode(errors="replace")
        except OSError:
            return "(no log)"

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self._log_end(64 * 1024).splitlines()[-lines:])

    def stop(self, grace: float = 30.0) -> None:
        """SIGTERM to the process group, SIGKILL after `grace` seconds."""
        if self.process is None:
            return
        if self.process.poll() is None:
            for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
                try:
                    os.killpg(self.process.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.process.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        try:  # workers left behind by a clean exit of the leader
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process = None


class EngineProcess(ChildServer):
    """vLLM on a free loopback port with a random API key (given in its environment, not on the
    command line where `ps` shows it). `url` is its OpenAI base URL."""

    def __init__(self, config: EngineConfig, *, log_path: str | Path | None = None, startup_timeout: float = 900.0):
        self.config = config
        self.port = free_port()
        self.api_key = secrets.token_urlsafe(24)
        self.url = f"http://127.0.0.1:{self.port}/v1"
        super().__init__(engine_command(config, self.port), f"http://127.0.0.1:{self.port}/health", log_path=log_path,
                         startup_timeout=startup_timeout, name="vLLM",
                         env={"VLLM_API_KEY": self.api_key, **engine_env(sizes_memory(config))})


def sizes_memory(config: EngineConfig) -> bool:
    """Whether the user sized the engine's memory (then judgeforge picks no KV cache size)."""
    return config.gpu_memory_utilization is not None or _has_flag(config.extra_args, "--kv-cache-memory-bytes",
                                                                  "--gpu-memory-utilization")


def _has_flag(args: list[str], *flags: str) -> bool:
    return any(arg.split("=")[0].replace("_", "-") in flags for arg in args)
