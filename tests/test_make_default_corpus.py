"""Specification of the default corpus: pinned real C/C++ libraries, cached, replayable by clang-22."""

import io
import os
import pathlib
import subprocess
import sys
import tarfile

import pytest

from compiler_opt.rl import corpus, extract_corpus_lib
from compiler_opt.rl import make_default_corpus_lib as lib

# Amalgamation splitting (hand-built input).

_AMALGAMATION = """\
#define SETTING 1
/**** start inlining common/a.h ****/
int a(void);
/**** start inlining b.h ****/
int b(void);
/**** ended inlining b.h ****/
/**** ended inlining common/a.h ****/
/**** start inlining common/a.c ****/
/**** skipping file: a.h ****/
/**** skipping file: b.h ****/
int a(void) { return b(); }
/**** ended inlining common/a.c ****/
/**** start inlining compress/c.c ****/
/**** skipping file: ../common/a.h ****/
int c(void) { return a(); }
/**** ended inlining compress/c.c ****/
"""


def test_an_amalgamation_splits_back_into_its_files_with_their_includes(tmp_path):
    (tmp_path / "all.c").write_text(_AMALGAMATION)
    files = lib.split_amalgamation(str(tmp_path / "all.c"), str(tmp_path / "split"))
    assert files == ["common/a.c", "common/a.h", "common/b.h", "compress/c.c"]
    split = tmp_path / "split"
    assert (split / "common/a.h").read_text() == 'int a(void);\n#include "b.h"\n'
    assert (split / "common/a.c").read_text() == ('#include "a.h"\n#include "b.h"\nint a(void) { return b(); }\n')
    assert (split / "compress/c.c").read_text() == ('#include "../common/a.h"\nint c(void) { return a(); }\n')


def test_unbalanced_amalgamation_markers_are_rejected(tmp_path):
    (tmp_path / "all.c").write_text("/**** ended inlining x.h ****/\n")
    with pytest.raises(lib.DefaultCorpusError, match="unbalanced marker"):
        lib.split_amalgamation(str(tmp_path / "all.c"), str(tmp_path / "split"))


# Downloads (a local file stands in for PyPI).


# pip looks only in a local directory and builds the fake sdist's metadata with the venv's setuptools.
def _local_pip_args(directory):
    return ("--no-index", "--find-links", str(directory), "--no-build-isolation")


def fake_sdist(tmp_path, sha256=None):
    """A tiny sdist with one C file, and its pinned entry telling pip to find it in tmp_path."""
    files = {
        "fake-1.0/src/f.c": b"int forty_two(void) { return 42; }\n",
        "fake-1.0/setup.py": b"from setuptools import setup\nsetup(name='fake', version='1.0')\n",
        "fake-1.0/PKG-INFO": b"Metadata-Version: 2.1\nName: fake\nVersion: 1.0\n",
    }
    archive = tmp_path / "fake-1.0.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return lib.Sdist(
        project="fake",
        version="1.0",
        filename="fake-1.0.tar.gz",
        sha256=sha256 or lib.sha256_of(str(archive)),
        pip_args=_local_pip_args(tmp_path),
    )


def test_a_verified_download_lands_in_the_cache(tmp_path):
    sdist = fake_sdist(tmp_path)
    path = lib.fetch_sdist(sdist, str(tmp_path / "cache"))
    assert path == str(tmp_path / "cache" / "sdists" / "fake-1.0.tar.gz")
    assert lib.sha256_of(path) == sdist.sha256


def test_a_hash_mismatch_names_the_package_and_caches_nothing(tmp_path):
    sdist = fake_sdist(tmp_path, sha256="0" * 64)
    with pytest.raises(lib.DefaultCorpusError, match=r"fake 1\.0: .* has sha256 [0-9a-f]{64}, but 0+ is pinned"):
        lib.fetch_sdist(sdist, str(tmp_path / "cache"))
    assert os.listdir(tmp_path / "cache" / "sdists") == []


def test_an_unreachable_download_names_the_package_and_the_manual_fix(tmp_path):
    sdist = lib.Sdist("fake", "1.0", "fake-1.0.tar.gz", "0" * 64, pip_args=_local_pip_args(tmp_path))
    with pytest.raises(lib.DefaultCorpusError, match=r"cannot download fake 1\.0 .*copy fake-1\.0\.tar\.gz"):
        lib.fetch_sdist(sdist, str(tmp_path / "cache"))


