"""`judgeforge train`: LoRA (or QLoRA) fine-tuning of a judge with transformers' Trainer and peft.

The loss covers the reply tokens only (train.data); batches group rows of similar length and pad to
their longest row; every eval_steps the live model judges a sample of val rows (train.judge_eval)
and the best adapter by `metric_for_best_model` is kept. A rerun resumes from the last complete
checkpoint, only with the same config and data (train.resume); one run at a time per output_dir (a
lock); the adapter folder is built beside its place and renamed into it once complete.
The same code runs on one CPU, one GPU, or many through `accelerate launch` (DDP, DeepSpeed, FSDP).

OUTPUT_DIR/adapter/ (PEFT adapter + tokenizer + judgeforge.json), checkpoint-N/, train_log.jsonl,
train_log.png, manifest.json, run.json (what the checkpoints were trained with).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from transformers import DataCollatorForSeq2Seq, Trainer, TrainerCallback

from judge.backends.adapters import AdapterInfo, write_adapter_info
from judge.backends.models import load_model, load_tokenizer
from judge.backends.quantization import bnb_config, check_bitsandbytes, quantization_record
from judge.core.jsonl import AppendLog, write_jsonl
from judge.core.manifest import file_sha256, write_manifest
from judge.core.outdir import staged_dir
from judge.core.runlock import RunLock

from train.config import TrainConfig
from train.data import IGNORE, TrainData, load_data, to_dataset
from train.judge_eval import JudgeEval, sample_rows
from train.resume import prepare_resume

LOG_FILE, PLOT_FILE = "train_log.jsonl", "train_log.png"


class JudgeTrainer(Trainer):
    """Trainer whose evaluation adds the judge metrics (eval_accuracy, eval_pearson, ...) to the
    eval loss, so `metric_for_best_model` can pick checkpoints by how well the model judges."""

    def __init__(self, *args, judge_eval: JudgeEval | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.judge_eval = judge_eval

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        metrics = super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        if self.judge_eval is not None:
            judged = {f"{metric_key_prefix}_{k}": v for k, v in self.judge_eval(self.model, self.processing_class).items()}
            self.log(judged)
            metrics.update(judged)
        return metrics


class TrainLog(TrainerCallback):
    """train_log.jsonl: one row per log event (step, loss, lr, tokens/s) and per evaluation."""

    def __init__(self, path: Path):
        self.log = AppendLog(path)
        self.last = (time.monotonic(), 0)

    def on_train_begin(self, args, state, control, **kwargs):
        self.last = (time.monotonic(), state.num_input_tokens_seen or 0)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        row = {"step": state.global_step, "epoch": round(state.epoch or 0, 4)}
        for key, value in logs.items():
            row["lr" if key == "learning_rate" else key] = value
        if "loss" in logs:
            now, tokens = time.monotonic(), state.num_input_tokens_seen or 0
            row["tokens_per_s"] = round((tokens - self.last[1]) / max(now - self.last[0], 1e-9), 2)
            self.last = (now, tokens)
        self.log.append([row])

    def on_train_end(self, args, state, control, **kwargs):
        self.log.close()


def make_collator(tokenizer, pad_to: int | None = None):
    """Pads each batch to its longest row (or to `pad_to`, for comparison); labels padded with IGNORE."""
    return DataCollatorForSeq2Seq(tokenizer, padding="max_length" if pad_to else True, max_length=pad_to,
                                  label_pad_token_id=IGNORE)


def load_base(config: TrainConfig):
    """The base model (quantized for QLoRA) with fresh LoRA adapters on `lora_target_modules`."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    kwargs = {}
    choice = config.dtype_choice
    if config.quantization != "none":
        from accelerate import PartialState

        device = "cpu" if config.use_cpu else PartialState().local_process_index  # a whole quantized copy per DDP rank
        check_bitsandbytes(config.quantization, "cpu" if config.use_cpu else "cuda")
        kwargs["quantization_config"] = bnb_config(quantization_record(config.quantization, choice.dtype))
        kwargs["device_map"] = {"": device}
    model = load_model(config.base_model, dtype=choice.dtype, **kwargs)
    model.config.use_cache = False  # no KV cache while training (and with gradient checkpointing)
    if config.quantization != "none":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=config.gradient_checkpointing,
                                                gradient_checkpointing_kwargs=config.gradient_checkpointing_kwargs)
        keep_trainable_layout(model)
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=config.lora_target_modules, bias="none", task_type="CAUSAL_LM")
    return get_peft_model(model, lora)


def keep_trainable_layout(model) -> None:
    """bitsandbytes (0.50) repacks a 4-bit layer's weights for its CPU inference kernel the first time
    the layer runs in eval mode without gradients (the judge-aware evaluation) on a CPU with
    AVX512-BF16; that kernel passes no gradient to its input, so every later training step would
    silently lose the gradients of all LoRA layers below the last. Training keeps the trainable layout."""
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False


