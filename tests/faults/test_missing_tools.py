"""A missing tool, or a clang that does not report its heuristic, stops the run with a message saying what to install;
no module is committed as failed because of it. (A missing compiler in one compile: tests/test_env.py.)"""

import os
import shutil
import sys

import pytest

from bench.testkit import injection
from compiler_opt.distributed import local
from compiler_opt.rl import compile_cache, env, evaluate_policy_lib, policies
from compiler_opt.rl.imitation_learning import generate_bc_trajectories_lib as collection
from compiler_opt.rl.inlining import task as task_lib
from compiler_opt.tools import export_model_lib

pytestmark = pytest.mark.integration

_TOOLS = ("clang-22", "llvm-size-22")


def _path_without(tool, tmp_path):
    """A PATH directory holding the other LLVM tools only."""
    directory = str(tmp_path / "path")
    os.makedirs(directory)
    for other in set(_TOOLS) - {tool}:
        os.symlink(shutil.which(other), os.path.join(directory, other))
    return directory


def _collect(modules, output_dir, cache_dir=None):
    return injection.collect_with_heuristic(modules, output_dir, cache_dir=cache_dir)


def _evaluate(modules, output_dir):
    with local.LocalExecutor(1) as executor:
        return evaluate_policy_lib.evaluate(modules, policies.parse("heuristic"), executor, progress=False)


@pytest.mark.parametrize("cache", [False, True], ids=["no_cache", "compile_cache"])
@pytest.mark.parametrize("tool", _TOOLS)
def test_collection_without_a_tool_stops_saying_what_to_install_and_commits_nothing(
    tool, cache, small_modules, tmp_path, monkeypatch
):
    monkeypatch.setenv("PATH", _path_without(tool, tmp_path))
    compile_cache.compiler_version.cache_clear()  # The cache asks the compiler for its version first.
    out = str(tmp_path / "out")

    with pytest.raises(task_lib.ToolError, match=f"'{tool}' was not found on PATH.*apt-get install clang-22 llvm-22"):
        _collect(small_modules[:2], out, cache_dir=str(tmp_path / "cache") if cache else None)

    assert os.listdir(os.path.join(out, collection.PROFILES_DIR)) == []


@pytest.mark.parametrize("tool", _TOOLS)
def test_evaluation_without_a_tool_stops_saying_what_to_install(tool, small_modules, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", _path_without(tool, tmp_path))

    with pytest.raises(task_lib.ToolError, match=f"'{tool}' was not found on PATH.*apt-get install clang-22 llvm-22"):
        _evaluate(small_modules[:2], str(tmp_path / "eval"))


def test_export_without_saved_model_cli_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow.python.tools.saved_model_cli", None)
    aot_dir = str(tmp_path / "aot")

    with pytest.raises(export_model_lib.ExportError, match=r"saved_model_cli .* is missing .*install .*make setup"):
        export_model_lib.aot_compile(str(tmp_path / "saved_model"), aot_dir, "x86_64-pc-linux")

    assert not os.path.exists(aot_dir)


def test_a_clang_that_does_not_send_inlining_default_stops_collection_naming_the_clang_to_use(
    small_modules, fake_bin, tmp_path
):
    injection.write_fake_clang(fake_bin, "no_default")
    out = str(tmp_path / "out")

    with pytest.raises(env.FeatureMismatchError, match=r"'inlining_default'.*Use clang-22 with"):
        _collect(small_modules[:2], out)

    assert os.listdir(os.path.join(out, collection.PROFILES_DIR)) == []
