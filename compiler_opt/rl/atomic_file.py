"""Atomic commits of files and directories: a reader sees the old version or the complete new one, never a part.

This is the codebase's one writer of temporaries. A temporary lives beside its target (same file system, so the
final rename is atomic) and is named `.tmp-PID-TOKEN-NAME`: PID is the writing process, TOKEN makes it unique, NAME
is the target's name. The run that owns a directory calls `remove_stale_temporaries` when it starts: it removes the
temporaries of writers that were killed (and those of the names older versions of this code used).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fnmatch
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterable, Iterator

TEMP_PREFIX = ".tmp-"

_PID_TEMP = re.compile(r"^\.tmp-(\d+)-")
# Temporaries of the hand-written writers this module replaced: `NAME.tmp-PID` files, `.NAME.tmp-XXXX` export
# directories, `NAME.old-PID` directories of a replaced export, and the `vocab.tmp` directory.
_LEGACY_FILE = re.compile(r"^.+\.tmp-(\d+)$")
_LEGACY_DIR = re.compile(r"^(\..+\.tmp-.+|.+\.old-\d+|.+\.tmp)$")

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def write_with(path: str, write: Callable[[str], None]) -> None:
    """Calls `write(tmp_path)` to produce the file under a temporary name, then fsyncs and renames it to `path`.

    The file gets the usual permissions (0666 less the umask). If `write` raises, the temporary is removed.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = _temp_path(directory, os.path.basename(path))
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666))
    try:
        write(tmp)
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync(directory)


def write_bytes(path: str, data: bytes) -> None:
    """Writes `data` to `path` via a temporary file in the same directory, fsync, then rename."""

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)

    write_with(path, write)


def write_text(path: str, text: str) -> None:
    """`write_bytes` of `text` in UTF-8."""
    write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def staged_dir(final_dir: str) -> Iterator[str]:
    """Yields an empty temporary directory beside `final_dir`; fill it, and on a normal exit it replaces `final_dir`
    (`commit_dir`). On an exception it is removed and `final_dir` is left as it was."""
    parent = os.path.dirname(os.path.abspath(final_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = _temp_path(parent, os.path.basename(os.path.abspath(final_dir)))
    os.mkdir(tmp)
    try:
        yield tmp
        commit_dir(tmp, final_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def commit_dir(tmp_dir: str, final_dir: str) -> None:
    """Fsyncs every file under `tmp_dir`, then puts it at `final_dir` (same file system).

    An existing `final_dir` is swapped with the new one in one step (Linux renameat2 RENAME_EXCHANGE), so a reader
    never finds it missing, then deleted. Where the file system cannot swap, it is renamed aside first.
    """
    final_dir = os.path.abspath(final_dir)
    parent = os.path.dirname(final_dir)
    for root, _, files in os.walk(tmp_dir):
        for name in files:
            _fsync(os.path.join(root, name))
        _fsync(root)
    if not os.path.lexists(final_dir):
        os.replace(tmp_dir, final_dir)
    elif _exchange(tmp_dir, final_dir):
        _remove(tmp_dir)  # It now holds the old version.
    else:
        old = _temp_path(parent, os.path.basename(final_dir))
        os.rename(final_dir, old)
        os.rename(tmp_dir, final_dir)
        _remove(old)
    _fsync(parent)


def remove_stale_temporaries(directory: str, also: Iterable[str] = (), target: str | None = None) -> int:
    """Removes the temporaries (files and directories) in `directory` left by writers that were killed; returns how
    many. For the run that owns `directory`, when it starts.

    A `.tmp-PID-...` temporary of a process that is still alive on this machine (this one included: another thread
    may be writing it) is kept. `also`: fnmatch patterns of other writers' temporaries to remove too (e.g. `*_temp`,
    TensorFlow's directories of a checkpoint being saved). `target`: in a directory the run does not own, only the
    `.tmp-PID-...` temporaries of that one name (e.g. an export directory's, in its parent).
    """
    if not os.path.isdir(directory):
        return 0
    removed = 0
    for entry in os.scandir(directory):
        name = entry.name
        is_dir = entry.is_dir(follow_symlinks=False)
        pid_match = _PID_TEMP.match(name) or (None if is_dir else _LEGACY_FILE.match(name))
        if target is not None:
            stale = (
                pid_match is not None
                and name.startswith(TEMP_PREFIX)
                and name.split("-", 3)[-1] == target
                and not _alive(int(pid_match.group(1)))
            )
        elif pid_match:
            stale = not _alive(int(pid_match.group(1)))
        else:
            stale = (
                name.startswith(TEMP_PREFIX)
                or (is_dir and _LEGACY_DIR.match(name) is not None)
                or any(fnmatch.fnmatchcase(name, pattern) for pattern in also)
            )
        if stale:
            _remove(entry.path)
            removed += 1
    return removed


def _temp_path(directory: str, name: str) -> str:
    return os.path.join(directory, f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}-{name}")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:  # Another user's live process.
        return True
    return True


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _exchange(a: str, b: str) -> bool:
    """Swaps the paths `a` and `b` atomically; False where the C library or the file system cannot."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), a, None, b)


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
