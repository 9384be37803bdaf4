"""QLoRA on the CPU through the real bitsandbytes path: SmolLM2-135M quantized to 4-bit nf4 (double
quant, float32 compute: the smoke config's `bf16: false`) trains a few steps on the synthetic task;
its LoRA gradients agree with those of the same weights dequantized into float32; the adapter
records its 4-bit base; `score --backend hf` judges with it on the full-precision base and on the
4-bit base; `merge` folds it into the full-precision base exactly. One trained adapter serves all.

Covers: judge/backends/quantization.py."""

import json
from pathlib import Path

import pytest
import torch

from judge.backends.adapters import read_adapter_info
from judge.cli import main
from judge.core.errors import ConfigError
from judge.core.jsonl import read_items, write_jsonl
from train.config import load_config
from train.trainer import train

ROOT = Path(__file__).resolve().parents[2]
SYNTHETIC = ROOT / "examples" / "synthetic"

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def qlora(smollm2_path, tmp_path_factory):
    """(config, summary): 8 QLoRA steps of SmolLM2 on the shipped synthetic rows (~1 min on 2 cores)."""
    out = tmp_path_factory.mktemp("qlora") / "run"
    config = load_config(ROOT / "configs" / "train" / "smoke-cpu.yaml", [
        f"base_model={smollm2_path}", f"train_file={SYNTHETIC / 'train.jsonl'}", "val_file=", f"output_dir={out}",
        "quantization=4bit", "max_steps=8", "per_device_train_batch_size=4", "logging_steps=1", "warmup_steps=0",
        "learning_rate=1e-3", "save_strategy=no", "lora.dropout=0", "disable_tqdm=true"])
    return config, train(config)


def test_qlora_trains_on_the_cpu_and_the_adapter_records_its_4bit_base(qlora):
    from safetensors.torch import load_file

    config, summary = qlora
    out = Path(config.output_dir)
    weights = load_file(out / "adapter" / "adapter_model.safetensors")
    assert any(w.abs().sum() > 0 for k, w in weights.items() if "lora_B" in k)  # B starts at zero: it trained
    losses = [row["loss"] for row in map(json.loads, open(out / "train_log.jsonl")) if "loss" in row]
    assert len(losses) == 8 and sum(losses[-3:]) / 3 < sum(losses[:3]) / 3, losses
    info = read_adapter_info(out / "adapter")
    assert info.quantization == "4bit"
    assert info.quantization_config == {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4",
                                        "bnb_4bit_use_double_quant": True, "bnb_4bit_compute_dtype": "float32"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["dtype"]["dtype"] == "float32" and manifest["dtype"]["requested"] == "float32"


def test_lora_gradients_match_a_dequantized_float32_reference(qlora, smollm2_path):
    """The same batch, the same adapter: once through bitsandbytes' 4-bit layers, once through plain
    float32 Linear layers holding the dequantized 4-bit weights."""
    import bitsandbytes as bnb
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from judge.backends.quantization import bnb_config, quantization_record

    config, _ = qlora
    base = AutoModelForCausalLM.from_pretrained(smollm2_path, dtype=torch.float32, device_map={"": "cpu"},
                                                quantization_config=bnb_config(quantization_record("4bit", "float32")))
    model = PeftModel.from_pretrained(base, Path(config.output_dir) / "adapter", is_trainable=True)
    model.train()  # the training path: in eval mode bitsandbytes repacks the 4-bit weights for its CPU inference kernel
    tokenizer = AutoTokenizer.from_pretrained(smollm2_path)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    rows = [json.loads(line) for line in open(SYNTHETIC / "train.jsonl")][:2]
    batch = tokenizer([r["messages"][0]["content"] + r["messages"][1]["content"] for r in rows], return_tensors="pt",
                      padding=True)

    def lora_grads() -> torch.Tensor:
        model.zero_grad()
        model(**batch, labels=batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)).loss.backward()
        return torch.cat([p.grad.flatten() for n, p in model.named_parameters() if "lora_" in n])

    quantized = lora_grads()
    swapped = 0
    for module in model.modules():
        layer = getattr(module, "base_layer", None)
        if isinstance(layer, bnb.nn.Linear4bit):
            plain = torch.nn.Linear(layer.in_features, layer.out_features, bias=False)
            plain.weight = torch.nn.Parameter(bnb.functional.dequantize_4bit(layer.weight.data, layer.weight.quant_state)
                                              .float(), requires_grad=False)
            module.base_layer = plain
            swapped += 1
    assert swapped == 30 * 7  # every adapted projection of the 30 layers
    reference = lora_grads()
    cosine = torch.nn.functional.cosine_similarity(quantized, reference, dim=0).item()
    assert quantized.norm() > 0 and cosine >= 0.999, cosine


