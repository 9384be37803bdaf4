"""The must-show fault test: a loopback teacher injecting 15% 429s (Retry-After), 10% 500s and
occasional 2 s stalls; 60 pairs in both orders at --concurrency 8; the run is SIGKILLed mid-way
and rerun. Every verdict must be there once, the teacher must have served at most 120 + (calls in
flight at the kill) successful replies, a third run must send nothing, unparseable replies must be
`parse_ok: false`, and filter must keep exactly the swap-consistent items."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from judge.core.jsonl import read_jsonl, write_jsonl
from judge.core.records import PairItem, Verdict, from_row
from judge.testing.fake_openai import FakeOpenAI

KINDS = ("fair", "tie", "biased", "mumble")
CONCURRENCY = 8


def teacher(body):
    """Deterministic per request, from the prompt: the item's kind is in its question, and what the
    teacher says depends on whether the GOOD answer is shown first."""
    user = body["messages"][-1]["content"]
    good_first = user.index("GOOD") < user.index("bad")
    kind = next(k for k in KINDS if f"[{k}]" in user)
    if kind == "fair":
        return "8 3\nAssistant 1 is right." if good_first else "3 8\nAssistant 2 is right."
    if kind == "tie":
        return "6 6\nBoth are acceptable."
    if kind == "biased":
        return "9 2\nThe first answer is better."  # position bias: flips under swapping
    return "I cannot decide between them." if good_first else "3 8\nAssistant 2 is right."  # one order unparseable


@pytest.mark.integration
def test_sigkill_and_rerun_under_faults_lose_nothing_and_pay_once(tmp_path):
    items = [PairItem(id=f"p{i:02d}", question=f"[{KINDS[i % 4]}] Question {i}?", answer1=f"GOOD answer {i}",
                      answer2=f"bad answer {i}", category=KINDS[i % 4]) for i in range(60)]
    write_jsonl(tmp_path / "items.jsonl", items)
    out = tmp_path / "distill"
    with FakeOpenAI(reply=teacher, latency=0.05, rate_limit_rate=0.15, retry_after=0.2, error_rate=0.10,
                    stall_rate=0.05, stall_seconds=2.0, seed=7) as fake:
        cmd = [sys.executable, "-m", "judge.cli", "distill", "--input", str(tmp_path / "items.jsonl"),
               "--mode", "pairwise", "--template", "judgelm", "--teacher-model", "teacher", "--teacher-base-url",
               fake.base_url, "--concurrency", str(CONCURRENCY), "--out", str(out), "--max-retries", "20",
               "--timeout", "10", "--no-progress"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}

        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while fake.stats()["ok"] < 40 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, f"distill ended before the kill: {proc.stderr.read()}"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
        assert not (out / "verdicts.jsonl").exists()  # only the cache knew what was paid for

        rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert rerun.returncode == 0, rerun.stderr
        time.sleep(2.5)  # let replies the killed run left in flight (stalls included) reach the counters
        served = fake.stats()
        third = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert third.returncode == 0, third.stderr
        assert fake.stats()["requests"] == served["requests"]  # the third run sent nothing at all

    verdicts = read_jsonl(out / "verdicts.jsonl", lambda r: from_row(Verdict, r, extra_to_meta=False))
    assert sorted((v.id, v.order) for v in verdicts) == sorted((p.id, o) for p in items for o in ("ab", "ba"))
    assert served["ok"] <= 120 + CONCURRENCY and served["repeated_ok"] <= CONCURRENCY
    assert served["rate_limited"] > 0 and served["server_errors"] > 0 and served["stalls"] > 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["this_run"]["sent"] == 0 and stats["this_run"]["cache_hits"] == 120

    kind = {p.id: p.category for p in items}
    unparsed = {(v.id, v.order) for v in verdicts if not v.parse_ok}
    assert unparsed == {(p.id, "ab") for p in items if p.category == "mumble"}
    assert all(v.raw == "I cannot decide between them." and v.winner is None for v in verdicts if not v.parse_ok)

    data = tmp_path / "data"
    result = subprocess.run([sys.executable, "-m", "judge.cli", "filter", "--input", str(out / "verdicts.jsonl"),
                             "--out", str(data)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    kept = [json.loads(line) for name in ("train.jsonl", "val.jsonl") for line in (data / name).read_text().splitlines()]
    assert sorted({r["id"] for r in kept}) == sorted(p.id for p in items if p.category in ("fair", "tie"))
    assert len(kept) == 60  # both orders of the 30 consistent items
    dropped = [json.loads(line) for line in (data / "dropped.jsonl").read_text().splitlines()]
    assert sorted({r["id"] for r in dropped}) == sorted(p.id for p in items if p.category in ("biased", "mumble"))
    assert all(r["reason"].startswith("inconsistent" if kind[r["id"]] == "biased" else "unparsed") for r in dropped)
