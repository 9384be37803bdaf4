"""Benchmark LoRA training throughput and peak memory.

CPU (default): `judgeforge train`'s own Trainer on SmolLM2-135M, side by side on the same rows:
  grouped  - length-grouped batches padded to their longest row (judgeforge's default)
  random   - random batches padded to their longest row
  max_len  - random batches padded to max_length (what a fixed-shape pipeline does)
Rows: the PandaLM test set rendered with the pandalm template and GPT-3.5's replies as targets
(real, varied lengths; ../shared/data), else the shipped synthetic rows. For each variant, the
padding share of a whole epoch is counted from its real sampler and collator (no compute: a few
timed steps would see unrepresentative batches, e.g. the length sampler puts the longest first),
and the cost of a padded token is timed over a few training steps; useful tokens/s = padded
tokens/s x (1 - epoch padding share). Each variant runs in its own process so its peak RSS is its
own. Prints a table (with the ratio to max_len) and writes bench/results/train.json.

    .venv/bin/python scripts/bench_train.py [--steps 4] [--batch 8] [--max-length 512]

GPU (`--gpu`, on a CUDA machine): bf16 LoRA and QLoRA (nf4, double quant, bf16 compute) on a
random-init 7B Llama config (speed does not depend on the weight values) at 2k tokens, with
gradient checkpointing: tokens/s, MFU and peak memory, the device named. MFU counts the model
FLOPs of LoRA training, 4*N per token for the frozen weights (forward + input gradients; no
weight gradients) plus 12*layers*hidden*seq for attention, against the GPU's dense bf16 peak.

    python scripts/bench_train.py --gpu [--seq 2048] [--batch 1] [--steps 10] [--peak-tflops 989]

QLoRA vs LoRA (`--qlora`, CPU): the same Trainer on SmolLM2-135M with its base as float32 weights
(LoRA) and as 4-bit nf4 through bitsandbytes' CPU kernels (QLoRA, float32 compute), each in its own
process: seconds per step, tokens/s and peak RSS, and their ratios (key `qlora_vs_lora`).

    .venv/bin/python scripts/bench_train.py --qlora [--steps 3] [--batch 4]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results" / "train.json"
VARIANTS = {"grouped": ("group_by_length", False), "random": ("random", False), "max_len": ("random", True)}
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "4090": 165.0}


# ---- CPU: the real trainer, one variant per process ---------------------------------------
def bench_rows(workdir: Path) -> tuple[Path, str]:
    """train.jsonl to benchmark on: PandaLM items with GPT-3.5's replies as targets (varied lengths),
    else the shipped synthetic rows."""
    from judge.core.jsonl import write_jsonl
    from judge.core.records import TrainRow
    from judge.data.convert import convert_records
    from judge.templates import get_template

    source = ROOT.parent / "shared" / "data" / "pandalm"
    if not (source / "testset-v1.json").exists():
        return ROOT / "examples" / "synthetic" / "train.jsonl", "examples/synthetic (uniform lengths)"
    template = get_template("pandalm")
    items = {i.id: i for i in convert_records("pandalm", str(source / "testset-v1.json"))}
    rows = []
    for v in convert_records("pandalm-verdicts", str(source / "gpt-3.5-turbo-testset-v1.json")):
        if v.id in items and v.raw.strip():
            messages = [*template.render(items[v.id], "ab").messages, {"role": "assistant", "content": v.raw}]
            rows.append(TrainRow(id=v.id, mode="pairwise", template=template.key, template_hash=template.text_hash,
                                 order="ab", messages=messages, winner=v.winner, parse_ok=v.parse_ok))
    path = workdir / "train.jsonl"
    write_jsonl(path, rows)
    return path, "PandaLM test set + GPT-3.5 replies"


def run_variant(name: str, train_file: str, out: str, steps: int, batch: int, max_length: int) -> dict:
    """One variant, in this process: the padding of a whole epoch of its batches (the real sampler and
    collator, no compute), then `steps` optimizer steps of the judgeforge Trainer, timed."""
    from train.config import load_config
    from train.trainer import build_trainer

    strategy, pad_to_max = VARIANTS[name]
    config = load_config(ROOT / "configs" / "train" / "smoke-cpu.yaml", [
        f"base_model={ROOT / 'models' / 'SmolLM2-135M-Instruct'}", f"train_file={train_file}", "val_file=",
        f"output_dir={out}", f"max_steps={steps}", "save_strategy=no",
        f"per_device_train_batch_size={batch}", f"max_length={max_length}", f"train_sampling_strategy={strategy}",
        "logging_steps=1000", "disable_tqdm=true", "warmup_steps=0"])
    trainer, data = build_trainer(config, pad_to=max_length if pad_to_max else None)
    epoch_padded = epoch_useful = 0
    for batch_ in trainer.get_train_dataloader():
        epoch_padded += batch_["input_ids"].numel()
        epoch_useful += int(batch_["attention_mask"].sum())
    compute_loss, padded = trainer.compute_loss, [0]

    def counting(model, inputs, *rest, **kwargs):  # the batches trained on (the loader reads one ahead)
        padded[0] += inputs["input_ids"].numel()
        return compute_loss(model, inputs, *rest, **kwargs)

    trainer.compute_loss = counting
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    share = 1 - epoch_useful / epoch_padded
    padded_per_s = padded[0] / seconds
    return {"variant": name, "sampling": strategy, "padding": "max_length" if pad_to_max else "longest in batch",
            "rows_kept": data.counts["train"]["kept"], "epoch_padding_share": round(share, 3),
            "steps": steps, "batch": batch, "seconds": round(seconds, 2), "step_padded_tokens": padded[0],
            "step_useful_tokens": int(trainer.state.num_input_tokens_seen),
            "padded_tokens_per_s": round(padded_per_s, 1), "useful_tokens_per_s": round(padded_per_s * (1 - share), 1),
            "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)}


def bench_cpu(args) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        train_file, source = bench_rows(Path(tmp))
        runs = []
        for name in VARIANTS:
            out = Path(tmp) / name
            child = subprocess.run([sys.executable, __file__, "--variant", name, "--train-file", str(train_file),
                                    "--out", str(out), "--steps", str(args.steps), "--batch", str(args.batch),
                                    "--max-length", str(args.max_length)], capture_output=True, text=True,
                                   env={**os.environ, "HF_HUB_OFFLINE": "1"})
            if child.returncode:
                sys.exit(f"variant {name} failed:\n{child.stderr[-3000:]}")
            runs.append(json.loads((out / "bench.json").read_text()))
    base = next(r for r in runs if r["variant"] == "max_len")
    for r in runs:
        r["speedup_vs_max_len"] = round(r["useful_tokens_per_s"] / base["useful_tokens_per_s"], 2)
        r["peak_rss_vs_max_len"] = round(r["peak_rss_gib"] / base["peak_rss_gib"], 2)
    header = (f"{'variant':9} {'padding':18} {'epoch pad share':>15} {'padded tok/s':>12} {'useful tok/s':>12} "
              f"{'peak RSS':>9} {'speedup':>8}")
    print(f"LoRA r=16 on SmolLM2-135M, CPU ({os.cpu_count()} cores), batch {args.batch}, {args.steps} timed steps, "
          f"max_length {args.max_length}; rows: {source} ({runs[0]['rows_kept']} within max_length)\n{header}")
    for r in runs:
        print(f"{r['variant']:9} {r['padding']:18} {r['epoch_padding_share']:15.1%} {r['padded_tokens_per_s']:12.1f} "
              f"{r['useful_tokens_per_s']:12.1f} {r['peak_rss_gib']:7.2f}Gi {r['speedup_vs_max_len']:7.2f}x")
    return {"model": "SmolLM2-135M-Instruct", "device": f"CPU, {os.cpu_count()} cores ({platform.processor() or platform.machine()})",
            "rows": source, "lora": {"r": 16, "alpha": 32, "targets": "all linear"}, "runs": runs,
            "note": "taken while other engineers' jobs shared the 2 cores: absolute numbers are noisy, the ratios less so"}


# ---- CPU: QLoRA (4-bit nf4 base) vs LoRA (float32 base), side by side ----------------------
QUANT = {"lora": "none", "qlora": "4bit"}


def run_quant(name: str, train_file: str, out: str, steps: int, batch: int) -> dict:
    """`steps` optimizer steps of the judgeforge Trainer with the base as `name` says, in this process
    (its peak RSS is the variant's own); float32 weights / compute, as the smoke config trains."""
    from train.config import load_config
    from train.trainer import build_trainer

    started = time.perf_counter()
    config = load_config(ROOT / "configs" / "train" / "smoke-cpu.yaml", [
        f"base_model={ROOT / 'models' / 'SmolLM2-135M-Instruct'}", f"train_file={train_file}", "val_file=",
        f"output_dir={out}", f"max_steps={steps}", "save_strategy=no", f"per_device_train_batch_size={batch}",
        f"quantization={QUANT[name]}", "logging_steps=1000", "disable_tqdm=true", "warmup_steps=0"])
    trainer, data = build_trainer(config)
    loaded = time.perf_counter() - started
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    return {"variant": name, "quantization": QUANT[name], "dtype": config.model_dtype, "steps": steps, "batch": batch,
            "load_s": round(loaded, 1), "seconds": round(seconds, 2), "step_s": round(seconds / steps, 2),
            "tokens_per_s": round(trainer.state.num_input_tokens_seen / seconds, 1),
            "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)}


def bench_qlora(args) -> dict:
    train_file = ROOT / "examples" / "synthetic" / "train.jsonl"  # short rows: the step, not the padding, is timed
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in QUANT:
            out = Path(tmp) / name
            child = subprocess.run([sys.executable, __file__, "--quant-variant", name, "--train-file", str(train_file),
                                    "--out", str(out), "--steps", str(args.steps), "--batch", str(args.batch)],
                                   capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
            if child.returncode:
                sys.exit(f"variant {name} failed:\n{child.stderr[-3000:]}")
            runs.append(json.loads((out / "bench.json").read_text()))
    lora, qlora = runs
    ratios = {"qlora_over_lora_step_time": round(qlora["step_s"] / lora["step_s"], 2),
              "qlora_over_lora_peak_rss": round(qlora["peak_rss_gib"] / lora["peak_rss_gib"], 2)}
    print(f"QLoRA vs LoRA, r=16 all linear, SmolLM2-135M on CPU ({os.cpu_count()} cores), batch {args.batch}, "
          f"{args.steps} steps, synthetic rows\n{'variant':8} {'base':6} {'compute':8} {'step s':>7} {'tok/s':>7} "
          f"{'peak RSS':>9}")
    for r in runs:
        print(f"{r['variant']:8} {r['quantization']:6} {r['dtype']:8} {r['step_s']:7.2f} {r['tokens_per_s']:7.1f} "
              f"{r['peak_rss_gib']:7.2f}Gi")
    print(ratios)
    return {"model": "SmolLM2-135M-Instruct", "device": _cpu_name(), "rows": "examples/synthetic/train.jsonl",
            "runs": runs, "ratios": ratios, "load_average": [round(x, 2) for x in os.getloadavg()],
            "note": "peak RSS includes loading (bitsandbytes quantizes while loading the bf16 checkpoint); other "
                    "engineers' jobs shared the 2 cores: absolute numbers are noisy, the ratios less so"}


def _cpu_name() -> str:
    from judge.backends.dtype import cpu_flags

    bf16 = [f for f in ("avx512_bf16", "amx_bf16") if f in cpu_flags()]
    return f"CPU, {os.cpu_count()} cores ({platform.machine()}; {', '.join(bf16) or 'no native bf16'})"


# ---- GPU: raw LoRA / QLoRA steps on a random-init 7B ---------------------------------------
def bench_gpu(args) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig, LlamaConfig

    if not torch.cuda.is_available():
        sys.exit("--gpu needs a CUDA GPU")
    name = torch.cuda.get_device_name()
    peak = args.peak_tflops or next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    config = LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                         num_key_value_heads=32, vocab_size=32000, max_position_embeddings=4096)
    results = {"device": name, "peak_bf16_tflops": peak, "seq": args.seq, "batch": args.batch, "runs": []}
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        with torch.device("cuda"):
            model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
        n_params = sum(p.numel() for p in model.parameters())
        if not args.skip_qlora:
            model.save_pretrained(tmp)  # QLoRA quantizes while loading: save the random weights once
        for variant in ["lora-bf16"] + ([] if args.skip_qlora else ["qlora-nf4"]):
            if variant == "qlora-nf4":
                del model
                torch.cuda.empty_cache()
                model = AutoModelForCausalLM.from_pretrained(tmp, device_map={"": 0}, quantization_config=BitsAndBytesConfig(
                    load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                    bnb_4bit_compute_dtype=torch.bfloat16))
                model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True,  # as train.trainer does
                                                        gradient_checkpointing_kwargs={"use_reentrant": False})
            results["runs"].append(_gpu_steps(model, variant, config, n_params, args, peak, get_peft_model, LoraConfig))
    for r in results["runs"]:
        print(f"{r['variant']:10} {r['tokens_per_s']:10.0f} tok/s  MFU {r['mfu'] if r['mfu'] is not None else 'n/a'}  "
              f"peak {r['peak_memory_gib']:.1f} GiB  ({name})")
    return results


def _gpu_steps(model, variant, config, n_params, args, peak, get_peft_model, LoraConfig) -> dict:
    import torch

    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    lora = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "k_proj", "v_proj", "o_proj",
                                                                                   "gate_proj", "up_proj", "down_proj"]))
    optimizer = torch.optim.AdamW([p for p in lora.parameters() if p.requires_grad], lr=1e-4)
    ids = torch.randint(0, config.vocab_size, (args.batch, args.seq), device="cuda")
    torch.cuda.reset_peak_memory_stats()
    for step in range(args.warmup + args.steps):
        if step == args.warmup:
            torch.cuda.synchronize()
            start = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = lora(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    tokens_per_s = args.batch * args.seq * args.steps / seconds
    flops_per_token = 4 * n_params + 12 * config.num_hidden_layers * config.hidden_size * args.seq
    mfu = round(tokens_per_s * flops_per_token / (peak * 1e12), 4) if peak else None
    lora.unload()
    return {"variant": variant, "tokens_per_s": round(tokens_per_s, 1), "mfu": mfu, "params": n_params,
            "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2), "steps": args.steps,
            "seconds": round(seconds, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--gpu", action="store_true", help="the 7B LoRA/QLoRA measurement on a CUDA GPU")
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--peak-tflops", type=float, help="the GPU's dense bf16 peak (default: from its name)")
    parser.add_argument("--skip-qlora", action="store_true")
    parser.add_argument("--workdir", default=None, help="where the random 7B is saved for QLoRA (~13 GB)")
    parser.add_argument("--qlora", action="store_true", help="QLoRA vs LoRA on SmolLM2 on the CPU (key qlora_vs_lora)")
    parser.add_argument("--variant", choices=list(VARIANTS), help=argparse.SUPPRESS)  # a child run
    parser.add_argument("--quant-variant", choices=list(QUANT), help=argparse.SUPPRESS)  # a child run
    parser.add_argument("--train-file", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        result = run_variant(args.variant, args.train_file, args.out, args.steps, args.batch, args.max_length)
        Path(args.out, "bench.json").write_text(json.dumps(result))
        return
    if args.quant_variant:
        result = run_quant(args.quant_variant, args.train_file, args.out, args.steps, args.batch)
        Path(args.out).mkdir(parents=True, exist_ok=True)
        Path(args.out, "bench.json").write_text(json.dumps(result))
        return
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    key, bench = ("gpu", bench_gpu) if args.gpu else ("qlora_vs_lora", bench_qlora) if args.qlora else ("cpu", bench_cpu)
    results[key] = {**bench(args), "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
