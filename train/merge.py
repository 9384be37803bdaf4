"""`judgeforge merge`: fold a LoRA adapter into its base model (peft's merge_and_unload) and save a
plain model folder with the adapter's tokenizer and judgeforge.json (when it has one), which vLLM
serves at base speed (runtime LoRA on CPU is 10-20x slower). Merging in fp32 is exact to ~1e-4;
bf16 halves the memory and the folder size. The folder is built beside OUT and renamed into place
once complete, so OUT is never half a model."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from judge.adapters import find_adapter_info, write_adapter_info
from judge.backends.hf import check_model_path, load_model, load_tokenizer
from judge.errors import ConfigError
from judge.outdir import staged_dir

MERGE_DTYPES = ("float32", "bfloat16", "float16")


def merge(base: str, adapter: str, out: str, *, dtype: str = "float32") -> Path:
    from peft import PeftModel

    if dtype not in MERGE_DTYPES:
        raise ConfigError(f"--dtype must be one of {', '.join(MERGE_DTYPES)}, got {dtype!r}")
    check_model_path(adapter, "adapter")
    out_path = Path(out)
    _check_out(out_path, base, adapter)
    info = find_adapter_info(adapter)  # None for an adapter from elsewhere
    model = PeftModel.from_pretrained(load_model(base, dtype=dtype), adapter).merge_and_unload()
    source = adapter if (Path(adapter) / "tokenizer_config.json").exists() else base
    with staged_dir(out_path) as staging:
        model.save_pretrained(staging)
        load_tokenizer(source).save_pretrained(staging)
        if info is not None:
            write_adapter_info(staging, dataclasses.replace(info, merged_from=str(adapter)))
    return out_path


def _check_out(out: Path, base: str, adapter: str) -> None:
    """OUT is replaced as a whole: never the inputs, never a folder that holds something else."""
    if out.resolve() in (Path(base).resolve(), Path(adapter).resolve()):
        raise ConfigError(f"--out {out} is the {'base' if out.resolve() == Path(base).resolve() else 'adapter'} "
                          f"folder; merge writes a new folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "config.json").exists():
        raise ConfigError(f"--out {out} is a folder that holds no model (no config.json); merge replaces its "
                          f"output folder as a whole, so choose a new one")
