"""Shared start-up of every binary: parse gin files and bindings strictly, then log the effective config."""

from __future__ import annotations

import os
from collections.abc import Sequence

import gin
from absl import logging


def parse(gin_files: Sequence[str] | None, gin_bindings: Sequence[str] | None) -> None:
    """Unknown configurables or parameters are errors (skip_unknown=False), as in MLGO.

    A gin file may `include` files by name relative to its own directory.
    """
    for path in gin_files or []:
        gin.add_config_file_search_path(os.path.dirname(os.path.abspath(path)))
    gin.parse_config_files_and_bindings(gin_files or [], gin_bindings or [], skip_unknown=False)
    logging.info("gin config:\n%s", gin.config_str())
