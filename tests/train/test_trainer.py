"""Training end to end on the tiny random Llama: outputs, vLLM-loadable adapter, resume, errors.

Covers: train/resume.py, judge/core/outdir.py."""

import json
import os
from pathlib import Path

import pytest
import torch

from judge.backends.adapters import adapter_rank, adapter_template, read_adapter_info
from judge.backends.hf import HFBackend
from judge.cli import main
from judge.core.errors import ConfigError
from judge.core.jsonl import read_items
from judge.core.manifest import file_sha256
from judge.core.records import Verdict
from judge.scoring.judging import judge_items
from judge.templates import get_template
from train.config import load_config
from train.judge_eval import judge_metrics
from train.trainer import train


@pytest.fixture(scope="module")
def trained(overrides_for, tmp_path_factory):
    """One 4-step run shared by the tests that only read its outputs: (overrides, config, summary)."""
    overrides = overrides_for(tmp_path_factory.mktemp("trained") / "run")
    config = load_config(None, overrides)
    return overrides, config, train(config)


def test_training_writes_a_servable_adapter_log_manifest_and_plot(trained, tiny_llama_path, synthetic_data):
    _, config, summary = trained
    out = config.output_dir
    adapter = f"{out}/adapter"
    assert summary["steps"] == 4 and summary["world_size"] == 1 and summary["resumed_from"] is None

    from safetensors.torch import load_file

    weights = load_file(f"{adapter}/adapter_model.safetensors")
    assert weights and all("lora_A" in k or "lora_B" in k for k in weights)  # no embeddings, no lm_head
    assert any(w.abs().sum() > 0 for k, w in weights.items() if "lora_B" in k)  # B starts at zero: it trained
    assert json.load(open(f"{adapter}/adapter_config.json"))["modules_to_save"] is None
    assert adapter_template(adapter) == "pandalm@1" and adapter_rank(adapter) == 4
    info = read_adapter_info(adapter)
    assert info.base_model == str(tiny_llama_path) and info.mode == "pairwise"
    assert info.train_data_sha256 == file_sha256(config.train_file)
    assert info.best_metric["name"] == "accuracy" and info.best_metric["step"] in (2, 4)

    rows = [json.loads(line) for line in open(f"{out}/train_log.jsonl")]
    steps = [r for r in rows if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2, 3, 4]
    assert all(r["lr"] > 0 and r["tokens_per_s"] > 0 for r in steps)
    assert [r["step"] for r in rows if "eval_accuracy" in r] == [2, 4]
    assert all(0 <= r["eval_accuracy"] <= 1 and "eval_consistency" in r for r in rows if "eval_accuracy" in r)
    manifest = json.load(open(f"{out}/manifest.json"))
    assert manifest["stage"] == "train" and manifest["counts"]["train"]["kept"] == 24
    assert open(f"{out}/train_log.png", "rb").read(4) == b"\x89PNG"

    items = read_items(synthetic_data / "test.jsonl")
    verdicts = judge_items(items, get_template("pandalm"), HFBackend(tiny_llama_path, adapter=adapter), mode="verdict")
    assert all(v.parse_ok for v in verdicts)


def test_a_rerun_resumes_from_the_last_checkpoint(trained, tmp_path):
    import shutil

    overrides, config, _ = trained
    run = tmp_path / "run"
    shutil.copytree(config.output_dir, run)
    shutil.rmtree(run / "checkpoint-4")  # as if killed after step 4's log, before its checkpoint
    summary = train(load_config(None, [o for o in overrides if not o.startswith("output_dir")] + [f"output_dir={run}"]))
    assert summary["resumed_from"].endswith("checkpoint-2") and summary["steps"] == 4
    rows = [json.loads(line) for line in open(run / "train_log.jsonl")]
    assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3, 4]  # steps 3-4 were redone, logged once


