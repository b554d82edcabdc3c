r"""Runs a binary of this project and SIGKILLs its whole process group at a chosen commit point.

Usage (from the repository root, in a new session so that only the binary and its workers are killed):
  python -m bench.testkit.crash_at --event=K [--match=TEXT] [--checkpoint=C] -- MODULE [ARGS...]

Every file commit of this codebase ends with an `os.replace` (atomic_file.write_with), and so does a directory
commit to a new path (atomic_file.commit_dir; replacing an existing directory is one renameat2 swap, not counted).
Event 2i is the moment just before the i-th rename whose destination contains TEXT, event 2i+1 the moment just
after it; the process group is killed at event K. With --checkpoint=C it is killed right after the trainer's C-th
checkpoint instead. K < 0 never kills. At a normal exit it prints `crash_at: N events` to stderr.
"""

from __future__ import annotations

import argparse
import atexit
import os
import runpy
import signal
import sys


def _kill_group() -> None:
    os.killpg(os.getpgid(0), signal.SIGKILL)


def _count_renames(kill_at: int, match: str) -> list[int]:
    events = [0]
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        counted = match in os.fspath(dst)
        if counted:
            if events[0] == kill_at:
                _kill_group()
            events[0] += 1
        real_replace(src, dst, *args, **kwargs)
        if counted:
            if events[0] == kill_at:
                _kill_group()
            events[0] += 1

    os.replace = replace
    return events


def _kill_after_checkpoint(count: int) -> None:
    import tensorflow as tf

    saves = [0]
    real_save = tf.train.CheckpointManager.save

    def save(self, *args, **kwargs):
        path = real_save(self, *args, **kwargs)
        saves[0] += 1
        if saves[0] == count:
            _kill_group()
        return path

    tf.train.CheckpointManager.save = save


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--event", type=int, default=-1)
    parser.add_argument("--match", default="")
    parser.add_argument("--checkpoint", type=int, default=0)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    opts = parser.parse_args()
    command = opts.command[1:] if opts.command[:1] == ["--"] else opts.command
    events = _count_renames(opts.event, opts.match)
    if opts.checkpoint:
        _kill_after_checkpoint(opts.checkpoint)
    atexit.register(lambda: sys.stderr.write(f"crash_at: {events[0]} events\n"))
    sys.argv = command
    runpy.run_module(command[0], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
