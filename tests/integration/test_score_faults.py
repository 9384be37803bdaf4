"""`score --backend openai` against the fault-injecting fake that distill's fault test uses (15% 429s
with Retry-After, 10% 500s, 2 s stalls): every item is judged exactly once (the fake's served
counts), every verdict is written once, and a rerun sends nothing."""

import os
import subprocess
import sys

import pytest

from judge.core.jsonl import read_jsonl, write_jsonl
from judge.core.records import PairItem, Verdict, from_row
from judge.testing.fake_openai import FakeOpenAI


@pytest.mark.integration
def test_score_over_a_faulty_endpoint_judges_every_item_once(tmp_path):
    items = [PairItem(id=f"p{i:02d}", question=f"Question {i}?", answer1=f"first {i}", answer2=f"second {i}")
             for i in range(60)]
    write_jsonl(tmp_path / "items.jsonl", items)
    out = tmp_path / "pred.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    with FakeOpenAI(latency=0.05, rate_limit_rate=0.15, retry_after=0.2, error_rate=0.10, stall_rate=0.05,
                    stall_seconds=2.0, seed=7) as fake:
        cmd = [sys.executable, "-m", "judge.cli", "score", "--input", str(tmp_path / "items.jsonl"), "--backend",
               "openai", "--model", "judge", "--base-url", fake.base_url, "--template", "judgelm", "--swap",
               "--concurrency", "8", "--batch-size", "32", "--timeout", "10", "--max-retries", "20", "--out", str(out)]
        first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert first.returncode == 0, first.stderr
        served = fake.stats()
        rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert rerun.returncode == 0, rerun.stderr
        assert fake.stats()["requests"] == served["requests"]  # a finished run sends nothing
    assert served["rate_limited"] > 0 and served["server_errors"] > 0 and served["stalls"] > 0
    assert served["ok"] == served["distinct_ok"] == 120 and served["repeated_ok"] == 0  # each call answered once
    assert "120 judged now, 0 resumed, 0 unparsed" in first.stdout and "0 judged now, 120 resumed" in rerun.stdout
    verdicts = read_jsonl(out, lambda r: from_row(Verdict, r, extra_to_meta=False))
    assert [(v.id, v.order) for v in verdicts] == [(p.id, o) for p in items for o in ("ab", "ba")]
    assert all(v.parse_ok and v.winner in ("1", "2", "tie") for v in verdicts)
