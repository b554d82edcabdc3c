"""Shared start-up of every binary: parse gin files and bindings strictly, then log the effective config."""

from __future__ import annotations

import contextlib
import logging as std_logging
import os
from collections.abc import Iterator, Sequence

import gin
from absl import logging


class _IncludeProbes(std_logging.Filter):
    """gin looks for an included file in each search location in turn, and for each location where it is not, asks
    Python's package path too, logging an ERROR ("Path not found") when that fails, also when a later location has
    the file. Those probes are not errors: a file found nowhere still raises gin's IOError."""

    def filter(self, record: std_logging.LogRecord) -> bool:
        return not record.pathname.endswith(os.path.join("gin", "resource_reader.py"))


@contextlib.contextmanager
def _quiet_include_probes() -> Iterator[None]:
    root, probes = std_logging.getLogger(), _IncludeProbes()
    root.addFilter(probes)
    try:
        yield
    finally:
        root.removeFilter(probes)


def parse(gin_files: Sequence[str] | None, gin_bindings: Sequence[str] | None, log: bool = True) -> None:
    """Unknown configurables or parameters are errors (skip_unknown=False), as in MLGO.

    A gin file may `include` files by name relative to its own directory. With `log`, the effective config goes to
    the log at INFO; a binary that checks its inputs before opening its log file passes False and calls `log_config`
    once the file is open.
    """
    for path in gin_files or []:
        gin.add_config_file_search_path(os.path.dirname(os.path.abspath(path)))
    with _quiet_include_probes():
        gin.parse_config_files_and_bindings(gin_files or [], gin_bindings or [], skip_unknown=False)
    if log:
        log_config()


def log_config() -> None:
    """Logs the effective gin config at INFO."""
    logging.info("gin config:\n%s", gin.config_str())
