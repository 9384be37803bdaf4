"""bitsandbytes quantization of a base model: QLoRA's 4-bit nf4 with double quantization, or 8-bit,
on a CUDA GPU and on the CPU alike.

bitsandbytes ships CPU kernels from 0.50 (libbitsandbytes_cpu.so in the PyPI wheel): a 4-bit nf4
base loads, takes peft's prepare_model_for_kbit_training and LoRA, and trains on the CPU, and its
LoRA gradients match those of the same weights dequantized into float32 (tests/train/test_qlora.py).
So `quantization: 4bit` runs in every test run, not first on a user's GPU. The record written to
the adapter's judgeforge.json (`quantization_config`) is what `score --load-in-4bit` loads the base
with, as the trainer's own evaluation saw it.
"""

from __future__ import annotations

import importlib.metadata

from judge.core.errors import ConfigError

QUANTIZATIONS = ("none", "4bit", "8bit")
MIN_CPU_BITSANDBYTES = (0, 50)  # the first release with CPU kernels for 4-bit and 8-bit layers (0.50.2 tested)


def quantization_record(kind: str, compute_dtype: str) -> dict | None:
    """BitsAndBytesConfig's arguments for `kind` (JSON-ready: the compute dtype by name); None for none."""
    if kind == "4bit":
        return {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True,
                "bnb_4bit_compute_dtype": compute_dtype}
    if kind == "8bit":
        return {"load_in_8bit": True}
    return None


def bnb_config(record: dict):
    """transformers' BitsAndBytesConfig from a `quantization_record`."""
    import torch
    from transformers import BitsAndBytesConfig

    kwargs = dict(record)
    if "bnb_4bit_compute_dtype" in kwargs:
        kwargs["bnb_4bit_compute_dtype"] = getattr(torch, kwargs["bnb_4bit_compute_dtype"])
    return BitsAndBytesConfig(**kwargs)


def check_bitsandbytes(kind: str, device: str) -> None:
    """Refuse, naming what to install, where bitsandbytes cannot run `kind` on `device`."""
    try:
        version = importlib.metadata.version("bitsandbytes")
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError(f"{kind} quantization needs bitsandbytes: pip install 'bitsandbytes>=0.50' (it is in "
                          f"judgeforge's cpu and gpu extras)") from None
    if device == "cpu" and _release(version) < MIN_CPU_BITSANDBYTES:
        raise ConfigError(f"{kind} quantization on the CPU needs bitsandbytes 0.50 or newer (the first with CPU "
                          f"kernels); bitsandbytes {version} is installed: pip install -U 'bitsandbytes>=0.50'")


def _release(version: str) -> tuple[int, int]:
    """(major, minor) of a version string: '0.50.2' -> (0, 50); '0.49.0.dev0' -> (0, 49)."""
    parts = [int("".join(c for c in p if c.isdigit()) or 0) for p in version.split(".")[:2]]
    return (parts + [0])[0], (parts + [0, 0])[1]
