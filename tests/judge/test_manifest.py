"""Manifests: no secret reaches the disk, whichever verb wrote them and however the key was given."""

import json
import os
import subprocess
import sys

from judge.jsonl import write_jsonl
from judge.manifest import folder_fingerprint, write_manifest
from judge.records import PairItem
from judge.testing.fake_openai import FakeOpenAI

FLAG_KEY, ENV_KEY = "sk-flag-secret-0123456789", "sk-env-secret-9876543210"


def files_holding(folder, secret: str) -> list[str]:
    return [str(p) for p in folder.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def test_secret_flags_config_keys_and_key_variables_are_written_as_stars(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["judgeforge", "score", "--api-key", FLAG_KEY, f"--hf-token={ENV_KEY}",
                                      "--max-tokens", "8"])
    monkeypatch.setenv("HF_TOKEN", ENV_KEY)
    manifest = write_manifest(tmp_path, "score", config={"api_key": FLAG_KEY, "teacher": {"api_key": "x"},
                                                         "max_tokens": 8, "note": f"Bearer {ENV_KEY}"},
                              counts={"prompt_tokens": 3})
    written = (tmp_path / "manifest.json").read_text()
    assert FLAG_KEY not in written and ENV_KEY not in written
    assert manifest["command"] == ["judgeforge", "score", "--api-key", "***", "--hf-token=***", "--max-tokens", "8"]
    assert manifest["config"] == {"api_key": "***", "teacher": {"api_key": "***"}, "max_tokens": 8, "note": "Bearer ***"}
    assert manifest["counts"] == {"prompt_tokens": 3}


def pairs(tmp_path, n=3):
    path = tmp_path / "items.jsonl"
    write_jsonl(path, [PairItem(id=f"p{i}", question=f"q{i}", answer1="a", answer2="b") for i in range(n)])
    return str(path)


def test_score_with_api_key_on_the_command_line_writes_it_nowhere(tmp_path):
    out = tmp_path / "run"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}, "OPENAI_API_KEY": ENV_KEY}
    with FakeOpenAI(api_key=FLAG_KEY) as fake:
        result = subprocess.run([sys.executable, "-m", "judge.cli", "score", "--input", pairs(tmp_path), "--backend",
                                 "openai", "--model", "judge", "--base-url", fake.base_url, "--api-key", FLAG_KEY,
                                 "--out", str(out / "pred.jsonl")], env=env, capture_output=True, text=True, timeout=120)
        assert fake.stats()["ok"] == 3
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "pred.manifest.json").read_text())["command"][-3] == "***"
    assert files_holding(tmp_path, FLAG_KEY) == [] and files_holding(tmp_path, ENV_KEY) == []


def test_distill_with_the_key_in_the_environment_writes_it_nowhere(tmp_path):
    out = tmp_path / "distill"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}, "OPENAI_API_KEY": ENV_KEY}
    with FakeOpenAI(api_key=ENV_KEY) as fake:
        result = subprocess.run([sys.executable, "-m", "judge.cli", "distill", "--input", pairs(tmp_path), "--mode",
                                 "pairwise", "--template", "judgelm", "--teacher-model", "t", "--teacher-base-url",
                                 fake.base_url, "--out", str(out), "--no-progress"],
                                env=env, capture_output=True, text=True, timeout=120)
        assert fake.stats()["ok"] == 6
    assert result.returncode == 0, result.stderr
    assert (out / "manifest.json").exists() and files_holding(tmp_path, ENV_KEY) == []


def test_folder_fingerprint_follows_contents_not_paths(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for folder in (a, b):
        folder.mkdir()
        (folder / "adapter_model.safetensors").write_bytes(b"w1")
    assert folder_fingerprint(a) == folder_fingerprint(b)
    (b / "adapter_model.safetensors").write_bytes(b"w2")
    assert folder_fingerprint(a) != folder_fingerprint(b)
    assert folder_fingerprint(tmp_path / "served-name") == str(tmp_path / "served-name")
