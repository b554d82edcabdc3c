"""Specification of corpus extraction from objects with embedded bitcode and from compile_commands.json."""

import filecmp
import json
import os
import shutil
import subprocess
import sys

import pytest

from compiler_opt.rl import corpus
from compiler_opt.rl import extract_corpus_lib as lib

TESTDATA = os.path.join(os.path.dirname(__file__), "testdata")
SOURCES = ("extract_tokens.c", "extract_matrix.c", "extract_shapes.cpp")


def compiler_for(source):
    return "clang++-22" if source.endswith(".cpp") else "clang-22"


# Names and command rewriting (no compiler needed).


def test_module_names_drop_object_and_source_suffixes():
    names = lib.unique_module_names(["a/x.o", "b/y.c.o", "z.obj"], (".o", ".obj"))
    assert names == ["a/x", "b/y", "z"]


def test_module_names_keep_the_source_suffix_when_stripping_would_collide():
    names = lib.unique_module_names(["a/x.c.o", "a/x.cc.o", "b.o"], (".o",))
    assert names == ["a/x.c", "a/x.cc", "b"]


def test_module_names_stay_distinct_for_repeated_paths():
    assert lib.unique_module_names(["s/a.c", "s/a.c"], ()) == ["s/a", "s/a.2"]


def test_a_rerun_command_embeds_bitcode_and_writes_only_the_given_object():
    command = lib.CompileCommand(
        "/b",
        ("ccache", "/usr/bin/gcc", "-Oz", "-MD", "-MF", "a.d", "-flto=thin", "-c", "a.c", "-o", "a.o"),
        "/b/a.c",
    )
    argv = lib.embed_bitcode_argv(command, "/tmp/1.o", "clang-22", "clang++-22")
    assert argv == ["clang-22", "-Oz", "a.c", "-Xclang", "-fembed-bitcode=all", "-c", "-o", "/tmp/1.o"]


def test_a_cxx_command_is_rerun_with_clangxx():
    command = lib.CompileCommand("/b", ("c++", "-c", "x.cpp"), "/b/x.cpp")
    assert lib.embed_bitcode_argv(command, "o.o", "clang-22", "clang++-22")[0] == "clang++-22"


def test_an_unreadable_compile_commands_file_names_the_fix(tmp_path):
    path = tmp_path / "compile_commands.json"
    path.write_text("[{")
    with pytest.raises(lib.ExtractionError, match="CMAKE_EXPORT_COMPILE_COMMANDS"):
        lib.read_compile_commands(str(path))


def test_compile_commands_accepts_shell_command_strings(tmp_path):
    path = tmp_path / "compile_commands.json"
    path.write_text(json.dumps([{"directory": "/b", "file": "s/a b.c", "command": "cc -c 's/a b.c'"}]))
    (entry,) = lib.read_compile_commands(str(path))
    assert entry.arguments == ("cc", "-c", "s/a b.c")
    assert entry.source == "/b/s/a b.c"


def test_extraction_refuses_a_non_empty_output_dir(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(lib.ExtractionError, match="not empty"):
        lib.extract_objects([], str(tmp_path / "out"))


# Real builds of tests/testdata with clang-22.


@pytest.fixture(scope="module")
def source_dir(tmp_path_factory):
    src = tmp_path_factory.mktemp("src")
    for source in SOURCES:
        shutil.copy(os.path.join(TESTDATA, source), src / source)
    return src


@pytest.fixture(scope="module")
def build_dir(source_dir, tmp_path_factory):
    """Objects as a build leaves them: C in c/, C++ in cpp/, one object without embedded bitcode."""
    out = tmp_path_factory.mktemp("build")
    for source in SOURCES:
        sub = out / ("cpp" if source.endswith(".cpp") else "c")
        sub.mkdir(exist_ok=True)
        argv = [compiler_for(source), "-Oz", "-Xclang", "-fembed-bitcode=all", "-c", source]
        subprocess.run([*argv, "-o", str(sub / (source + ".o"))], cwd=source_dir, check=True)
    (out / "plain").mkdir()
    subprocess.run(
        ["clang-22", "-Oz", "-c", SOURCES[0], "-o", str(out / "plain" / "no_bitcode.o")],
        cwd=source_dir,
        check=True,
    )
    return out


@pytest.mark.integration
def test_a_directory_gives_one_module_per_object_with_embedded_bitcode(build_dir, tmp_path):
    summary = lib.extract_from_directory(str(build_dir), str(tmp_path / "corpus"), jobs=2)
    assert summary.modules == ("c/extract_matrix", "c/extract_tokens", "cpp/extract_shapes")
    assert corpus.Corpus.load(str(tmp_path / "corpus")).names == summary.modules
    assert not summary.failed


@pytest.mark.integration
def test_an_object_without_embedded_bitcode_is_skipped_and_reported(build_dir, tmp_path):
    summary = lib.extract_from_directory(str(build_dir), str(tmp_path / "corpus"))
    assert summary.no_sections == (str(build_dir / "plain" / "no_bitcode.o"),)
    assert "1 objects without embedded bitcode skipped" in summary.describe()
    assert not os.path.exists(tmp_path / "corpus" / "plain")


@pytest.mark.integration
def test_a_replayed_module_is_byte_identical_to_the_original_build(build_dir, source_dir, tmp_path):
    lib.extract_from_directory(str(build_dir), str(tmp_path / "corpus"))
    modules = {m.name: m for m in corpus.Corpus.load(str(tmp_path / "corpus"))}
    for source in SOURCES:
        name = ("cpp/" if source.endswith(".cpp") else "c/") + os.path.splitext(source)[0]
        original, replayed = tmp_path / f"{source}.orig.o", tmp_path / f"{source}.replay.o"
        subprocess.run([compiler_for(source), "-Oz", "-c", source, "-o", original], cwd=source_dir, check=True)
        subprocess.run(modules[name].command("clang-22", str(replayed)), cwd=source_dir, check=True)
        assert filecmp.cmp(original, replayed, shallow=False), source


@pytest.mark.integration
def test_compile_commands_are_rerun_with_embedded_bitcode_without_touching_the_build(source_dir, tmp_path):
    (source_dir / "broken.c").write_text("int f( {")
    entries = [
        {"directory": str(source_dir), "file": s, "arguments": [compiler_for(s), "-Oz", "-c", s, "-o", s + ".o"]}
        for s in SOURCES[:2]
    ]
    entries.append({"directory": str(source_dir), "file": SOURCES[2], "command": f"g++ -Oz -MD -c {SOURCES[2]}"})
    entries.append({"directory": str(source_dir), "file": "broken.c", "arguments": ["cc", "-c", "broken.c"]})
    path = tmp_path / "compile_commands.json"
    path.write_text(json.dumps(entries))

    summary = lib.extract_from_compile_commands(str(path), str(tmp_path / "corpus"), jobs=2)

    assert summary.modules == ("extract_matrix", "extract_shapes", "extract_tokens")
    assert [f.path for f in summary.failed] == [str(source_dir / "broken.c")]
    assert "broken.c" in summary.failed[0].reason
    assert len(corpus.Corpus.load(str(tmp_path / "corpus"))) == 3
    assert sorted(os.listdir(source_dir)) == sorted([*SOURCES, "broken.c"])


@pytest.mark.integration
def test_cli_prints_the_summary(build_dir, tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "compiler_opt.tools.extract_corpus",
            f"--input={build_dir}",
            f"--output_dir={tmp_path / 'corpus'}",
            "--jobs=1",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "3 modules written" in out
    assert "no embedded bitcode: " in out
