"""The one dtype rule (judge.backends.dtype), table-tested by faking the capability probe, and once for real
on this machine's CPU."""

import sys

import pytest

from judge.backends import dtype as rule
from judge.core.errors import ConfigError

GPU_OR_CPU = [
    # device, cuda capability, cpu flags -> dtype, words of the reason
    ("cuda", (9, 0), set(), "bfloat16", "compute capability 9.0) computes bfloat16 natively"),
    ("cuda", (8, 0), set(), "bfloat16", "compute capability 8.0) computes bfloat16 natively"),
    ("cuda", (7, 5), {"avx512_bf16"}, "float32", "compute capability 7.5) has no native bfloat16"),
    ("cuda", None, set(), "float32", "compute capability unknown) has no native bfloat16"),
    ("cpu", None, {"avx2", "avx512f", "avx512_bf16"}, "bfloat16", "avx512_bf16 in /proc/cpuinfo flags"),
    ("cpu", None, {"avx2", "amx_bf16", "amx_tile"}, "bfloat16", "amx_bf16 in /proc/cpuinfo flags"),
    ("cpu", (9, 0), {"avx2", "avx512f"}, "float32", "no avx512_bf16 or amx_bf16 in /proc/cpuinfo flags"),
    ("cpu", None, set(), "float32", "~2.3x slower than float32"),
]


@pytest.mark.parametrize("device,capability,flags,dtype,why", GPU_OR_CPU,
                         ids=["H100", "A100", "T4", "no-gpu-answer", "avx512-bf16", "amx", "avx2-only", "no-cpuinfo"])
def test_auto_is_bf16_only_where_the_device_computes_it_natively(monkeypatch, device, capability, flags, dtype, why):
    monkeypatch.setattr(rule, "cuda_capability", lambda: capability)
    monkeypatch.setattr(rule, "cpu_flags", lambda path="/proc/cpuinfo": flags)
    choice = rule.choose_dtype("auto", device)
    assert (choice.dtype, choice.requested, choice.device) == (dtype, "auto", device)
    assert why in choice.reason and choice.reason.startswith("auto: ")


@pytest.mark.parametrize("asked", ["bfloat16", "float16", "float32"])
def test_an_explicit_dtype_is_taken_as_given(monkeypatch, asked):
    monkeypatch.setattr(rule, "cpu_flags", lambda path="/proc/cpuinfo": set())
    choice = rule.choose_dtype(asked, "cpu")
    assert choice.dtype == asked and asked in choice.reason


def test_a_name_that_is_no_dtype_is_refused():
    with pytest.raises(ConfigError, match="--dtype must be one of auto, bfloat16, float16, float32, got 'fp32'"):
        rule.choose_dtype("fp32", "cpu")


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512_bf16\nbugs\t\t: spectre\nprocessor\t: 1\n")
    assert rule.cpu_flags(str(info)) == {"fpu", "sse2", "avx2", "avx512_bf16"}
    assert rule.cpu_flags(str(tmp_path / "none")) == set()


def test_the_real_cpu_choice_follows_its_flags_and_says_why():
    """This machine, unfaked, in a fresh process: the choice matches /proc/cpuinfo (float32 on
    AVX2-only CPUs, bfloat16 with avx512_bf16), the reason says so, and deciding imports no torch
    (the judge API process must stay torch-free)."""
    import json
    import subprocess

    with open("/proc/cpuinfo") as f:
        flags = next(line.split(":", 1)[1].split() for line in f if line.startswith("flags"))
    native = [f for f in ("avx512_bf16", "amx_bf16") if f in flags]
    code = ("import json, sys; from judge.backends.dtype import choose_dtype; "
            "print(json.dumps([choose_dtype('auto', 'cpu').as_dict(), 'torch' in sys.modules]))")
    choice, torch_loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                                     check=True).stdout)
    print(f"this CPU: {choice}")
    assert choice["dtype"] == ("bfloat16" if native else "float32") and not torch_loaded
    assert (native[0] if native else "no avx512_bf16 or amx_bf16") in choice["reason"]


def test_score_takes_one_dtype_and_4bit_only_for_the_hf_backend(monkeypatch):
    from judge.scoring.score import ScoreConfig, make_backend

    with pytest.raises(ConfigError, match="--load-in-4bit is for --backend hf"):
        ScoreConfig(input="i", out="o", backend="vllm", model="m", load_in_4bit=True)
    config = ScoreConfig(input="i", out="o", backend="hf", model="m", dtype="float32", extra={"dtype": "bfloat16"})
    with pytest.raises(ConfigError, match="--dtype float32 and --engine-arg dtype=bfloat16 disagree"):
        make_backend(config)
    built = {}

    class Recording:
        def __init__(self, model, **kwargs):
            built.update(kwargs)

    monkeypatch.setattr("judge.backends.hf.HFBackend", Recording)
    make_backend(ScoreConfig(input="i", out="o", backend="hf", model="m", extra={"dtype": "float16", "batch_size": 4}))
    assert built == {"adapter": None, "dtype": "float16", "load_in_4bit": False, "batch_size": 4}  # the older spelling
    assert ScoreConfig(input="i", out="o", backend="hf", model="m").dtype == "auto"