def build_trainer(config: TrainConfig, *, pad_to: int | None = None,
                  callbacks: list[TrainerCallback] = ()) -> tuple[JudgeTrainer, TrainData]:
    tokenizer = load_tokenizer(config.base_model)
    if config.process_index == 0:
        print(f"train: {config.dtype_choice}")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token  # never add a token: vLLM loads no resized embeddings
    data = load_data(config, tokenizer)
    if config.process_index == 0:
        for name, counts in data.counts.items():
            print(f"{name}: {counts['kept']} of {counts['rows']} rows kept; {counts['too_long']} longer than "
                  f"max_length {config.max_length} dropped (longest {counts['longest_tokens']} tokens)")
    judge_eval = None
    if data.val:
        rows = sample_rows(data.val.rows, config.eval_samples, config.seed)
        judge_eval = JudgeEval(data.template, rows, config.eval_mode, config.per_device_eval_batch_size)
    trainer = JudgeTrainer(
        model=load_base(config), args=config, train_dataset=to_dataset(data.train),
        eval_dataset=to_dataset(data.val) if data.val else None, data_collator=make_collator(tokenizer, pad_to),
        processing_class=tokenizer, callbacks=[TrainLog(Path(config.output_dir) / LOG_FILE), *callbacks],
        judge_eval=judge_eval,
    )
    return trainer, data


def train(config: TrainConfig, callbacks: list[TrainerCallback] = (), *, fresh: bool = False) -> dict:
    """Train (or resume), then write OUTPUT_DIR/adapter/, manifest.json and the plot; returns a summary.
    `callbacks` are extra TrainerCallbacks (early stopping, experiment trackers, tests); `fresh`
    deletes the checkpoints of an earlier run instead of resuming it. Raises ConfigError while
    another run trains into OUTPUT_DIR, or when its checkpoints were made with another config or data."""
    out = Path(config.output_dir)
    main = config.process_index == 0  # the one process that locks, writes and removes
    lock = RunLock(out / ".lock", what=f"train output_dir {out}") if main else contextlib.nullcontext()
    with lock:
        return _train(config, callbacks, fresh=fresh, main=main)


def _train(config: TrainConfig, callbacks, *, fresh: bool, main: bool) -> dict:
    out = Path(config.output_dir)
    resume, skipped = prepare_resume(config, fresh=fresh, main=main)
    trainer, data = build_trainer(config, callbacks=callbacks)
    if main:
        _trim_log(out / LOG_FILE, _step_of(resume) or 0)  # steps after the checkpoint are redone
    started = time.time()
    trainer.train(resume_from_checkpoint=resume)
    state = trainer.state
    best = None
    if state.best_metric is not None:
        best = {"name": config.metric_for_best_model, "value": state.best_metric,
                "checkpoint": state.best_model_checkpoint, "step": _step_of(state.best_model_checkpoint)}
    adapter = out / "adapter"
    with staged_dir(adapter, owner=trainer.is_world_process_zero()) as staging:
        trainer.save_model(str(staging))  # PEFT adapter + tokenizer; gathers sharded weights where needed
        if trainer.is_world_process_zero():
            _write_adapter_info(config, data, staging, best)
    summary = {"adapter": str(adapter), "best_metric": best, "counts": data.counts, "steps": state.global_step,
               "resumed_from": resume, "skipped_checkpoints": skipped,
               "distributed_type": trainer.accelerator.distributed_type.value,
               "world_size": trainer.accelerator.num_processes, "seconds": round(time.time() - started, 1)}
    if trainer.is_world_process_zero():
        write_manifest(out, "train", config=config.to_dict(),
                       inputs={"train": config.train_file, **({"val": config.val_file} if config.val_file else {})},
                       counts={**data.counts, "steps": state.global_step}, summary=summary,
                       dtype=config.dtype_choice.as_dict())
        plot_log(out / LOG_FILE, out / PLOT_FILE, config.metric_for_best_model)
    return summary


def _step_of(checkpoint: str | None) -> int | None:
    return int(checkpoint.rsplit("-", 1)[1]) if checkpoint else None


def _trim_log(path: Path, step: int) -> None:
    if path.exists():
        write_jsonl(path, [row for row in AppendLog(path).rows() if row.get("step", 0) <= step])


def _write_adapter_info(config: TrainConfig, data: TrainData, adapter: Path, best: dict | None) -> None:
    write_adapter_info(adapter, AdapterInfo(
        template=data.template.key, template_hash=data.template.text_hash, mode=data.template.mode,
        base_model=config.base_model, train_data_sha256=file_sha256(config.train_file),
        val_data_sha256=file_sha256(config.val_file) if config.val_file else None, best_metric=best,
        lora={"r": config.lora_r, "alpha": config.lora_alpha, "dropout": config.lora_dropout,
              "target_modules": list(config.lora_target_modules)},
        quantization=config.quantization,
        quantization_config=quantization_record(config.quantization, config.model_dtype),
    ))


def plot_log(log_path: Path, png: Path, metric: str) -> None:
    """Training loss, eval loss and the judge metric against the step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = AppendLog(log_path).rows()
    fig, ax = plt.subplots(figsize=(7, 4))
    for key, style in (("loss", "-"), ("eval_loss", "--")):
        points = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
        if points:
            ax.plot(*zip(*points), style, label=key)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    key = f"eval_{metric}"
    points = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
    if points and metric != "loss":
        right = ax.twinx()
        right.plot(*zip(*points), "o-", color="tab:green", label=key)
        right.set_ylabel(key)
        right.legend(loc="upper right")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
