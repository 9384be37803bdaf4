"""The learning check on the real SmolLM2-135M (slow: a few minutes on 2 cores).

`judgeforge train --config configs/train/smoke-cpu.yaml` on the shipped synthetic task (the better
answer follows the format the question asks for; labels and positions balanced, so a constant
verdict scores 0.5) must raise held-out agreement, measured by `judgeforge score` + `judgeforge
eval` on 50 unseen items (every other test item: 25 with each winner), from about chance to at least
0.9. The adapter records its template, loads with peft, and its merged model gives the same logits
(fp32, 1e-3).

Covers: train/synthetic.py."""

import json
from pathlib import Path

import pytest
import torch

from judge.backends.adapters import adapter_template
from judge.cli import main
from judge.core.jsonl import read_items, write_jsonl

ROOT = Path(__file__).resolve().parents[2]
TEST_ITEMS = ROOT / "examples" / "synthetic" / "test.jsonl"

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def agreement(tmp: Path, name: str, model: Path, *adapter: str) -> float:
    pred, report, items = tmp / f"{name}.jsonl", tmp / f"{name}-eval", tmp / "test.jsonl"
    # no dtype: the auto rule (float32 on CPUs without native bf16, where bf16 runs at less than half the speed)
    assert main(["score", "--input", str(items), "--backend", "hf", "--model", str(model), *adapter,
                 "--mode", "verdict", "--out", str(pred),
                 *([] if adapter else ["--template", "pandalm"])]) == 0
    assert main(["eval", "--pred", str(pred), "--gold", str(items), "--out", str(report), "--no-plots",
                 "--bootstrap", "0"]) == 0
    return json.loads((report / "metrics.json").read_text())["accuracy"]


@pytest.fixture(scope="module")
def smoke_run(smollm2_path, tmp_path_factory, monkeypatch_module):
    monkeypatch_module.chdir(ROOT)  # the shipped config's paths are relative to the repository root
    monkeypatch_module.setenv("HF_HUB_OFFLINE", "1")
    tmp = tmp_path_factory.mktemp("learning")
    items = read_items(str(TEST_ITEMS))[::2]  # half the items judge as well: a constant verdict still scores 0.5
    assert sorted(item.winner for item in items) == ["1"] * 25 + ["2"] * 25
    write_jsonl(tmp / "test.jsonl", items)
    before = agreement(tmp, "before", smollm2_path)
    assert main(["train", "--config", "configs/train/smoke-cpu.yaml", "--set", f"output_dir={tmp / 'run'}",
                 "--set", f"base_model={smollm2_path}"]) == 0
    adapter = tmp / "run" / "adapter"
    return before, agreement(tmp, "after", smollm2_path, "--adapter", str(adapter)), adapter


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_training_raises_held_out_agreement_from_chance_to_090(smoke_run):
    before, after, _ = smoke_run
    print(f"held-out agreement: before {before:.3f}, after {after:.3f}")
    assert before <= 0.65 and after >= 0.9


def test_the_adapter_records_its_template_and_merges_exactly(smoke_run, smollm2_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    adapter = smoke_run[2]
    assert adapter_template(adapter) == "pandalm@1"
    ids = torch.tensor([list(range(1000, 1064))])
    with torch.no_grad():
        model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(smollm2_path, dtype=torch.float32), adapter)
        unmerged = model(ids).logits
        merged = model.merge_and_unload()(ids).logits
    torch.testing.assert_close(merged, unmerged, atol=1e-3, rtol=0)
