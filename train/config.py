"""TrainConfig: transformers' TrainingArguments plus the judge's own fields (base model, template,
data, LoRA, quantization, judge-aware evaluation), as trl's SFTConfig extends them. Loaded from
configs/train/NAME.yaml and `--set key=value` overrides: defaults < YAML < --set. Nested YAML
sections and dotted keys name flat fields joined by "_" (`lora: {r: 8}` and `--set lora.r=8` are
`lora_r`); values are converted to the field's type; unknown keys are errors listing the valid ones.
"""

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from transformers import TrainingArguments

from judge.backends.dtype import DTYPES, DtypeChoice, choose_dtype
from judge.core.configfile import flatten, read_yaml_mapping, yaml_loader
from judge.core.errors import ConfigError

PAIRWISE_METRICS = ["accuracy", "f1", "consistency", "loss"]  # accuracy = agreement with the target verdicts
POINTWISE_METRICS = ["pearson", "spearman", "kendall", "loss"]
ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
NOT_ADAPTABLE = ("lm_head", "embed_tokens")  # vLLM loads no LoRA (or modules_to_save) on these


@dataclass
class TrainConfig(TrainingArguments):
    base_model: str | None = field(default=None, metadata={"help": "base model folder (a hub id only when downloads are allowed)"})
    template: str | None = field(default=None, metadata={"help": "template name[@version]; must be the one the data was rendered with"})
    train_file: str | None = field(default=None, metadata={"help": "train.jsonl written by `judgeforge filter`"})
    val_file: str | None = field(default=None, metadata={"help": "val.jsonl: eval loss and judge-aware evaluation every eval_steps"})
    max_length: int = field(default=1024, metadata={"help": "rows longer than this many tokens are dropped and counted, never truncated"})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank (vLLM serves ranks up to --max-lora-rank, 512 at most)"})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling numerator (scale = alpha / r)"})
    lora_dropout: float = field(default=0.05, metadata={"help": "dropout on the LoRA input"})
    lora_target_modules: list[str] = field(default_factory=lambda: list(ALL_LINEAR),
                                           metadata={"help": "module names that get LoRA; never lm_head or embed_tokens"})
    quantization: str = field(default="none", metadata={"help": "base weights: none, 4bit (QLoRA: nf4, double quant, compute in "
                                                               "`dtype`) or 8bit; bitsandbytes, on GPU and CPU",
                                                       "choices": ["none", "4bit", "8bit"]})
    dtype: str = field(default="auto", metadata={
        "help": "base weights' dtype (and the 4-bit compute dtype): auto = bf16/fp16 when the config sets bf16 or fp16 "
                "(false: float32), else bfloat16 where the device computes it natively, float32 otherwise",
        "choices": list(DTYPES)})
    eval_samples: int = field(default=100, metadata={"help": "val items (with both their orders) judged at each evaluation; 0 = all"})
    eval_mode: str = field(default="verdict", metadata={"help": "how val verdicts are generated: verdict (constrained, always parses) or full (free text, parsed)",
                                                        "choices": ["verdict", "full"]})
    # TrainingArguments fields with defaults for judge training.
    output_dir: str | None = field(default=None, metadata={"help": "run folder: checkpoints, train_log.jsonl, manifest.json, adapter/"})
    learning_rate: float = field(default=2e-4, metadata={"help": "peak learning rate"})
    logging_steps: float = field(default=10, metadata={"help": "log loss, lr and tokens/s every N steps"})
    eval_steps: float | None = field(default=50, metadata={"help": "judge-aware evaluation every N steps (needs val_file)"})
    save_steps: float = field(default=50, metadata={"help": "checkpoint every N steps (a multiple of eval_steps)"})
    save_total_limit: int | None = field(default=2, metadata={"help": "checkpoints kept (the best one is always kept)"})
    train_sampling_strategy: str = field(default="group_by_length", metadata={
        "help": "group_by_length: batches of similar length, padded to their longest row", "choices": ["random", "sequential", "group_by_length"]})
    include_num_input_tokens_seen: str | bool = field(default="non_padding", metadata={"help": "count tokens for tokens/s"})
    prediction_loss_only: bool = field(default=True, metadata={"help": "eval loss only (verdicts are judged separately)"})
    ddp_find_unused_parameters: bool | None = field(default=False, metadata={"help": "LoRA uses every adapter parameter"})
    report_to: None | str | list[str] = field(default="none", metadata={"help": "wandb, tensorboard, ... or none"})

    def __post_init__(self):
        from judge.templates import get_template

        for name, value in (("base_model", self.base_model), ("template", self.template),
                            ("train_file", self.train_file), ("output_dir", self.output_dir)):
            if not value:
                raise ConfigError(f"{name} is not set: add `{name}: ...` to the YAML or pass --set {name}=...")
        inherited = {f.name for f in dataclasses.fields(TrainingArguments)}  # those check their own choices
        for f in dataclasses.fields(TrainConfig):
            choices = f.metadata.get("choices") if f.name not in inherited else None
            if choices and getattr(self, f.name) not in choices:
                raise ConfigError(f"{f.name} must be one of {', '.join(choices)}, got {getattr(self, f.name)!r}")
        mode = get_template(self.template).mode
        metrics = PAIRWISE_METRICS if mode == "pairwise" else POINTWISE_METRICS
        self.metric_for_best_model = (self.metric_for_best_model or metrics[0]).removeprefix("eval_")
        if self.metric_for_best_model not in metrics:
            raise ConfigError(f"metric_for_best_model for a {mode} template must be one of {', '.join(metrics)}, "
                              f"got {self.metric_for_best_model!r}")
        if self.lora_r < 1 or self.lora_alpha <= 0 or not 0 <= self.lora_dropout < 1:
            raise ConfigError("LoRA needs lora_r >= 1, lora_alpha > 0 and 0 <= lora_dropout < 1")
        bad = [m for m in self.lora_target_modules if m in NOT_ADAPTABLE]
        if bad:
            raise ConfigError(f"lora_target_modules includes {', '.join(bad)}: vLLM cannot serve LoRA on the embeddings "
                              f"or the LM head; remove them (e.g. lora_target_modules: [{', '.join(ALL_LINEAR)}])")
        if self.max_length < 16:
            raise ConfigError(f"max_length must be at least 16 tokens, got {self.max_length}")
        if self.eval_samples < 0:
            raise ConfigError(f"eval_samples must be 0 (all) or more, got {self.eval_samples}")
        if self.val_file:
            # Keep the best adapter by the judge metric: evaluate and save on the same step grid.
            self.eval_strategy, self.save_strategy, self.load_best_model_at_end = "steps", "steps", True
            if self.save_steps % self.eval_steps:
                raise ConfigError(f"save_steps ({self.save_steps:g}) must be a multiple of eval_steps ({self.eval_steps:g}) "
                                  f"so the best checkpoint is saved: e.g. --set save_steps={self.eval_steps:g}")
        else:
            self.eval_strategy, self.load_best_model_at_end = "no", False
        if not _cuda():
            self.use_cpu = True  # the only device here (and bf16 on CPU needs it said)
            _check_cpu_optimizer(self.optim)
        if self.gradient_checkpointing and self.gradient_checkpointing_kwargs is None:
            self.gradient_checkpointing_kwargs = {"use_reentrant": False}  # needs no input grads under LoRA
        try:
            super().__post_init__()
        except ValueError as e:
            raise ConfigError(f"training arguments: {e}") from None

    @property
    def mode(self) -> str:
        from judge.templates import get_template

        return get_template(self.template).mode

    @property
    def dtype_choice(self) -> DtypeChoice:
        """The dtype the base weights load in (and 4-bit layers compute in), and why: the one rule
        (judge.backends.dtype) unless the config names a dtype (`dtype`, or bf16/fp16, see load_config)."""
        if self.dtype == "auto" and (self.bf16 or self.fp16):
            name = "bfloat16" if self.bf16 else "float16"
            return DtypeChoice(name, "auto", _device(self), f"{'bf16' if self.bf16 else 'fp16'}: true in the config")
        return choose_dtype(self.dtype, _device(self))

    @property
    def model_dtype(self) -> str:
        return self.dtype_choice.dtype


