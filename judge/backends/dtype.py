"""The one dtype rule for every model judgeforge loads (train, score hf/vllm, serve, merge).

`--dtype auto` (the default) is bfloat16 where the device computes it natively and float32
otherwise: a CUDA GPU of compute capability 8.0 or newer (Ampere, Ada, Hopper, Blackwell) computes
bf16 natively, older ones (T4, V100) emulate it; a CPU computes it natively when /proc/cpuinfo's
flags hold avx512_bf16 or amx_bf16. Why: most hub checkpoints (SmolLM2 among them) are saved in
bf16, and loading them "as saved" on an AVX2-only CPU runs bf16 matmuls at less than half float32's
speed (2.3x slower, measured), so a user's first CPU run was slow by default. An explicit dtype is
taken as given. Callers print the choice and its reason and write both to their manifest.

Probing imports no torch: a CPU is read from /proc/cpuinfo and a GPU through `nvidia-smi` (torch's
own answer where torch is already loaded), so the judge API process (serve) stays torch-free and
creates no CUDA context of its own.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from judge.core.errors import ConfigError

DTYPES = ("auto", "bfloat16", "float16", "float32")
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
BF16_CUDA_CAPABILITY = (8, 0)  # Ampere: the first GPUs with bf16 tensor cores


@dataclass(frozen=True)
class DtypeChoice:
    dtype: str  # bfloat16 | float16 | float32
    requested: str  # what was asked: auto, or a dtype
    device: str  # cpu | cuda
    reason: str

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return f"dtype {self.dtype} on {self.device} ({self.reason})"


def cpu_flags(path: str = "/proc/cpuinfo") -> set[str]:
    """The first processor's feature flags (an empty set where there is no /proc/cpuinfo)."""
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return set()
    return next((set(line.split(":", 1)[1].split()) for line in lines if line.startswith("flags")), set())


def cuda_capability() -> tuple[int, int] | None:
    """The lowest compute capability among the visible GPUs (the model may land on any), or None."""
    if "torch" in sys.modules:
        import torch

        if not torch.cuda.is_available():
            return None
        return min(torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count()))
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=compute_cap", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    caps = [tuple(int(part) for part in line.strip().split(".")) for line in out.splitlines() if line.strip()]
    return min(caps) if caps else None


def choose_dtype(requested: str, device: str) -> DtypeChoice:
    """The dtype a model loads and computes in on `device` ("cpu" or "cuda"): `requested` when it
    is a dtype, else the rule above. Raises ConfigError for a name that is not a dtype."""
    if requested not in DTYPES:
        raise ConfigError(f"--dtype must be one of {', '.join(DTYPES)}, got {requested!r}")
    if requested != "auto":
        return DtypeChoice(requested, requested, device, f"{requested} asked for (--dtype, or the config)")
    if device == "cuda":
        capability = cuda_capability()
        shown = ".".join(map(str, capability)) if capability else "unknown"
        if capability and capability >= BF16_CUDA_CAPABILITY:
            return DtypeChoice("bfloat16", "auto", device, f"auto: the GPU (compute capability {shown}) computes "
                                                           f"bfloat16 natively")
        return DtypeChoice("float32", "auto", device, f"auto: the GPU (compute capability {shown}) has no native "
                                                      f"bfloat16 (8.0 or newer has); --dtype float16 halves memory")
    found = [flag for flag in BF16_CPU_FLAGS if flag in cpu_flags()]
    if found:
        return DtypeChoice("bfloat16", "auto", device, f"auto: this CPU computes bfloat16 natively "
                                                       f"({', '.join(found)} in /proc/cpuinfo flags)")
    return DtypeChoice("float32", "auto", device, "auto: this CPU has no native bfloat16 (no avx512_bf16 or amx_bf16 "
                                                  "in /proc/cpuinfo flags), where bfloat16 runs ~2.3x slower than float32")


def torch_device() -> str:
    """Where a model loaded by transformers in this process runs: cuda when torch sees a GPU."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"

