"""Output folders written whole: a trained adapter, a merged model, filter's set of files are built in
a temporary folder beside their destination and renamed into place only once complete, so a crash
leaves the previous complete folder or the new complete one, never a mix or a half-written one.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def staging_path(dest: str | os.PathLike) -> Path:
    """The temporary folder beside `dest` (the same on every rank of a distributed run)."""
    dest = Path(dest)
    return dest.with_name(f".{dest.name}.partial")


@contextlib.contextmanager
def staged_dir(dest: str | os.PathLike, *, owner: bool = True) -> Iterator[Path]:
    """`with staged_dir(OUT) as tmp:` write everything into `tmp`; on success it replaces OUT.
    On an exception `tmp` is removed and OUT is untouched. Only the `owner` (rank 0 of a
    distributed run) clears, renames and removes; the other ranks just get the same path."""
    tmp = staging_path(dest)
    if not owner:
        yield tmp
        return
    _remove(tmp)  # left by a crash
    tmp.mkdir(parents=True)
    try:
        yield tmp
        replace_dir(tmp, Path(dest))
    except BaseException:
        _remove(tmp)
        raise


def replace_dir(src: Path, dest: Path) -> None:
    """Put folder `src` at `dest` (replacing what is there) in one atomic step where the kernel
    allows it (rename, or renameat2's exchange when `dest` exists)."""
    if not dest.exists():
        os.rename(src, dest)
        return
    if _exchange(src, dest):
        _remove(src)  # now the old folder
        return
    old = dest.with_name(f".{dest.name}.old")  # no atomic exchange here: two renames
    _remove(old)
    os.rename(dest, old)
    os.rename(src, dest)
    _remove(old)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    errno = ctypes.get_errno()
    if errno in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: this kernel or file system cannot
        return False
    raise OSError(errno, os.strerror(errno), str(b))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