@pytest.fixture(scope="module")
def items(tmp_path_factory):
    path = tmp_path_factory.mktemp("items") / "test.jsonl"
    write_jsonl(path, read_items(str(SYNTHETIC / "test.jsonl"))[:3])
    return path


@pytest.mark.parametrize("four_bit", [False, True], ids=["full-precision base", "4-bit base"])
def test_score_judges_with_the_qlora_adapter(qlora, smollm2_path, items, tmp_path, four_bit):
    from judge.backends.dtype import choose_dtype

    adapter = Path(qlora[0].output_dir) / "adapter"
    out = tmp_path / "pred.jsonl"
    assert main(["score", "--input", str(items), "--backend", "hf", "--model", str(smollm2_path), "--adapter",
                 str(adapter), "--mode", "verdict", "--swap", "--out", str(out),
                 *(["--load-in-4bit"] if four_bit else [])]) == 0
    verdicts = [json.loads(line) for line in open(out)]
    assert len(verdicts) == 6 and all(v["parse_ok"] and v["winner"] in ("1", "2", "tie") for v in verdicts)
    manifest = json.loads((tmp_path / "pred.manifest.json").read_text())
    assert manifest["dtype"] == choose_dtype("auto", "cpu").as_dict()  # the rule, on this machine's flags
    assert manifest["config"]["load_in_4bit"] is four_bit


def test_merge_folds_the_qlora_adapter_into_the_full_precision_base(qlora, smollm2_path, tmp_path, capsys):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    adapter, merged = Path(qlora[0].output_dir) / "adapter", tmp_path / "merged"
    assert main(["merge", "--model", str(smollm2_path), "--adapter", str(adapter), "--out", str(merged),
                 "--dtype", "float32"]) == 0  # float32: the comparison is exact to float error only there
    assert "QLoRA adapter (trained on a 4bit base): merging it into the full-precision base" in capsys.readouterr().out
    ids = torch.tensor([list(range(1000, 1048))])
    with torch.no_grad():
        full = AutoModelForCausalLM.from_pretrained(smollm2_path, dtype=torch.float32)
        on_full_base = PeftModel.from_pretrained(full, adapter)(ids).logits
        plain = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32)(ids).logits
    torch.testing.assert_close(plain, on_full_base, atol=1e-3, rtol=0)
    assert read_adapter_info(merged).quantization == "4bit"  # where it came from stays recorded


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU refusal")
def test_a_paged_optimizer_is_refused_on_the_cpu_naming_the_one_to_use():
    with pytest.raises(ConfigError, match=r"optim: paged_adamw_8bit .* use optim: adamw_8bit on the CPU"):
        load_config(ROOT / "configs" / "train" / "judgelm-7b-qlora.yaml", ["output_dir=x"])
    assert load_config(ROOT / "configs" / "train" / "judgelm-7b-qlora.yaml",
                       ["output_dir=x", "optim=adamw_8bit"]).optim == "adamw_8bit"


def test_8bit_trains_on_the_cpu_too(tiny_overrides):
    summary = train(load_config(None, tiny_overrides + ["quantization=8bit", "max_steps=2", "val_file=",
                                                        "save_strategy=no"]))
    assert summary["steps"] == 2
    assert read_adapter_info(summary["adapter"]).quantization_config == {"load_in_8bit": True}


def test_an_evaluation_pass_leaves_every_lora_layer_its_gradient(tiny_overrides):
    """bitsandbytes repacks 4-bit weights for a CPU inference kernel (on AVX512-BF16 CPUs) the first time
    a layer runs in eval mode; that kernel passes no gradient back. After the judge-aware evaluation
    (eval mode, no gradients), every LoRA layer must still get its gradient."""
    from train.trainer import load_base

    model = load_base(load_config(None, tiny_overrides + ["quantization=4bit"]))
    ids = torch.tensor([list(range(100, 132))])
    model.eval()
    with torch.inference_mode():
        model(input_ids=ids)
    model.train()
    model(input_ids=ids, labels=ids).loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if "lora_B" in n}
    assert len(grads) == 2 * 7 and all(g is not None and g.abs().sum() > 0 for g in grads.values())