def test_a_missing_base_model_exits_2_naming_it(tiny_overrides, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "c.yaml").write_text("template: pandalm\n")
    sets = [s for s in tiny_overrides if not s.startswith("base_model")] + [f"base_model={tmp_path / 'nowhere'}"]
    code = main(["train", "--config", str(tmp_path / "c.yaml"), *[a for s in sets for a in ("--set", s)]])
    assert code == 2 and f"{tmp_path / 'nowhere'} does not exist" in capsys.readouterr().err


def test_merged_model_gives_the_adapter_logits(trained, tiny_llama_path, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    _, config, _ = trained
    adapter, merged = f"{config.output_dir}/adapter", tmp_path / "merged"
    assert main(["merge", "--model", str(tiny_llama_path), "--adapter", adapter, "--out", str(merged),
                 "--dtype", "float32"]) == 0  # float32: exact to float error (auto may pick bfloat16)
    ids = torch.tensor([list(range(100, 140))])
    with torch.no_grad():
        peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float32), adapter)
        plain = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32)
        torch.testing.assert_close(plain(ids).logits, peft(ids).logits, atol=1e-4, rtol=1e-4)
    assert read_adapter_info(merged).merged_from == adapter and (merged / "tokenizer.json").exists()


def test_pointwise_judge_metrics_are_correlations():
    from judge.core.records import TrainRow

    rows = [TrainRow(id=str(i), mode="pointwise", template="rag-relevancy@1", template_hash=None, order="ab",
                     messages=[], scores=[float(s)]) for i, s in enumerate([1, 2, 3, 4, 5])]
    verdicts = [Verdict(id=str(i), scores=[float(s)], parse_ok=True) for i, s in enumerate([1, 3, 2, 4, 5])]
    verdicts[0].parse_ok = False
    metrics = judge_metrics("pointwise", rows, verdicts)
    assert metrics["parse_failure_rate"] == 0.2 and 0 < metrics["spearman"] < 1 and "kendall" in metrics
    constant = [Verdict(id=str(i), scores=[3.0], parse_ok=True) for i in range(5)]
    assert judge_metrics("pointwise", rows, constant)["pearson"] == 0.0  # undefined: ranks nothing


def copy_of(trained, tmp_path):
    """A copy of the shared 4-step run, and the overrides that point at it."""
    import shutil

    overrides, config, _ = trained
    run = tmp_path / "run"
    shutil.copytree(config.output_dir, run)
    return run, [o for o in overrides if not o.startswith("output_dir")] + [f"output_dir={run}"]


def cli_train(tmp_path, overrides, *extra):
    (tmp_path / "c.yaml").write_text("template: pandalm\n")
    return main(["train", "--config", str(tmp_path / "c.yaml"), *[a for s in overrides for a in ("--set", s)], *extra])


def test_another_config_is_not_resumed_and_the_refusal_names_it(trained, tmp_path, capsys):
    run, overrides = copy_of(trained, tmp_path)
    before = sorted(p.name for p in run.iterdir())
    assert cli_train(tmp_path, overrides + ["learning_rate=5e-4", "lora.r=8"]) == 2
    err = capsys.readouterr().err
    assert "holds a run with another config or data (learning_rate 0.001 -> 0.0005; lora_r 4 -> 8)" in err
    assert "--fresh to start over" in err and sorted(p.name for p in run.iterdir()) == before


def test_other_data_is_not_resumed(trained, tmp_path, synthetic_data):
    run, overrides = copy_of(trained, tmp_path)
    lines = (synthetic_data / "train.jsonl").read_text().splitlines(keepends=True)
    (tmp_path / "train.jsonl").write_text("".join(lines[:-1]))  # one row fewer, same name
    with pytest.raises(ConfigError, match=r"another config or data \(train_file content \(sha256 \w{12} -> \w{12}\)\)"):
        train(load_config(None, overrides + [f"train_file={tmp_path / 'train.jsonl'}"]))
    (run / "run.json").unlink()  # checkpoints nobody can vouch for
    with pytest.raises(ConfigError, match="holds checkpoints but no readable run.json"):
        train(load_config(None, overrides))


