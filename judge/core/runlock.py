"""One run per output: a second `distill`, `score` or `train` writing the same output refuses at once
instead of racing the first (and paying the teacher twice).

The lock is an advisory `flock` on a small file beside the output, so the kernel releases it when
the holder exits for any reason (SIGKILL included): a crashed run never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from judge.core.errors import ConfigError


class RunLock:
    """`with RunLock(path, what="score --out X"):` holds `path` (created if missing) exclusively.

    Raises ConfigError naming the output and the holder's pid when another process holds it.
    """

    def __init__(self, path: str | os.PathLike, *, what: str):
        self.path, self.what = Path(path), what
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise ConfigError(f"another judgeforge run (pid {holder}) is writing {self.what}; wait for it to "
                              f"finish or choose another output (lock: {self.path})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
