"""TrainConfig: YAML + --set precedence, typed values, unknown keys, checks that say how to fix.

Covers: train/config.py."""

from pathlib import Path

import pytest

from judge.core.errors import ConfigError, InputError
from train.config import load_config

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "configs" / "train").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_configs_load(path):
    import torch

    # a paged optimizer (the QLoRA config's) is refused without a GPU: tests/train/test_qlora.py
    cpu = ["optim=adamw_8bit"] if "optim: paged_" in path.read_text() and not torch.cuda.is_available() else []
    config = load_config(path, ["output_dir=x", *cpu])
    assert config.base_model and config.template and config.train_file
    assert "lm_head" not in config.lora_target_modules


def test_precedence_defaults_yaml_set(tmp_path):
    yaml = tmp_path / "c.yaml"
    yaml.write_text("base_model: m\ntemplate: judgelm\ntrain_file: t.jsonl\noutput_dir: o\n"
                    "learning_rate: 5e-4\nlora:\n  r: 8\n  alpha: 16\n")
    config = load_config(yaml, ["lora.alpha=64", "lora_target_modules=q_proj,v_proj", "bf16=no", "max_steps=7",
                                "save_strategy=no"])
    assert config.save_strategy == "no" and config.bf16 is False  # YAML 1.2 booleans: "no" stays a word
    assert config.learning_rate == 5e-4  # PyYAML reads 5e-4 as a string: converted to the field's float
    assert (config.lora_r, config.lora_alpha) == (8, 64)  # YAML, then --set over it
    assert config.lora_target_modules == ["q_proj", "v_proj"]
    assert config.max_steps == 7 and config.lora_dropout == 0.05  # default kept
    assert config.metric_for_best_model == "accuracy" and config.greater_is_better


def test_pointwise_template_picks_pearson_by_default():
    config = load_config(None, ["base_model=m", "template=prometheus-absolute", "train_file=t", "output_dir=o"])
    assert config.metric_for_best_model == "pearson"


@pytest.mark.parametrize("overrides,match", [
    (["lora_rank=8"], r"unknown key 'lora_rank'; did you mean .*lora_r.*valid keys: .*base_model"),
    (["lora.rank=8"], r"unknown key 'lora_rank'"),
    (["max_steps=lots"], r"max_steps expects int, got 'lots'"),
    (["template=nope"], r"unknown template 'nope'"),
    (["quantization=2bit"], r"quantization must be one of none, 4bit, 8bit"),
    (["lora_target_modules=q_proj,lm_head"], r"lm_head.*vLLM cannot serve"),
    (["metric_for_best_model=pearson"], r"pairwise template must be one of accuracy"),
    (["val_file=v.jsonl", "eval_steps=20", "save_steps=30"], r"save_steps \(30\) must be a multiple of eval_steps \(20\)"),
    (["lora.dropout=1.5"], r"lora_dropout"),
    (["no_equals"], r"--set expects key=value"),
])
def test_bad_settings_say_how_to_fix(overrides, match):
    base = ["base_model=m", "template=judgelm", "train_file=t", "output_dir=o"]
    with pytest.raises(ConfigError, match=match):
        load_config(None, base + overrides)


def test_missing_required_key_names_it():
    with pytest.raises(ConfigError, match=r"base_model is not set: add `base_model: \.\.\.` to the YAML"):
        load_config(None, ["template=judgelm", "train_file=t", "output_dir=o"])


def test_bad_yaml_names_file_and_line(tmp_path):
    yaml = tmp_path / "bad.yaml"
    yaml.write_text("base_model: m\nlora: [1, 2\n")
    with pytest.raises(InputError, match=r"bad.yaml:\d+: malformed YAML"):
        load_config(yaml)
    with pytest.raises(InputError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")


ACCELERATE = sorted((ROOT / "configs" / "accelerate").glob("*.yaml"))


@pytest.mark.parametrize("path", ACCELERATE, ids=[p.stem for p in ACCELERATE])
def test_accelerate_configs_parse(path):
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(path))
    assert config.num_processes >= 1 and config.mixed_precision == "bf16"


@pytest.mark.parametrize("sets,flags,dtype,why", [
    ([], {"avx2"}, "float32", "auto: this CPU has no native bfloat16"),
    ([], {"avx2", "avx512_bf16"}, "bfloat16", "auto: this CPU computes bfloat16 natively"),
    (["bf16=false"], {"avx512_bf16"}, "float32", "asked for"),  # an explicit bf16: false is float32, 4-bit compute too
    (["bf16=true"], {"avx2"}, "bfloat16", "asked for"),
    (["dtype=float16"], {"avx512_bf16"}, "float16", "asked for"),
])
def test_the_training_dtype_is_the_config_s_else_the_one_rule(monkeypatch, sets, flags, dtype, why):
    from judge.backends import dtype as rule

    monkeypatch.setattr(rule, "cpu_flags", lambda path="/proc/cpuinfo": flags)
    monkeypatch.setattr("train.config._cuda", lambda: False)
    config = load_config(None, ["base_model=m", "template=judgelm", "train_file=t", "output_dir=o", *sets])
    assert config.dtype_choice.dtype == config.model_dtype == dtype and why in config.dtype_choice.reason
