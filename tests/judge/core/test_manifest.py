"""Manifests: no secret reaches the disk, whichever verb wrote them and however the key was given."""

import io
import json
import logging
import os
import subprocess
import sys

import pytest

from judge.core.jsonl import write_jsonl
from judge.core.manifest import folder_fingerprint, mask_log_handlers, mask_urls, write_manifest
from judge.core.records import PairItem
from judge.testing.fake_openai import FakeOpenAI

FLAG_KEY, ENV_KEY = "sk-flag-secret-0123456789", "sk-env-secret-9876543210"
URL_KEY = "sk-url-secret-5555555555"


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


@pytest.mark.parametrize("given,shown", [
    ("http://user:sk-abc@host/v1", "http://user:***@host/v1"),
    ("https://sk-abc@host:8443/v1", "https://***@host:8443/v1"),
    ("http://host/v1?api_key=sk-abc&model=x", "http://host/v1?api_key=***&model=x"),
    ("https://host/v1?key=AIza-1&alt=sse#frag", "https://host/v1?key=***&alt=sse#frag"),
    ("http://host/?x=1&access_token=t0k&API-KEY=k2", "http://host/?x=1&access_token=***&API-KEY=***"),
    ("cannot list the models of http://u:p4ss@h:1/v1: 404 for url 'http://u:p4ss@h:1/v1/models'",
     "cannot list the models of http://u:***@h:1/v1: 404 for url 'http://u:***@h:1/v1/models'"),
    ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
    ("http://[::1]:8000/v1?model=x", "http://[::1]:8000/v1?model=x"),
    ("mail user@example.com, key=value", "mail user@example.com, key=value"),  # not URLs
])
def test_secrets_inside_urls_are_masked(given, shown):
    assert mask_urls(given) == shown


def test_a_manifest_masks_a_key_inside_a_url_in_the_command_and_the_config(tmp_path, monkeypatch):
    url = f"http://user:{URL_KEY}@host/v1?api_key={URL_KEY}"
    monkeypatch.setattr(sys, "argv", ["judgeforge", "distill", "--teacher-base-url", url])
    manifest = write_manifest(tmp_path, "distill", config={"teacher": {"base_url": url}, "upstream": [url]})
    assert URL_KEY not in (tmp_path / "manifest.json").read_text()
    assert manifest["command"][-1] == manifest["config"]["teacher"]["base_url"] == "http://user:***@host/v1?api_key=***"


def with_key_inside(base_url: str) -> str:
    return base_url.replace("http://", f"http://user:{URL_KEY}@", 1)


def test_a_key_inside_the_base_url_is_written_nowhere(tmp_path):
    """score's manifest, distill's manifest and stats.json, and what either prints."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    with FakeOpenAI() as fake:
        url = with_key_inside(fake.base_url)
        runs = [subprocess.run([sys.executable, "-m", "judge.cli", "score", "--input", pairs(tmp_path), "--backend",
                                "openai", "--model", "judge", "--base-url", url, "--api-key", "unused",
                                "--out", str(tmp_path / "score" / "pred.jsonl")],
                               env=env, capture_output=True, text=True, timeout=120),
                subprocess.run([sys.executable, "-m", "judge.cli", "distill", "--input", pairs(tmp_path), "--mode",
                                "pairwise", "--template", "judgelm", "--teacher-model", "t", "--teacher-base-url", url,
                                "--out", str(tmp_path / "distill"), "--no-progress"],
                               env=env, capture_output=True, text=True, timeout=120)]
        assert fake.stats()["ok"] == 3 + 6
    for run in runs:
        assert run.returncode == 0, run.stderr
        assert URL_KEY not in run.stdout + run.stderr
    stats = json.loads((tmp_path / "distill" / "stats.json").read_text())
    assert stats["teacher"]["base_url"] == with_key_inside(fake.base_url).replace(URL_KEY, "***")
    assert (tmp_path / "score" / "pred.manifest.json").exists()
    assert files_holding(tmp_path, URL_KEY) == []


def test_an_error_naming_the_endpoint_masks_the_key_inside_its_url(tmp_path):
    """The 401 message names the endpoint; the resume state left for a rerun records the URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    with FakeOpenAI(unauthorized=True) as fake:
        result = subprocess.run([sys.executable, "-m", "judge.cli", "score", "--input", pairs(tmp_path), "--backend",
                                 "openai", "--model", "judge", "--base-url", with_key_inside(fake.base_url),
                                 "--api-key", "unused", "--out", str(tmp_path / "pred.jsonl")],
                                env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "refused the API key" in result.stderr
    assert "user:***@127.0.0.1" in result.stderr and URL_KEY not in result.stderr
    assert list(tmp_path.glob("pred.jsonl.partial*")) and files_holding(tmp_path, URL_KEY) == []


def test_a_log_line_with_a_key_inside_a_url_is_masked():
    stream, logger = io.StringIO(), logging.getLogger("judgeforge.test-mask")
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    try:
        mask_log_handlers(logger.name)
        mask_log_handlers(logger.name)  # once is enough: a second call adds nothing
        assert len(handler.filters) == 1
        logger.error("upstream %s failed: %s", f"http://u:{URL_KEY}@h/v1", {"url": f"http://h/?key={URL_KEY}"})
    finally:
        logger.removeHandler(handler)
    assert URL_KEY not in stream.getvalue() and "http://u:***@h/v1" in stream.getvalue()


def test_uvicorn_access_lines_keep_their_fields_when_masked(capsys):
    """uvicorn's access formatter reads the record's args as a tuple of fields: masking keeps it one."""
    from uvicorn.logging import AccessFormatter

    stream, logger = io.StringIO(), logging.getLogger("judgeforge.test-access")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(AccessFormatter("%(client_addr)s %(request_line)s %(status_code)s", use_colors=False))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        mask_log_handlers(logger.name)
        logger.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/v1/models", "1.1", 200)
    finally:
        logger.removeHandler(handler)
    line = stream.getvalue()
    assert "Logging error" not in capsys.readouterr().err and line.startswith("127.0.0.1:5000 GET /v1/models HTTP/1.1 200")
