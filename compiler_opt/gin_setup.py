"""Shared start-up of every binary: parse gin files and bindings strictly, then log the effective config."""

from __future__ import annotations

from collections.abc import Sequence

import gin
from absl import logging


def parse(gin_files: Sequence[str] | None, gin_bindings: Sequence[str] | None) -> None:
    """Unknown configurables or parameters are errors (skip_unknown=False), as in MLGO."""
    gin.parse_config_files_and_bindings(gin_files or [], gin_bindings or [], skip_unknown=False)
    logging.info("gin config:\n%s", gin.config_str())
