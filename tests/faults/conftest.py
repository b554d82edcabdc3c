"""Fixtures of the fault-injection suite: small real modules, a damageable corpus copy, a PATH for fake tools."""

import os
import tempfile

import gin
import pytest

from bench.testkit import injection
from compiler_opt.rl import corpus


@pytest.fixture(scope="session")
def small_modules(default_corpus):
    """ModuleSpecs of injection.SMALL_MODULES in the default corpus."""
    by_name = {m.name: m for m in corpus.Corpus.load(default_corpus)}
    return [by_name[name] for name in injection.SMALL_MODULES]


@pytest.fixture
def small_corpus(tmp_path, small_modules):
    """A corpus directory of copies of the first three small modules (safe to damage)."""
    return injection.copy_corpus(str(tmp_path / "corpus"), small_modules[:3])


@pytest.fixture
def fake_bin(tmp_path, monkeypatch):
    """A directory put first on PATH: a fake `clang-22` written there replaces the real one for every compile."""
    path = str(tmp_path / "bin")
    os.makedirs(path)
    monkeypatch.setenv("PATH", f"{path}{os.pathsep}{os.environ['PATH']}")
    return path


@pytest.fixture
def compile_tmp(tmp_path, monkeypatch):
    """The directory where compiles make their temporary directories (FIFOs, object, stderr)."""
    path = str(tmp_path / "compile_tmp")
    os.makedirs(path)
    monkeypatch.setattr(tempfile, "tempdir", path)
    return path


@pytest.fixture(autouse=True)
def clean_gin():
    """Every test starts and ends with an empty gin config (as tests/gin_test_base.py does for test classes)."""
    gin.clear_config()
    yield
    gin.clear_config()