def test_fresh_starts_over_with_the_new_config(trained, tmp_path, capsys):
    run, overrides = copy_of(trained, tmp_path)
    assert cli_train(tmp_path, overrides + ["learning_rate=5e-4", "max_steps=2"], "--fresh") == 0
    assert "adapter:" in capsys.readouterr().out and not (run / "checkpoint-4").exists()
    rows = [json.loads(line) for line in open(run / "train_log.jsonl")]
    assert [r["step"] for r in rows if "loss" in r] == [1, 2]  # the old run's log is gone with it
    assert json.loads((run / "run.json").read_text())["config"]["learning_rate"] == 5e-4
    assert json.loads((run / "manifest.json").read_text())["summary"]["resumed_from"] is None


@pytest.mark.parametrize("damage,why", [("no trainer_state.json", "no trainer_state.json"),
                                        ("torn weights", "adapter_model.safetensors is unreadable")])
def test_a_half_written_checkpoint_is_skipped(trained, tmp_path, damage, why):
    run, overrides = copy_of(trained, tmp_path)
    if damage == "no trainer_state.json":
        (run / "checkpoint-4" / "trainer_state.json").unlink()
    else:
        weights = run / "checkpoint-4" / "adapter_model.safetensors"
        weights.write_bytes(weights.read_bytes()[:-100])
    summary = train(load_config(None, overrides))
    assert summary["resumed_from"].endswith("checkpoint-2") and summary["steps"] == 4
    assert list(summary["skipped_checkpoints"]) == ["checkpoint-4"]
    assert summary["skipped_checkpoints"]["checkpoint-4"].startswith(why)
    rows = [json.loads(line) for line in open(run / "train_log.jsonl")]
    assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3, 4]
    assert json.load(open(run / "checkpoint-4" / "trainer_state.json"))["global_step"] == 4  # saved again, whole


def test_a_crash_while_saving_the_adapter_leaves_no_partial_adapter(tiny_overrides, monkeypatch):
    import train.trainer as trainer_module

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(trainer_module, "write_adapter_info", crash)  # after the weights are written
    config = load_config(None, tiny_overrides + ["max_steps=2"])
    with pytest.raises(OSError, match="disk full"):
        train(config)
    out = Path(config.output_dir)
    assert (out / "checkpoint-2").is_dir() and not (out / "adapter").exists()
    assert not [p.name for p in out.iterdir() if "adapter" in p.name]


def test_a_second_train_into_the_same_output_dir_exits_2(tiny_overrides, tmp_path, capsys):
    from judge.core.runlock import RunLock

    out = next(o for o in tiny_overrides if o.startswith("output_dir=")).split("=", 1)[1]
    with RunLock(Path(out) / ".lock", what="a first train"):
        assert cli_train(tmp_path, tiny_overrides) == 2
    err = capsys.readouterr().err
    assert f"another judgeforge run (pid {os.getpid()}) is writing train output_dir {out}" in err
    assert not list(Path(out).glob("checkpoint-*"))


def test_a_crash_while_merging_leaves_the_previous_merged_model(trained, tiny_llama_path, tmp_path, monkeypatch):
    from judge.backends import models as merging

    _, config, _ = trained
    adapter, merged = f"{config.output_dir}/adapter", tmp_path / "merged"

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(merging, "write_adapter_info", crash)  # after the weights and tokenizer
    with pytest.raises(OSError, match="disk full"):
        merging.merge(str(tiny_llama_path), adapter, str(merged))
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    merging.merge(str(tiny_llama_path), adapter, str(merged))
    before = {p.name: p.read_bytes() for p in merged.iterdir()}
    monkeypatch.setattr(merging, "write_adapter_info", crash)
    with pytest.raises(OSError, match="disk full"):
        merging.merge(str(tiny_llama_path), adapter, str(merged), dtype="bfloat16")
    assert {p.name: p.read_bytes() for p in merged.iterdir()} == before and list(tmp_path.iterdir()) == [merged]
    with pytest.raises(ConfigError, match="is the base folder"):
        merging.merge(str(tiny_llama_path), adapter, str(tiny_llama_path))