@pytest.mark.integration
def test_a_build_with_a_bad_pinned_hash_fails_with_a_clear_error(tmp_path):
    library = lib.Library(
        name="fake", sdist=fake_sdist(tmp_path, sha256="f" * 64), root="fake-1.0", sources=("src/*.c",), language="c"
    )
    with pytest.raises(lib.DefaultCorpusError, match="fake 1.0.*sha256"):
        lib.build_default_corpus(cache_dir=str(tmp_path / "cache"), libraries=[library])


@pytest.mark.integration
def test_a_small_recipe_builds_a_corpus_with_prefixed_names(tmp_path):
    library = lib.Library(
        name="fake",
        sdist=fake_sdist(tmp_path),
        root="fake-1.0",
        sources=("src/*.c",),
        language="c",
        strip_prefix="src/",
    )
    path = lib.build_default_corpus(cache_dir=str(tmp_path / "cache"), libraries=[library], jobs=1)
    assert corpus.Corpus.load(path).names == ("fake/f",)
    assert lib.read_manifest(path).modules == (lib.ModuleOrigin("fake/f", "fake", "c", "src/f.c"),)


# The real default corpus.


@pytest.fixture(scope="module")
def manifest(default_corpus):
    return lib.read_manifest(default_corpus)


@pytest.mark.integration
def test_the_default_corpus_has_at_least_80_modules_of_c_and_cxx(default_corpus, manifest):
    assert len(corpus.Corpus.load(default_corpus)) == len(manifest.modules) >= 80
    languages = manifest.counts_by("language")
    assert languages["c"] > 0 and languages["c++"] > 0


@pytest.mark.integration
def test_default_module_names_start_with_their_library(manifest):
    libraries = manifest.counts_by("library")
    assert set(libraries) == {"brotli", "zstd", "lz4", "fasttext", "double_conversion"}
    assert all(m.name.startswith(m.library + "/") for m in manifest.modules)
    assert "brotli/enc/encode" in {m.name for m in manifest.modules}


@pytest.mark.integration
def test_every_default_module_recompiles_with_stock_clang22(default_corpus, tmp_path):
    modules = list(corpus.Corpus.load(default_corpus))

    def compile_one(module):
        obj = str(tmp_path / (module.name.replace("/", "__") + ".o"))
        error = extract_corpus_lib.run_compile(module.command("clang-22", obj), str(tmp_path), 600)
        return error or (None if os.path.getsize(obj) > 0 else "empty object")

    errors = extract_corpus_lib.parallel_map(compile_one, modules, os.cpu_count() or 1)
    assert {m.name: e for m, e in zip(modules, errors, strict=True) if e} == {}


@pytest.mark.integration
def test_a_second_build_reuses_the_cache(default_corpus):
    manifest_path = pathlib.Path(default_corpus, lib.MANIFEST_FILE)
    before = manifest_path.stat()
    assert lib.default_corpus_dir() == default_corpus
    after = manifest_path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


@pytest.mark.integration
def test_install_links_the_cached_corpus_and_keeps_foreign_directories(default_corpus, tmp_path):
    out = tmp_path / "corpus"
    lib.install_corpus(default_corpus, str(out))
    assert corpus.Corpus.load(str(out)).names == corpus.Corpus.load(default_corpus).names
    bc = corpus.Corpus.load(str(out)).modules[0].bc_path
    assert os.stat(bc).st_nlink >= 2
    lib.install_corpus(default_corpus, str(out))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(lib.DefaultCorpusError, match="not a default corpus"):
        lib.install_corpus(default_corpus, str(tmp_path / "mine"))
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


@pytest.mark.integration
def test_cli_prints_modules_per_library_and_language(default_corpus, tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "compiler_opt.tools.make_default_corpus", f"--output_dir={tmp_path / 'c'}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "C++) in " in out
    assert "brotli" in out and "fasttext" in out
    assert (tmp_path / "c" / corpus.DESCRIPTION_FILE).is_file()
