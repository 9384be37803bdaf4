"""`judgeforge serve` as a whole: what it starts for a configuration (adapters, templates, merged),
and the judge API fronting an upstream OpenAI-compatible server (the shipped fake one), without torch.

Covers: judge/backends/models.py, judge/client.py, serve/config.py."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fake_engine import judge_adapter

from judge.client import JudgeAPIError, JudgeClient
from judge.core.errors import ConfigError, JudgeforgeError
from judge.testing.fake_openai import FakeOpenAI
from serve.engine import ChildServer, free_port
from serve.server import ServeConfig, plan_engine, saved_dtype


def test_plan_names_judges_and_templates(tmp_path):
    base = tmp_path / "SmolLM"
    base.mkdir()
    path = judge_adapter(tmp_path / "j")
    engine_config, judges = plan_engine(ServeConfig(base=str(base), adapters={"j": path}, template="score-100"))
    assert engine_config.served_name == "SmolLM" and engine_config.adapters == {"j": path}
    assert [(j.name, j.parent, j.templates["pairwise"], j.templates["pointwise"]) for j in judges] == [
        ("SmolLM", None, "judgelm@1", "score-100@1"), ("j", "SmolLM", "pandalm@1", "score-100@1")]


@pytest.mark.parametrize("kwargs,message", [
    ({}, "--model is required"),
    ({"base": "m", "merged": True}, "exactly one --adapter"),
    ({"upstream": "http://x", "vllm_args": ["--enforce-eager"]}, "with --upstream"),
    ({"base": "m", "max_batch": 0}, "--max-batch"),
])
def test_bad_combinations_say_how_to_fix_them(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ServeConfig(**kwargs)


@pytest.fixture(scope="module")
def tiny_lora(tiny_llama_path, tmp_path_factory) -> Path:
    """A random (non-zero) LoRA adapter of the tiny Llama, which passes for a trained judge."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    lora = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_llama_path),
                          LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    path = tmp_path_factory.mktemp("lora") / "judge"
    lora.save_pretrained(path)
    judge_adapter(path)
    return path


def test_merged_serves_the_adapter_folded_into_the_base(tiny_lora, tiny_llama_path, tmp_path, monkeypatch):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    monkeypatch.setenv("JUDGEFORGE_CACHE", str(tmp_path / "cache"))
    config = ServeConfig(base=str(tiny_llama_path), adapters={"judge": str(tiny_lora)}, merged=True)

    engine_config, judges = plan_engine(config)
    assert (engine_config.served_name, engine_config.adapters) == ("judge", {})
    assert [(j.name, j.parent, j.templates["pairwise"]) for j in judges] == [("judge", None, "pandalm@1")]
    ids = torch.tensor([[1, 5, 9, 200, 7]])
    with torch.no_grad():
        merged = AutoModelForCausalLM.from_pretrained(engine_config.base)(ids).logits
        unmerged = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llama_path), tiny_lora)(ids).logits
    assert torch.allclose(merged, unmerged, atol=1e-4)
    made = (Path(engine_config.base) / "config.json").stat().st_mtime_ns
    again, _ = plan_engine(config)  # cached: the same folder, not merged again
    assert again.base == engine_config.base and (Path(again.base) / "config.json").stat().st_mtime_ns == made


