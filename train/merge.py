"""`judgeforge merge`: fold a LoRA adapter into its base model (peft's merge_and_unload) and save a
plain model folder with the adapter's tokenizer and judgeforge.json (when it has one), which vLLM
serves at base speed (runtime LoRA on CPU is 10-20x slower). Merging in fp32 is exact to ~1e-4;
bf16 halves the memory and the folder size."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from judge.adapters import find_adapter_info, write_adapter_info
from judge.backends.hf import check_model_path, load_model, load_tokenizer
from judge.errors import ConfigError

MERGE_DTYPES = ("float32", "bfloat16", "float16")


def merge(base: str, adapter: str, out: str, *, dtype: str = "float32") -> Path:
    from peft import PeftModel

    if dtype not in MERGE_DTYPES:
        raise ConfigError(f"--dtype must be one of {', '.join(MERGE_DTYPES)}, got {dtype!r}")
    check_model_path(adapter, "adapter")
    info = find_adapter_info(adapter)  # None for an adapter from elsewhere
    model = PeftModel.from_pretrained(load_model(base, dtype=dtype), adapter).merge_and_unload()
    out_path = Path(out)
    model.save_pretrained(out_path)
    source = adapter if (Path(adapter) / "tokenizer_config.json").exists() else base
    load_tokenizer(source).save_pretrained(out_path)
    if info is not None:
        write_adapter_info(out_path, dataclasses.replace(info, merged_from=str(adapter)))
    return out_path
