"""distill --batch killed while it polls: the rerun re-attaches to the recorded batch (no second batch,
no request paid twice, every verdict once); --batch-cancel keeps what the batch completed, and a
later --batch run submits only the rest."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from judge.core.jsonl import read_jsonl, write_jsonl
from judge.core.records import PairItem, Verdict, from_row
from judge.testing.fake_openai import FakeOpenAI

N_ITEMS = 20


def teacher(body):
    user = body["messages"][-1]["content"]
    return "8 3\nAssistant 1 is right." if user.index("GOOD") < user.index("bad") else "3 8\nAssistant 2 is right."


@pytest.fixture
def items(tmp_path):
    pairs = [PairItem(id=f"p{i:02d}", question=f"Question {i}?", answer1=f"GOOD answer {i}", answer2=f"bad answer {i}")
             for i in range(N_ITEMS)]
    write_jsonl(tmp_path / "items.jsonl", pairs)
    return pairs


def command(tmp_path, fake, *extra):
    return [sys.executable, "-m", "judge.cli", "distill", "--input", str(tmp_path / "items.jsonl"), "--mode",
            "pairwise", "--template", "judgelm", "--teacher-model", "teacher", "--teacher-base-url", fake.base_url,
            "--out", str(tmp_path / "run"), "--batch-poll", "0.05", "--no-progress", *extra]


ENV = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}


def kill_while_polling(cmd, fake, cache):
    """Start a --batch run and SIGKILL it once its batch is created and recorded in the ledger."""
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline and not recorded(fake, cache):
        time.sleep(0.02)
    assert proc.poll() is None, f"distill ended before the kill: {proc.stderr.read()}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()


def recorded(fake, cache) -> bool:
    if fake.stats()["batches_created"] < 1 or not cache.exists():
        return False
    try:
        with sqlite3.connect(cache) as db:
            return db.execute("SELECT COUNT(*) FROM batch_files WHERE batch_id IS NOT NULL").fetchone()[0] > 0
    except sqlite3.OperationalError:  # the table is not there yet
        return False


def read_verdicts(tmp_path):
    return read_jsonl(tmp_path / "run" / "verdicts.jsonl", lambda r: from_row(Verdict, r, extra_to_meta=False))


@pytest.mark.integration
def test_sigkill_while_polling_then_rerun_reattaches(tmp_path, items):
    with FakeOpenAI(reply=teacher, batch_delay=3.0) as fake:
        cmd = command(tmp_path, fake, "--batch")
        kill_while_polling(cmd, fake, tmp_path / "run" / "cache.sqlite")
        assert not (tmp_path / "run" / "verdicts.jsonl").exists()
        rerun = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=120)
        assert rerun.returncode == 0, rerun.stderr
        served = fake.stats()
    assert served["batches_created"] == 1 and served["files_uploaded"] == 1  # re-attached, not submitted again
    assert served["ok"] == 0 and served["batch_ok"] == 2 * N_ITEMS and served["repeated_ok"] == 0
    verdicts = read_verdicts(tmp_path)
    assert sorted((v.id, v.order) for v in verdicts) == sorted((p.id, o) for p in items for o in ("ab", "ba"))
    stats = json.loads((tmp_path / "run" / "stats.json").read_text())
    assert stats["this_run"]["batch"]["reattached"] == 1 and stats["this_run"]["batch"]["submitted"] == 0
    assert stats["calls"]["by_batch"] == 2 * N_ITEMS and "1 re-attached" in rerun.stdout


@pytest.mark.integration
def test_batch_cancel_keeps_what_completed_and_a_rerun_sends_the_rest(tmp_path, items):
    with FakeOpenAI(reply=teacher, batch_delay=60.0) as fake:  # long enough to be cancelled before it ends
        kill_while_polling(command(tmp_path, fake, "--batch"), fake, tmp_path / "run" / "cache.sqlite")
        live = subprocess.run(command(tmp_path, fake), env=ENV, capture_output=True, text=True, timeout=120)
        assert live.returncode == 2 and "still open: rerun with --batch" in live.stderr  # would pay twice
        cancel = subprocess.run(command(tmp_path, fake, "--batch-cancel"), env=ENV, capture_output=True, text=True,
                                timeout=120)
        assert cancel.returncode == 0, cancel.stderr
        kept = fake.stats()["batch_ok"]
        stats = json.loads((tmp_path / "run" / "stats.json").read_text())
        assert fake.stats()["batches_cancelled"] == 1 and stats["this_run"]["batch"]["cancelled"] == 1
        assert [b["status"] for b in stats["batches"]] == ["cancelled"]
        assert stats["verdicts"] == stats["calls"]["by_batch"] == kept < 2 * N_ITEMS
        fake.configure(batch_delay=0.2)  # the follow-up batch need not take a minute
        rest = subprocess.run(command(tmp_path, fake, "--batch"), env=ENV, capture_output=True, text=True,
                              timeout=120)
        assert rest.returncode == 0, rest.stderr
        served = fake.stats()
    stats = json.loads((tmp_path / "run" / "stats.json").read_text())
    assert stats["this_run"]["batch"]["submitted"] == 2 * N_ITEMS - kept  # only what the cancel left unanswered
    assert served["batches_created"] == 2 and served["ok"] == 0 and served["repeated_ok"] == 0
    assert len(read_verdicts(tmp_path)) == 2 * N_ITEMS
