"""Killing `judgeforge score` mid-run (SIGKILL) and rerunning finishes without re-judging done items."""

import os
import signal
import subprocess
import sys
import time

from judge.core.jsonl import AppendLog, read_jsonl, write_jsonl
from judge.core.records import PairItem, Verdict, from_row


def test_sigkill_then_rerun_judges_only_the_rest(tmp_path, tiny_llama_path):
    items = [PairItem(id=f"q{i}", question=f"Question number {i}?", answer1=f"answer {i}", answer2="no")
             for i in range(40)]
    write_jsonl(tmp_path / "items.jsonl", items)
    out = tmp_path / "pred.jsonl"
    cmd = [sys.executable, "-m", "judge.cli", "score", "--input", str(tmp_path / "items.jsonl"), "--backend", "hf",
           "--model", str(tiny_llama_path), "--swap", "--batch-size", "4", "--max-tokens", "48", "--out", str(out)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = tmp_path / "pred.jsonl.partial"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if partial.exists() and len(partial.read_text().splitlines()) >= 8:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "score finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(AppendLog(partial).rows())  # complete rows only: the kill may tear the last one
    assert 8 <= done_before < 80 and not out.exists()

    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"{80 - done_before} judged now, {done_before} resumed" in result.stdout
    verdicts = read_jsonl(out, lambda r: from_row(Verdict, r, extra_to_meta=False))
    assert sorted((v.id, v.order) for v in verdicts) == sorted((i.id, o) for i in items for o in ("ab", "ba"))
    assert not partial.exists()
