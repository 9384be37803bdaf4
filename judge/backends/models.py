"""Model and tokenizer folders: loading them (with judgeforge's errors: a bad path exits 2, naming
it) and merging a LoRA adapter into its base. Train, serve, score and the hf backend all load
through here, so they fail alike. torch, transformers and peft are imported inside the functions:
importing this module costs nothing (the judge API imports it at start).

`merge` folds an adapter into its base (peft's merge_and_unload) and saves a plain model folder with
the adapter's tokenizer and judgeforge.json (when it has one), which vLLM serves at base speed
(runtime LoRA on CPU is 10-20x slower). Merging in fp32 is exact to ~1e-4; bf16 halves the memory
and the folder size. The folder is built beside OUT and renamed into place once complete, so OUT is
never half a model.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from judge.backends.adapters import find_adapter_info, write_adapter_info
from judge.backends.dtype import DTYPES, choose_dtype
from judge.core.configfile import option
from judge.core.errors import ConfigError, JudgeforgeError
from judge.core.outdir import staged_dir

MERGE_DTYPES = ("float32", "bfloat16", "float16")


def check_model_path(path: str | os.PathLike, what: str = "model") -> None:
    """A missing local folder is an error naming it; hub ids are tried only when downloads are allowed."""
    if Path(path).exists():
        return
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        raise ConfigError(f"{what} path {path} does not exist (HF_HUB_OFFLINE=1, so it is not downloaded)")


def load_tokenizer(path: str | os.PathLike):
    from transformers import AutoTokenizer

    check_model_path(path, "tokenizer")
    try:
        return AutoTokenizer.from_pretrained(str(path))
    except OSError as e:
        raise ConfigError(f"cannot load the tokenizer from {path}: {e}") from None


def load_model(path: str | os.PathLike, *, dtype: str, device_map=None, **kwargs):
    """AutoModelForCausalLM.from_pretrained in `dtype` (a dtype name: callers resolve "auto" through
    judge.backends.dtype.choose_dtype, the one rule) with judgeforge's errors."""
    import torch
    from transformers import AutoModelForCausalLM

    if dtype not in MERGE_DTYPES:
        raise ConfigError(f"dtype must be one of {', '.join(MERGE_DTYPES)}, got {dtype!r}")
    check_model_path(path, "base model")
    try:
        return AutoModelForCausalLM.from_pretrained(str(path), dtype=getattr(torch, dtype), device_map=device_map,
                                                    **kwargs)
    except OSError as e:
        raise ConfigError(f"cannot load the model from {path}: {e}") from None


def load_judge(base: str | os.PathLike, adapter: str | os.PathLike | None = None, *, dtype: str, device: str,
               load_in_4bit: bool = False):
    """(model, tokenizer): the base model in `dtype` with the PEFT `adapter` on top (when given), on
    `device`, and the adapter's tokenizer when it ships one, else the base's. A QLoRA adapter goes on
    the full-precision base unless `load_in_4bit`: then the base is quantized as the adapter's
    judgeforge.json records (nf4, double quant), computing in `dtype`, as the trainer evaluated it."""
    kwargs = {}
    if load_in_4bit:
        from judge.backends.quantization import bnb_config, check_bitsandbytes, quantization_record

        check_bitsandbytes("4bit", "cuda" if device.startswith("cuda") else "cpu")
        info = find_adapter_info(adapter) if adapter is not None else None
        record = dict(info.quantization_config) if info and info.quantization == "4bit" and info.quantization_config \
            else quantization_record("4bit", dtype)
        kwargs["quantization_config"] = bnb_config({**record, "bnb_4bit_compute_dtype": dtype})
    model = load_model(base, dtype=dtype, device_map={"": device} if load_in_4bit else device, **kwargs)
    tokenizer_source = base
    if adapter is not None:
        from peft import PeftModel

        check_model_path(adapter, "adapter")
        model = PeftModel.from_pretrained(model, str(adapter))
        if (Path(adapter) / "tokenizer_config.json").exists():
            tokenizer_source = adapter
    return model, load_tokenizer(tokenizer_source)


