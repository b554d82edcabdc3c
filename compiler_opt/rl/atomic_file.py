"""Atomic file commits: a reader sees either the old file or the complete new one, never a partial write."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable


def write_bytes(path: str, data: bytes) -> None:
    """Writes `data` to `path` via a temporary file in the same directory, fsync, then rename."""

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)

    write_with(path, write)


def write_with(path: str, write: Callable[[str], None]) -> None:
    """Calls `write(tmp_path)` to produce the file under a temporary name, then fsyncs and renames it to `path`."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix="-" + os.path.basename(path), dir=directory)
    os.close(fd)
    try:
        write(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(directory)


def write_text(path: str, text: str) -> None:
    write_bytes(path, text.encode())


def remove_stale_temporaries(directory: str) -> int:
    """Deletes temporaries left by a writer that was killed mid-write. Returns how many were removed."""
    removed = 0
    if os.path.isdir(directory):
        for name in os.listdir(directory):
            if name.startswith(".tmp-"):
                os.unlink(os.path.join(directory, name))
                removed += 1
    return removed


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
