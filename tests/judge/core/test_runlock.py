import subprocess
import sys

import pytest

from judge.core.errors import ConfigError
from judge.core.runlock import RunLock


def test_second_holder_refused_and_lock_freed_on_exit(tmp_path):
    lock = tmp_path / "out" / ".lock"
    with RunLock(lock, what="score --out X"):
        with pytest.raises(ConfigError, match="score --out X"):
            RunLock(lock, what="score --out X").acquire()
    RunLock(lock, what="again").acquire().release()


def test_lock_of_a_killed_process_is_free(tmp_path):
    lock = tmp_path / ".lock"
    child = subprocess.Popen([sys.executable, "-c", "import sys, time; from judge.core.runlock import RunLock; "
                              f"RunLock({str(lock)!r}, what='x').acquire(); print('held', flush=True); time.sleep(60)"],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "held"
    with pytest.raises(ConfigError, match=f"pid {child.pid}"):
        RunLock(lock, what="x").acquire()
    child.kill()
    child.wait()
    RunLock(lock, what="x").acquire().release()