@dataclasses.dataclass
class MergeConfig:
    """`judgeforge merge`'s settings (the CLI's flags are generated from these fields)."""

    base: str = option(flag="--model", aliases=("--base",), metavar="MODEL", help="base model folder")
    adapter: str = option(help="adapter folder written by `judgeforge train`")
    out: str = option(help="output folder")
    dtype: str = option("auto", choices=DTYPES, help=(
        "merge and save in this dtype; auto: bfloat16 where this machine computes it natively, else float32 "
        "(float32 is exact to ~1e-4; bfloat16 halves the size)"))


def merge(base: str, adapter: str, out: str, *, dtype: str = "auto") -> Path:
    """`judgeforge merge`: write OUT, a plain model folder of `adapter` folded into `base`. A QLoRA
    adapter (trained on the 4-bit base) is merged into the full-precision base, loaded in `dtype`:
    the usual dequantize-and-merge recipe, since 4-bit weights cannot hold the sum."""
    from peft import PeftModel

    choice = choose_dtype(dtype, "cpu")  # merging runs on the CPU
    check_model_path(adapter, "adapter")
    out_path = Path(out)
    _check_out(out_path, base, adapter)
    info = find_adapter_info(adapter)  # None for an adapter from elsewhere
    print(f"merge: {choice}")
    if info is not None and info.quantization != "none":
        print(f"merge: {adapter} is a QLoRA adapter (trained on a {info.quantization} base): merging it into the "
              f"full-precision base {base} in {choice.dtype}, not into the quantized weights")
    model = PeftModel.from_pretrained(load_model(base, dtype=choice.dtype), adapter).merge_and_unload()
    source = adapter if (Path(adapter) / "tokenizer_config.json").exists() else base
    with staged_dir(out_path) as staging:
        model.save_pretrained(staging)
        load_tokenizer(source).save_pretrained(staging)
        if info is not None:
            write_adapter_info(staging, dataclasses.replace(info, merged_from=str(adapter)))
    return out_path


def merge_in_child_process(base: str, adapter: str, out: str, *, dtype: str = "auto") -> Path:
    """`merge` run in a fresh (spawned) process: torch, both models and their memory live and die
    there, so a long-running caller such as the judge API never holds them. The child's error comes
    back as a ConfigError with its message, any other as an error naming it; a child that dies
    (killed for memory) is named as such."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        try:
            return pool.submit(_merge_reporting, base, adapter, out, dtype).result()
        except ConfigError:
            raise
        except BrokenProcessPool:
            raise JudgeforgeError(f"merging {adapter} into {base}: the merging process died, killed (out of memory? "
                                  f"it holds the base model in {dtype}) or unable to start (see its error above)") from None
        except Exception as e:  # whatever torch, peft or safetensors raised, as one line
            raise JudgeforgeError(f"merging {adapter} into {base} failed: {type(e).__name__}: {e}") from None


def _merge_reporting(base: str, adapter: str, out: str, dtype: str) -> Path:
    """`merge` in the child, its errors as plain ConfigErrors (every judgeforge error pickles as one)."""
    try:
        return merge(base, adapter, out, dtype=dtype)
    except JudgeforgeError as e:
        raise ConfigError(str(e)) from None


def _check_out(out: Path, base: str, adapter: str) -> None:
    """OUT is replaced as a whole: never the inputs, never a folder that holds something else."""
    if out.resolve() in (Path(base).resolve(), Path(adapter).resolve()):
        raise ConfigError(f"--out {out} is the {'base' if out.resolve() == Path(base).resolve() else 'adapter'} "
                          f"folder; merge writes a new folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "config.json").exists():
        raise ConfigError(f"--out {out} is a folder that holds no model (no config.json); merge replaces its "
                          f"output folder as a whole, so choose a new one")
