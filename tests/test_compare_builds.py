"""Specification of compiler_opt/tools/compare_builds.py: a program built stock and with the exported inliner plugin,
linked the same way, smoke-tested, and compared by linked size.

Integration tests build the brotli command-line tool (from the brotli sdist of the default corpus) and a two-file
Make program (tests/testdata/tiny_program) with the real clang-22, using one export of a hand-set policy (inline iff
the callee has at most two basic blocks) per module.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

from compiler_opt.rl import corpus
from compiler_opt.tools import bundled_programs, compare_builds_lib, export_model_lib
from tests import export_policy_fixtures

_TINY = os.path.join(os.path.dirname(__file__), "testdata", "tiny_program")
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_recorded_compiles_whose_source_or_object_is_gone_are_left_out_of_compile_commands(tmp_path):
    records = tmp_path / "records"
    records.mkdir()
    (tmp_path / "a.c").write_text("int a;\n")
    (tmp_path / "a.o").write_bytes(b"")
    (tmp_path / "abi.c").write_text("int abi;\n")  # like CMake's ABI probe: its scratch object is deleted
    kept = [str(tmp_path), "clang-22", "-c", "a.c", "-o", "a.o", "-Oz"]
    probe = [str(tmp_path / "CMakeScratch"), "clang-22", "-c", "probe.c", "-o", "probe.o"]
    abi_probe = [str(tmp_path), "clang-22", "-c", str(tmp_path / "abi.c"), "-o", "scratch/abi.o"]
    for i, argv in enumerate((kept, probe, abi_probe)):
        (records / f"{i}.rec").write_bytes("\0".join(argv).encode() + b"\0")
    objects = compare_builds_lib.collect_compile_commands(str(records), str(tmp_path / "cc.json"))
    entries = json.loads((tmp_path / "cc.json").read_text())
    assert [e["file"] for e in entries] == [str(tmp_path / "a.c")]
    assert entries[0]["arguments"] == kept[1:]
    assert objects == [str(tmp_path / "a.o")]


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    """The exported plugin of the hand-set policy."""
    root = tmp_path_factory.mktemp("compare_policy")
    policy = export_policy_fixtures.write_rule_policy(str(root))
    export_model_lib.export_policy(policy, str(root / "export"))
    return str(root / "export" / export_model_lib.PLUGIN_FILENAME)


@pytest.fixture(scope="module")
def brotli(plugin, tmp_path_factory):
    work = str(tmp_path_factory.mktemp("brotli"))
    return compare_builds_lib.compare(bundled_programs.prepare("brotli", work), plugin, work)


@pytest.mark.integration
def test_brotli_builds_both_ways_reports_linked_sizes_and_passes_its_smoke_test(brotli):
    assert brotli.ok, brotli.failure
    for build in (brotli.stock, brotli.plugin):
        assert build.smoke.passed, build.smoke.output
        assert "brotli smoke test passed" in build.smoke.output
        assert build.objects >= 30  # common, dec, enc and the tool: all compiled through the wrapper
        assert 0 < build.stripped_bytes < build.file_bytes == os.path.getsize(build.binary)
        assert build.sections[".text"] > 100_000 and ".rodata" in build.sections and ".symtab" not in build.sections
    with open(brotli.stock.binary, "rb") as s, open(brotli.plugin.binary, "rb") as p:
        assert s.read() != p.read(), "the plugin's decisions differ from -Oz's on brotli, so must the programs"
    summary = brotli.to_json()
    assert summary["plugin"]["stripped_bytes"] == brotli.plugin.stripped_bytes
    assert summary["ratios"]["linked_stripped"] == round(brotli.plugin.stripped_bytes / brotli.stock.stripped_bytes, 4)


@pytest.mark.integration
def test_only_the_plugin_build_loads_the_plugin(brotli, plugin):
    def commands(build):
        with open(build.compile_commands) as f:
            return [e["arguments"] for e in json.load(f)]

    stock, with_plugin = commands(brotli.stock), commands(brotli.plugin)
    assert len(stock) == len(with_plugin) == brotli.stock.objects
    assert all(f"-fpass-plugin={plugin}" not in args and "-Oz" in args for args in stock)
    assert all(args[-1] == f"-fpass-plugin={plugin}" for args in with_plugin)


@pytest.mark.integration
def test_the_stock_build_gives_a_corpus_of_every_brotli_source(brotli, tmp_path):
    summary = compare_builds_lib.make_corpus(brotli, str(tmp_path / "corpus"), jobs=2)
    assert summary.failed == () and len(summary.modules) == brotli.stock.objects
    assert "enc/encode" in corpus.Corpus.load(str(tmp_path / "corpus")).names


@pytest.mark.integration
def test_without_the_plugin_flag_both_builds_are_byte_identical(plugin, tmp_path):
    project = bundled_programs.prepare("brotli", str(tmp_path))
    flags = compare_builds_lib.BuildFlags(plugin_flags=())
    result = compare_builds_lib.compare(project, plugin, str(tmp_path), flags=flags)
    assert result.ok, result.failure
    with open(result.stock.binary, "rb") as s, open(result.plugin.binary, "rb") as p:
        assert s.read() == p.read()


def _compare_builds(*args):
    return subprocess.run(
        [sys.executable, "-m", "compiler_opt.tools.compare_builds", *args],
        cwd=_ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )


@pytest.mark.integration
def test_a_program_failing_its_smoke_test_is_reported_as_a_failure_not_a_size(plugin, tmp_path):
    proc = _compare_builds(
        f"--plugin={plugin}",
        f"--work_dir={tmp_path / 'work'}",
        f"--source_dir={_TINY}",
        "--build_command=make",
        "--binary=tiny",
        '--smoke_test=test "$("$PROGRAM" ab abc)" = 14',  # 2*2 + 3*3 is 13
        f"--json_out={tmp_path / 'out.json'}",
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "tiny_program FAILED: stock build FAILED its smoke test; plugin build FAILED its smoke test" in proc.stdout
    [result] = json.loads((tmp_path / "out.json").read_text())
    assert result["ok"] is False and "ratios" not in result
    assert "stripped_bytes" not in result["stock"] and "stripped_bytes" not in result["plugin"]
    assert result["stock"]["built"] and not result["stock"]["smoke_test_passed"]


@pytest.mark.integration
def test_a_compile_commands_json_is_rebuilt_linked_and_tested_both_ways(plugin, tmp_path):
    source = tmp_path / "src"
    shutil.copytree(_TINY, source)
    entries = [
        {"directory": str(source), "arguments": ["cc", "-O2", "-c", f, "-o", f[:-2] + ".o"], "file": f}
        for f in ("main.c", "squares.c")
    ]
    (source / "compile_commands.json").write_text(json.dumps(entries))
    proc = _compare_builds(
        f"--plugin={plugin}",
        f"--work_dir={tmp_path / 'work'}",
        f"--source_dir={source}",
        f"--compile_commands={source / 'compile_commands.json'}",
        "--binary=tiny",
        '--smoke_test=test "$("$PROGRAM" ab abc)" = 13',
        f"--json_out={tmp_path / 'out.json'}",
        f"--corpus_dir={tmp_path / 'corpus'}",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [result] = json.loads((tmp_path / "out.json").read_text())
    assert result["stock"]["smoke_test_passed"] and result["plugin"]["smoke_test_passed"]
    assert result["stock"]["objects"] == result["plugin"]["objects"] == 2
    assert result["stock"]["stripped_bytes"] > 0 and result["plugin"]["stripped_bytes"] > 0
    assert sorted(corpus.Corpus.load(str(tmp_path / "corpus")).names) == ["main", "squares"]
