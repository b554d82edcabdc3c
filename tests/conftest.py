"""Shared pytest fixtures."""

import pytest

from compiler_opt.rl import make_default_corpus_lib


@pytest.fixture(scope="session")
def default_corpus() -> str:
    """Path of the default corpus (built into the cache on first use, then reused)."""
    return make_default_corpus_lib.default_corpus_dir()
