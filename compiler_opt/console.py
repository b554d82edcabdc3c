"""What a binary shows on its console, and where the rest of its log goes.

A newcomer running a binary sees progress bars, one line per step, warnings and errors, and the result. Every log
record (the effective gin config, TensorFlow's INFO lines, per-module details) goes to a log file under the run's
output directory instead: `RUN_DIR/logs/PROGRAM.INFO` (a symlink to absl's timestamped file beside it).

A step line is an INFO record logged with `extra=console.STEP` (e.g. `logging.info("iteration %d: training", t,
extra=console.STEP)`); it is printed as its bare message, and also goes to the log file.
"""

from __future__ import annotations

import contextlib
import logging as std_logging
import os
import sys
import tempfile
from collections.abc import Iterator

from absl import flags, logging

LOG_DIRNAME = "logs"
STEP = {"console_step": True}


class _StepLines(std_logging.Filter):
    def filter(self, record: std_logging.LogRecord) -> bool:
        return record.levelno == std_logging.INFO and getattr(record, "console_step", False)


def log_to_file(run_dir: str, program: str) -> str:
    """Sends the whole log to a file under `run_dir` and keeps the console for step lines (`STEP`), warnings and
    errors. Call it once, after flags are parsed. Returns the log file's path (the `.INFO` symlink).

    `--logtostderr` and `--alsologtostderr` still print everything; an explicit `--stderrthreshold` is respected.
    """
    log_dir = os.path.join(os.path.abspath(run_dir), LOG_DIRNAME)
    os.makedirs(log_dir, exist_ok=True)
    if not flags.FLAGS["stderrthreshold"].present:
        flags.FLAGS.stderrthreshold = "warning"
    logging.get_absl_handler().use_absl_log_file(program, log_dir)
    if not (flags.FLAGS.logtostderr or flags.FLAGS.alsologtostderr):
        steps = std_logging.StreamHandler(sys.stderr)
        steps.addFilter(_StepLines())
        steps.setFormatter(std_logging.Formatter("%(message)s"))
        std_logging.getLogger().addHandler(steps)
    # TensorFlow's logger prints to stderr through a handler of its own when it was set up before absl's (at import);
    # without it, its records reach the log file like every other.
    tf_logger = std_logging.getLogger("tensorflow")
    for handler in list(tf_logger.handlers):
        if getattr(handler, "stream", None) in (sys.stderr, sys.stdout):
            tf_logger.removeHandler(handler)
    std_logging.captureWarnings(True)
    return os.path.join(log_dir, f"{program}.INFO")


@contextlib.contextmanager
def stderr_to_log(what: str) -> Iterator[None]:
    """Sends what C/C++ code writes straight to file descriptor 2 inside the block (e.g. the TF Lite converter's
    "Summary on the non-converted ops") to the log at INFO, labelled `what`, instead of the console; if the block
    raises, to the log at ERROR (so also to the console). The descriptor is the process's: use it around one library
    call, not around work that reports progress from other threads."""
    sys.stderr.flush()
    saved = os.dup(2)
    failed = False
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode(errors="replace").strip()
            if text:
                logging.log(logging.ERROR if failed else logging.INFO, "%s wrote to stderr:\n%s", what, text)
