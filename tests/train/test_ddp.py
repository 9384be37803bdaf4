"""Two real processes of data-parallel training on the CPU (gloo), started the way multi-GPU runs
are: `accelerate launch --multi_gpu`. PLATFORM.md: `--cpu --num_processes 2` silently starts one
process, and without ACCELERATE_USE_CPU each rank trains alone; so the test checks the
distributed type, the world size, and that both ranks end with the same adapter."""

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import torch

WORKER = Path(__file__).with_name("ddp_worker.py")
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_cpu_processes_train_one_adapter(overrides_for, tmp_path):
    run = tmp_path / "run"
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--num_cpu_threads_per_process", "1", "--main_process_port", str(free_port()),
               str(WORKER), str(tmp_path), *overrides_for(run)]
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the launcher and both ranks
            proc.wait()
    assert proc.returncode == 0, output[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    assert [r["rank"] for r in ranks] == [0, 1]
    assert all(r["distributed_type"] == "MULTI_CPU" and r["world_size"] == 2 and r["backend"] == "gloo" for r in ranks)
    a, b = ranks[0]["lora"], ranks[1]["lora"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert any(a[k].abs().sum() > 0 for k in a if "lora_B" in k)  # B starts at zero: they trained, together
    summary = json.loads((run / "manifest.json").read_text())["summary"]
    assert summary["world_size"] == 2 and summary["distributed_type"] == "MULTI_CPU"