def test_the_serving_process_merges_without_importing_torch(tiny_lora, tiny_llama_path, tmp_path):
    """The merge runs in a spawned child (`judge.backends.models.merge_in_child_process`): the process
    that goes on to serve gets the merged folder and has never imported torch."""
    script = ("import sys; from serve.server import merged_model; "
              f"out = merged_model({str(tiny_llama_path)!r}, {str(tiny_lora)!r}); "
              "print(out, sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "JUDGEFORGE_CACHE": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr
    folder, torch_modules = done.stdout.strip().splitlines()[-1].split(" ", 1)
    assert Path(folder).parent == tmp_path / "cache" / "merged" and (Path(folder) / "config.json").exists()
    assert torch_modules == "[]"


def test_an_adapter_that_cannot_be_merged_is_refused_with_the_child_s_reason(tiny_lora, tiny_llama_path, tmp_path,
                                                                              monkeypatch):
    monkeypatch.setenv("JUDGEFORGE_CACHE", str(tmp_path / "cache"))
    broken = tmp_path / "broken"
    shutil.copytree(tiny_lora, broken)
    (broken / "adapter_model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(JudgeforgeError, match=f"merging {re.escape(str(broken))} into .* failed: "):
        plan_engine(ServeConfig(base=str(tiny_llama_path), adapters={"judge": str(broken)}, merged=True))
    assert not any((tmp_path / "cache").rglob("config.json"))  # nothing half-merged is left to be served


def test_upstream_mode_fronts_a_running_server(tmp_path):
    """No engine: the judges are the upstream's models; /health falls back to its model list."""
    with FakeOpenAI(models=("teacher",), api_key="upstream-key") as upstream:
        port = free_port()
        command = [sys.executable, "-m", "judge.cli", "serve", "--upstream", upstream.base_url,
                   "--upstream-api-key", "upstream-key", "--port", str(port), "--template", "pandalm"]
        with ChildServer(command, f"http://127.0.0.1:{port}/health", log_path=tmp_path / "log", startup_timeout=60):
            with JudgeClient(f"http://127.0.0.1:{port}") as judge:
                assert [(m["id"], m["templates"]["pairwise"]) for m in judge.models()] == [("teacher", "pandalm@1")]
                verdict = judge.pairwise("q", "a", "b", template="judgelm")  # the fake replies JudgeLM-style
                assert verdict["parse_ok"] and verdict["judge"] == "teacher" and verdict["winner"] in ("1", "2", "tie")
        assert upstream.stats()["ok"] == 1


def test_the_judge_api_never_imports_torch(tmp_path, smollm2_path):
    """`judgeforge serve --upstream` started as a user starts it, with the length check on (SmolLM2's
    tokenizer): it judges, refuses a prompt too long for the context, and in all that no module of
    torch is imported into its process (`python -X importtime` logs every import it makes)."""
    model = str(smollm2_path)
    with FakeOpenAI(models=(model,)) as upstream:
        port = free_port()
        command = [sys.executable, "-X", "importtime", "-m", "judge.cli", "serve", "--upstream", upstream.base_url,
                   "--model", model, "--max-model-len", "2048", "--port", str(port)]
        log = tmp_path / "log"
        with ChildServer(command, f"http://127.0.0.1:{port}/health", log_path=log, startup_timeout=60):
            with JudgeClient(f"http://127.0.0.1:{port}") as judge:
                assert judge.pairwise("q", "a", "b", template="judgelm")["parse_ok"]
                with pytest.raises(JudgeAPIError) as refused:
                    judge.pairwise("q", "word " * 3000, "b", template="judgelm")
        assert refused.value.status == 413 and "context is 2048" in refused.value.message
        assert upstream.stats()["ok"] == 1
    imported = [line.rsplit("|", 1)[-1].strip() for line in log.read_text().splitlines() if line.startswith("import time:")]
    assert "judge.backends.tokenizer_files" in imported and "tokenizers" in imported  # the log holds the imports
    assert [m for m in imported if m.split(".")[0] == "torch"] == []


@pytest.mark.parametrize("config,dtype", [({"dtype": "bfloat16"}, "bfloat16"), ({"torch_dtype": "float16"}, "float16"),
                                          ({}, None)])
def test_the_base_dtype_is_read_from_config_json(tmp_path, config, dtype):
    """--merged merges in the dtype the base was saved in ("torch_dtype" before transformers 5)."""
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert saved_dtype(str(tmp_path)) == dtype


URL_KEY = "sk-upstream-in-url-4242"


def test_the_upstream_url_is_shown_without_the_key_inside_it(monkeypatch, capsys, caplog):
    """In the error that says the upstream cannot be reached, and in what the server logs."""
    import logging
    import signal

    from judge.cli import main

    monkeypatch.setattr(signal, "signal", lambda *args: None)  # serve's SIGTERM handler stays out of pytest
    url = f"http://user:{URL_KEY}@127.0.0.1:9/v1"  # nothing listens on port 9
    assert main(["serve", "--upstream", url]) == 2
    error = capsys.readouterr().err
    assert "cannot list the models of http://user:***@127.0.0.1:9/v1" in error and URL_KEY not in error

    monkeypatch.setattr("serve.server.serve", lambda config: logging.getLogger("judgeforge.serve").warning(
        "fronting %s", config.upstream))
    assert main(["serve", "--upstream", url]) == 0
    assert "fronting http://user:***@127.0.0.1:9/v1" in caplog.text and URL_KEY not in caplog.text