# Paged optimizers page their state through CUDA unified memory; on the CPU bitsandbytes quietly
# drops the paging. Refused there, naming the same optimizer unpaged (bitsandbytes runs those on CPUs).
UNPAGED = {"paged_adamw_32bit": "adamw_torch", "paged_adamw_8bit": "adamw_8bit", "paged_lion_32bit": "lion_32bit",
           "paged_lion_8bit": "lion_8bit", "paged_ademamix_32bit": "ademamix", "paged_ademamix_8bit": "ademamix_8bit"}


def _check_cpu_optimizer(optim) -> None:
    name = getattr(optim, "value", optim)
    if name in UNPAGED:
        raise ConfigError(f"optim: {name} pages optimizer state through CUDA memory and there is no GPU here; use "
                          f"optim: {UNPAGED[name]} on the CPU (--set optim={UNPAGED[name]})")


def _device(config: TrainConfig) -> str:
    return "cpu" if config.use_cpu else "cuda"


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> TrainConfig:
    """TrainConfig from a YAML file and `key=value` overrides (dotted keys allowed)."""
    import yaml

    values: dict = {}
    if path is not None:
        values.update(flatten(read_yaml_mapping(path), str(path), TrainConfig))
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {item!r}")
        value = yaml.load(raw, Loader=yaml_loader()) if raw else ""
        values.update(flatten({key.strip().replace(".", "_"): value}, "--set", TrainConfig))
    if values.get("dtype", "auto") == "auto" and ("bf16" in values or "fp16" in values):
        # bf16/fp16 set in the config is an explicit choice: `bf16: false` trains (and computes 4-bit) in float32
        values["dtype"] = "bfloat16" if values.get("bf16") else "float16" if values.get("fp16") else "float32"
    return TrainConfig(**values)
