"""distill: a second run writing the same folder refuses at once, before paying the teacher."""

import subprocess
import sys

from judge.cli import main
from judge.core.jsonl import write_jsonl
from judge.core.records import PairItem
from judge.core.runlock import RunLock
from judge.testing.fake_openai import FakeOpenAI


def test_a_second_distill_on_the_same_folder_exits_2_without_calling_the_teacher(tmp_path, capsys):
    items = tmp_path / "items.jsonl"
    write_jsonl(items, [PairItem(id=f"p{i}", question=f"Q{i}?", answer1="a", answer2="b") for i in range(3)])
    out = tmp_path / "run"
    with FakeOpenAI(reply=lambda body: "8 3\nThe first.") as fake:
        args = ["distill", "--input", str(items), "--mode", "pairwise", "--template", "judgelm", "--teacher-model",
                "teacher", "--teacher-base-url", fake.base_url, "--out", str(out), "--no-progress"]
        holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from judge.core.runlock import RunLock; "
                                   f"RunLock({str(out / '.lock')!r}, what='x').acquire(); print('held', flush=True); "
                                   "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout.readline().strip() == "held"  # a first run, still going
            assert main(args) == 2
            err = capsys.readouterr().err
            assert f"another judgeforge run (pid {holder.pid}) is writing distill --out {out}" in err
            assert fake.stats()["requests"] == 0 and not (out / "verdicts.jsonl").exists()
        finally:
            holder.kill()
            holder.wait()
        assert main(args) == 0 and fake.stats()["requests"] == 6  # the holder gone, the lock is free
    with RunLock(out / ".lock", what="held in this process"):  # the lock is released after the run
        pass
