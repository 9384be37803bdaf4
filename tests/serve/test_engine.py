"""The vLLM child process: its command line, and start/health/stop with a stand-in server (a small
HTTP server that forks a grandchild, as vLLM's engine core does), including SIGTERM to
`judgeforge serve` itself."""

import importlib.metadata
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx
import pytest
from fake_engine import judge_adapter

from judge.backends.vllm import vllm_cpu_build
from serve import engine as engine_module
from serve.engine import ChildServer, EngineConfig, EngineProcess, engine_command, launcher, root_cause
from serve.errors import ServerStartError


def test_vllm_cpu_runs_the_module_entry_point_and_real_vllm_the_cli(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    assert launcher("m") == [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", "m"]
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "0.32.0")
    command = launcher("m")
    assert command[0].endswith("vllm") and command[1:] == ["serve", "m"]


def test_command_loads_every_adapter_with_a_rank_vllm_accepts(tmp_path):
    adapters = {"a": judge_adapter(tmp_path / "a", None, rank=4), "b": judge_adapter(tmp_path / "b", None, rank=12)}
    config = EngineConfig("base/path", "base", adapters, tensor_parallel_size=2, max_model_len=1024,
                          gpu_memory_utilization=0.5, extra_args=["--enforce-eager", "--max-num-seqs", "8"])
    command = engine_command(config, 1234)
    text = " ".join(command)
    assert "--host 127.0.0.1 --port 1234 --served-model-name base" in text
    assert f"--enable-lora --max-lora-rank 16 --max-loras 2 --lora-modules a={adapters['a']} b={adapters['b']}" in text
    assert "--tensor-parallel-size 2 --max-model-len 1024 --gpu-memory-utilization 0.5" in text
    assert command[-3:] == ["--enforce-eager", "--max-num-seqs", "8"]
    assert "--api-key" not in command  # the engine's key travels in its environment, not on `ps`


def test_a_plain_base_gets_no_lora_flags():
    command = engine_command(EngineConfig("m", "m"), 1)
    assert "--enable-lora" not in command and "--tensor-parallel-size" not in command


def test_the_engine_gets_the_dtype_rule_s_choice_unless_a_vllm_arg_names_one(monkeypatch):
    from judge.backends import dtype as rule
    from serve.config import ServeConfig
    from serve.server import plan_engine

    monkeypatch.setattr(rule, "cpu_flags", lambda path="/proc/cpuinfo": {"avx2"})  # no native bf16
    monkeypatch.setattr(rule, "cuda_capability", lambda: (9, 0))
    engine, _ = plan_engine(ServeConfig(base="m"))
    assert engine.dtype == ("float32" if vllm_cpu_build() else "bfloat16")
    assert engine_command(engine, 1)[-2:] == ["--dtype", engine.dtype]
    assert "--dtype" not in engine_command(EngineConfig("m", "m", extra_args=["--dtype=float16"]), 1)[:-1]


STAND_IN = textwrap.dedent("""
    import json, os, subprocess, sys, time
    from http.server import BaseHTTPRequestHandler, HTTPServer
    port, pids, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    json.dump({"pids": [os.getpid(), child.pid], "key": os.environ.get("VLLM_API_KEY")}, open(pids, "w"))
    print("stand-in engine starting", flush=True)
    if mode == "crash":
        sys.exit("CUDA out of memory (pretend)")
    if mode == "hang":
        time.sleep(600)
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"data": [{"id": "m"}]}).encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *args):
            pass
    HTTPServer(("127.0.0.1", port), Handler).serve_forever()
""")


@pytest.fixture
def stand_in(tmp_path, monkeypatch):
    """Make EngineProcess start the stand-in; returns a function reading its (pid, grandchild pid)."""
    script, pids = tmp_path / "engine.py", tmp_path / "pids"
    script.write_text(STAND_IN)

    def use(mode: str):
        monkeypatch.setattr(engine_module, "engine_command",
                            lambda config, port: [sys.executable, str(script), str(port), str(pids), mode])
        return lambda: json.loads(pids.read_text())

    return use


def gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_engine_starts_answers_and_stops_with_its_children(stand_in, tmp_path):
    pids = stand_in("serve")
    with EngineProcess(EngineConfig("m", "m"), log_path=tmp_path / "log", startup_timeout=30) as engine:
        assert engine.alive()
        assert httpx.get(engine.url + "/models").json()["data"][0]["id"] == "m"
        assert pids()["key"] == engine.api_key and len(engine.api_key) >= 24
    assert not engine.alive()
    assert all(gone(pid) for pid in pids()["pids"])


def test_a_crashing_engine_reports_its_log(stand_in, tmp_path):
    pids = stand_in("crash")
    with pytest.raises(ServerStartError, match="(?s)vLLM exited with code 1.*CUDA out of memory"):
        with EngineProcess(EngineConfig("m", "m"), log_path=tmp_path / "log", startup_timeout=30):
            pass
    assert gone(pids()["pids"][1])


def test_an_engine_that_never_gets_healthy_times_out_and_is_stopped(stand_in, tmp_path):
    pids = stand_in("hang")
    with pytest.raises(ServerStartError, match="(?s)within 2 s.*stand-in engine starting"):
        with EngineProcess(EngineConfig("m", "m"), log_path=tmp_path / "log", startup_timeout=2):
            pass
    assert all(gone(pid) for pid in pids()["pids"])


SAMPLE_LOG = Path(__file__).with_name("vllm_start_failure.log")  # vLLM 0.32 CPU started without a KV cache size


def test_root_cause_is_the_last_exception_that_is_not_a_wrapper():
    log = SAMPLE_LOG.read_text()
    assert log.rstrip().endswith("RuntimeError: Engine core initialization failed. See root cause above. "
                                 "Failed core proc(s): {}")
    assert root_cause(log).startswith("ValueError: Available memory on node 0 (6.69/9.46 GiB) on startup is less than "
                                      "desired CPU memory utilization")
    assert root_cause("Traceback (most recent call last):\n  ...\ntorch.OutOfMemoryError: out of memory\n"
                      "RuntimeError: Engine core initialization failed. See root cause above.") == \
        "torch.OutOfMemoryError: out of memory"
    assert root_cause("RuntimeError: Engine core initialization failed.") == \
        "RuntimeError: Engine core initialization failed."  # only wrappers: the last one
    assert root_cause("WARNING ... like `OSError: [Errno 24] Too many open files`\nstarting") is None


def test_a_server_that_fails_to_start_names_the_root_cause_first(tmp_path):
    replay = [sys.executable, "-c", f"import sys; sys.stdout.write(open({str(SAMPLE_LOG)!r}).read()); sys.exit(1)"]
    with pytest.raises(ServerStartError) as failed:
        with ChildServer(replay, "http://127.0.0.1:9/health", log_path=tmp_path / "log", startup_timeout=30, name="vLLM"):
            pass
    first_line = str(failed.value).splitlines()[0]
    assert first_line.startswith("vLLM exited with code 1 while starting: ValueError: Available memory on node 0")
    assert "Engine core initialization failed" in str(failed.value)  # the log's end still follows


SERVE = textwrap.dedent("""
    import sys
    import serve.engine
    serve.engine.engine_command = lambda config, port: [sys.executable, sys.argv[1], str(port), sys.argv[2], sys.argv[3]]
    from serve.server import ServeConfig, serve
    serve(ServeConfig(base="m", port=int(sys.argv[4]), startup_timeout=60, engine_log=sys.argv[5]))
""")


@pytest.mark.parametrize("mode", ["serve", "hang"])
def test_sigterm_to_judgeforge_serve_stops_the_engine(tmp_path, mode):
    """While serving and while still waiting for the engine to come up."""
    (tmp_path / "engine.py").write_text(STAND_IN)
    (tmp_path / "run_serve.py").write_text(SERVE)
    port = engine_module.free_port()
    pids = tmp_path / "pids"
    process = subprocess.Popen([sys.executable, str(tmp_path / "run_serve.py"), str(tmp_path / "engine.py"), str(pids),
                                mode, str(port), str(tmp_path / "engine.log")], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready = pids.exists() and (mode == "hang" or _answers(f"http://127.0.0.1:{port}/health"))
            if ready:
                break
            time.sleep(0.2)
        assert ready
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 128 + signal.SIGTERM  # the conventional status of a SIGTERM'ed program
        assert all(gone(pid) for pid in json.loads(pids.read_text())["pids"])
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False



SERVE_FAKE = textwrap.dedent("""
    import sys
    import serve.engine
    serve.engine.engine_command = lambda config, port: [sys.executable, sys.argv[1], str(port), sys.argv[2]]
    from judge.cli import main
    sys.exit(main(["serve", "--model", "m", "--port", sys.argv[3], "--engine-log", sys.argv[4], "--startup-timeout", "60"]))
""")


def test_engine_death_fails_in_flight_requests_with_503_and_exits_non_zero(tmp_path):
    """vLLM (here the fake engine, a real process) killed while it works on a request: that request
    gets 503, and `judgeforge serve` exits 1 so that systemd/Docker/Kubernetes restart it."""
    (tmp_path / "run_serve.py").write_text(SERVE_FAKE)
    fake = Path(__file__).with_name("fake_engine.py")
    port, pidfile, engine_log = engine_module.free_port(), tmp_path / "engine.pid", tmp_path / "engine.log"
    with open(tmp_path / "serve.log", "wb") as log:
        process = subprocess.Popen([sys.executable, str(tmp_path / "run_serve.py"), str(fake), str(pidfile), str(port),
                                    str(engine_log)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not _answers(f"http://127.0.0.1:{port}/health") and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _answers(f"http://127.0.0.1:{port}/health"), (tmp_path / "serve.log").read_text()
        judged = {}
        request = threading.Thread(target=lambda: judged.update(r=httpx.post(
            f"http://127.0.0.1:{port}/v1/judge/pairwise", json={"question": "q", "answer1": "a", "answer2": "b"},
            timeout=60)))
        request.start()
        while "holding a request" not in engine_log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        os.kill(int(pidfile.read_text()), signal.SIGKILL)
        request.join()
        assert judged["r"].status_code == 503 and judged["r"].json()["error"]["code"] == 503
        assert process.wait(timeout=60) == 1
        assert "engine exited while serving" in (tmp_path / "serve.log").read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
