"""The environment judgeforge gives the vLLM engines it starts (no engine is started here)."""

import importlib.metadata

import pytest

from judge.backends import vllm as vllm_backend


@pytest.fixture
def cpu_build(monkeypatch):
    def version(name):
        if name == "vllm":
            raise importlib.metadata.PackageNotFoundError(name)
        return "0"

    monkeypatch.setattr(vllm_backend.importlib.metadata, "version", version)
    monkeypatch.delenv("VLLM_CPU_NUM_OF_RESERVED_CPU", raising=False)


def test_small_cpu_host_reserves_no_core_for_the_scheduler(cpu_build, monkeypatch):
    monkeypatch.setattr(vllm_backend.os, "sched_getaffinity", lambda pid: {0, 1})
    assert vllm_backend.vllm_cpu_build()
    assert vllm_backend.engine_env() == {"VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}


def test_large_cpu_host_keeps_vllms_default(cpu_build, monkeypatch):
    monkeypatch.setattr(vllm_backend.os, "sched_getaffinity", lambda pid: set(range(32)))
    assert vllm_backend.engine_env() == {}


def test_the_users_setting_wins(cpu_build, monkeypatch):
    monkeypatch.setattr(vllm_backend.os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setenv("VLLM_CPU_NUM_OF_RESERVED_CPU", "1")
    assert vllm_backend.engine_env() == {}


def test_gpu_build_gets_nothing(monkeypatch):
    monkeypatch.setattr(vllm_backend.importlib.metadata, "version", lambda name: "0.32.0")
    monkeypatch.setattr(vllm_backend.os, "sched_getaffinity", lambda pid: {0, 1})
    assert not vllm_backend.vllm_cpu_build()
    assert vllm_backend.engine_env() == {}


def test_the_engine_process_passes_it_on(cpu_build, monkeypatch):
    from serve.engine import EngineConfig, EngineProcess

    monkeypatch.setattr(vllm_backend.os, "sched_getaffinity", lambda pid: {0, 1})
    engine = EngineProcess(EngineConfig(base="m", served_name="m"))
    assert engine.env["VLLM_CPU_NUM_OF_RESERVED_CPU"] == "0"
    assert engine.command[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
