"""Specification of default corpus v2: pinned codebases, built per TU into a cache, any subset on request."""

import dataclasses
import fnmatch
import io
import json
import os
import re
import subprocess
import sys
import tarfile

import pytest

from compiler_opt.rl import corpus, corpus_v2_lib, corpus_v2_recipes, splits
from compiler_opt.rl import make_default_corpus_lib as v1
from compiler_opt.rl.corpus_v2_recipes import Codebase, Exclusion

# The recipes (no build).

_RESERVED = ("xxhash", "zopfli", "regex", "greenlet", "pycryptodome", "sqlite", "apsw", "ppmd", "py7zr", "bullet")


def test_every_codebase_pins_version_sha256_and_license():
    for cb in corpus_v2_recipes.CODEBASES:
        assert re.fullmatch(r"[0-9a-f]{64}", cb.sdist.sha256), cb.name
        assert cb.sdist.version and cb.sdist.version in cb.sdist.filename, cb.name
        assert cb.license.strip(), cb.name


def test_codebase_names_are_distinct_path_components():
    names = [cb.name for cb in corpus_v2_recipes.CODEBASES]
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[a-z0-9_]+", n) for n in names)


def test_the_v1_libraries_are_kept_with_their_files_and_flags():
    by_name = {cb.name: cb for cb in corpus_v2_recipes.CODEBASES}
    for lib in v1.PINNED_LIBRARIES:
        cb = by_name[lib.name]
        assert (cb.sdist, cb.root, cb.sources, cb.strip_prefix, cb.amalgamation) == (
            lib.sdist,
            lib.root,
            lib.sources,
            lib.strip_prefix,
            lib.amalgamation,
        )
        assert (*cb.flags, *(cb.cxx_flags if lib.language == "c++" else cb.c_flags)) == lib.flags


def test_no_reserved_evaluation_code_is_in_any_recipe():
    for cb in corpus_v2_recipes.CODEBASES:
        text = json.dumps([cb.name, cb.sdist.project, cb.root, cb.sources, cb.strip_prefix]).lower()
        assert not [r for r in _RESERVED if r in text], cb.name


def test_an_unknown_codebase_is_an_error_naming_the_known_ones():
    with pytest.raises(v1.DefaultCorpusError, match=r"unknown codebases \['nope'\]; known: brotli, zstd"):
        corpus_v2_lib.select_codebases(["nope"])


def test_a_recipes_sample_spreads_over_the_split_like_the_codebase_it_samples():
    # A quarter of a large codebase, as duckdb's recipe keeps: its files must still go mostly to train (the split
    # sends 65% of a training codebase's files there), not only to validation and test.
    paths = [f"src/part{i // 40}/file{i}.cpp" for i in range(1600)]
    names = {p: "big/" + p.removesuffix(".cpp") for p in paths}
    sample = corpus_v2_lib.recipe_sample(paths, names, 400)
    assert len(sample) == 400 and len(set(sample)) == 400 and set(sample) <= set(paths)
    parts = splits.assign([names[p] for p in sample] + ["other/a.c"], splits.SplitPolicy(test_codebases=("other",)))
    train = sum(parts[names[p]] == splits.TRAIN for p in sample)
    assert 0.55 < train / 400 < 0.75


def test_the_large_modules_are_the_pinned_slow_tus_named_as_in_corpus_v2():
    pinned = corpus_v2_lib.read_slow_list(corpus_v2_lib.SLOW_LIST_FILE)
    names = corpus_v2_lib.slow_module_names()
    assert len(names) == sum(len(v) for v in pinned.codebases.values())
    assert {splits.codebase_of(n) for n in names} == {c for c, v in pinned.codebases.items() if v}
    (zstd,) = corpus_v2_lib.slow_module_names(["zstd"])
    assert zstd.startswith("zstd/") and not zstd.endswith((".c", ".cc", ".cpp"))
    with pytest.raises(v1.DefaultCorpusError, match="unknown codebases"):
        corpus_v2_lib.slow_module_names(["nope"])
    # A codebase with no slow TU has no large modules: nothing to build, said before anything is fetched.
    with pytest.raises(v1.DefaultCorpusError, match=r"leaves out no TU of \['zlib'\]"):
        corpus_v2_lib.build_large_modules(cache_dir="/nonexistent", codebases=["zlib"])


# Building (tiny codebases from local sdists; pip finds them with --find-links).


def _sdist(tmp_path, project, files, sha256=None):
    archive = tmp_path / f"{project}-1.0.tar.gz"
    files = {
        **{f"{project}-1.0/{k}": v for k, v in files.items()},
        f"{project}-1.0/setup.py": f"from setuptools import setup\nsetup(name='{project}', version='1.0')\n",
        f"{project}-1.0/PKG-INFO": f"Metadata-Version: 2.1\nName: {project}\nVersion: 1.0\n",
    }
    with tarfile.open(archive, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return v1.Sdist(
        project,
        "1.0",
        archive.name,
        sha256 or v1.sha256_of(str(archive)),
        pip_args=("--no-index", "--find-links", str(tmp_path), "--no-build-isolation"),
    )


def _five_functions(tmp_path):
    files = {f"src/f{i}.c": f"int f{i}(int x) {{ return x + {i}; }}\n" for i in range(5)}
    return Codebase(
        name="five", sdist=_sdist(tmp_path, "five", files), license="MIT", root="five-1.0", sources=("src/*.c",)
    )


def _unfetchable(tmp_path):
    sdist = _sdist(tmp_path, "other", {"a.c": "int a;\n"}, sha256="0" * 64)
    return Codebase(name="other", sdist=sdist, license="MIT", root="other-1.0", sources=("*.c",))


def _results(cache, codebase):
    (directory,) = (d for d in os.listdir(cache / "corpus_v2" / "codebases") if d.startswith(codebase + "-"))
    with open(cache / "corpus_v2" / "codebases" / directory / corpus_v2_lib.RESULTS_FILE) as f:
        return [json.loads(line) for line in f]


@pytest.mark.integration
def test_a_selection_by_module_names_compiles_only_those_tus(tmp_path):
    cache = tmp_path / "cache"
    codebases = (_five_functions(tmp_path),)
    named = ("five/src/f1", "five/src/f4", "five/src/nonexistent")
    selection = corpus_v2_lib.Selection(codebases=("five",), modules=named)
    path, stats = corpus_v2_lib.build_corpus_v2(
        str(cache), jobs=1, selection=selection, codebases=codebases, progress=False
    )
    assert stats.compiled == 2
    assert sorted(r["name"] for r in _results(cache, "five")) == ["five/src/f1", "five/src/f4"]
    assert corpus.Corpus.load(path).names == ("five/src/f1", "five/src/f4")
    (record,) = v1.read_manifest(path).codebases
    assert record.module_count == 2
    assert [(x.count, x.reason) for x in record.left_out] == [(3, "not among the modules the selection names")]
    # The rest of the codebase is built on request later, beside the named TUs already in the cache.
    whole, stats = corpus_v2_lib.build_corpus_v2(
        str(cache), jobs=1, selection=corpus_v2_lib.Selection(("five",)), codebases=codebases, progress=False
    )
    assert stats.compiled == 3 and len(corpus.Corpus.load(whole).names) == 5


@pytest.mark.integration
def test_a_subset_builds_only_its_codebases_and_sample_and_a_rerun_only_reads_the_cache(tmp_path):
    cache = tmp_path / "cache"
    codebases = (_five_functions(tmp_path), _unfetchable(tmp_path))

    def build(max_modules):
        selection = corpus_v2_lib.Selection(codebases=("five",), max_modules=max_modules, seed=3)
        return corpus_v2_lib.build_corpus_v2(
            str(cache), jobs=1, selection=selection, codebases=codebases, progress=False
        )

    path, stats = build(2)
    # The other codebase's sdist (whose pin is wrong) was never fetched.
    assert os.listdir(cache / "sdists") == ["five-1.0.tar.gz"]
    assert stats.compiled == 2 and len(_results(cache, "five")) == 2
    two = corpus.Corpus.load(path).names
    assert len(two) == 2 and all(n.startswith("five/src/f") for n in two)

    manifest_mtime = os.stat(os.path.join(path, v1.MANIFEST_FILE)).st_mtime_ns
    again, stats = build(2)
    assert (again, stats.compiled) == (path, 0)
    assert os.stat(os.path.join(path, v1.MANIFEST_FILE)).st_mtime_ns == manifest_mtime

    # A larger sample of the same seed compiles only what it adds, and keeps the smaller one.
    bigger, stats = build(3)
    assert stats.compiled == 1 and len(_results(cache, "five")) == 3
    assert set(two) < set(corpus.Corpus.load(bigger).names)

    # Without compiling, the whole codebase is what is cached so far, and the rest is counted.
    cached, stats = corpus_v2_lib.build_corpus_v2(
        str(cache),
        jobs=1,
        selection=corpus_v2_lib.Selection(("five",)),
        codebases=codebases,
        progress=False,
        compile=False,
    )
    assert stats.compiled == 0 and len(_results(cache, "five")) == 3
    assert corpus.Corpus.load(cached).names == corpus.Corpus.load(bigger).names
    (record,) = v1.read_manifest(cached).codebases
    assert [(x.count, x.reason.split(" (")[0]) for x in record.left_out] == [(2, "not compiled yet")]


@pytest.mark.integration
def test_the_manifest_records_each_codebase_and_what_was_left_out_and_why(tmp_path):
    files = {
        "lib/add.c": "int add(int a, int b) { return a + b; }\n",
        "lib/twice.cc": "int twice(int a) { return 2 * a; }\n",
        "lib/broken.c": "int broken( {\n",
        "lib/table.c": "const int table[3] = {1, 2, 3};\n",
        "lib/win32/only.c": "int only(void) { return 0; }\n",
    }
    codebase = Codebase(
        name="mixed",
        sdist=_sdist(tmp_path, "mixed", files),
        license="BSD-3-Clause",
        root="mixed-1.0",
        sources=("lib/**/*.c", "lib/*.cc"),
        exclude=(Exclusion("lib/win32/*", "Windows only"),),
        strip_prefix="lib/",
    )
    path, _ = corpus_v2_lib.build_corpus_v2(str(tmp_path / "cache"), jobs=2, codebases=(codebase,), progress=False)
    manifest = v1.read_manifest(path)
    assert manifest.corpus == "v2"
    assert [(m.name, m.codebase, m.language) for m in manifest.modules] == [
        ("mixed/add", "mixed", "c"),
        ("mixed/twice", "mixed", "c++"),
    ]
    assert corpus.Corpus.load(path).names == ("mixed/add", "mixed/twice")
    (record,) = manifest.codebases
    assert (record.name, record.version, record.sha256, record.license) == (
        "mixed",
        "1.0",
        codebase.sdist.sha256,
        "BSD-3-Clause",
    )
    assert (record.tu_count, record.module_count, record.languages) == (4, 2, {"c": 1, "c++": 1})
    reasons = {x.what: (x.count, x.reason) for x in record.left_out}
    assert reasons["lib/win32/*"] == (1, "Windows only")
    assert reasons["lib/broken.c"][0] == 1 and "cannot compile" in reasons["lib/broken.c"][1]
    assert reasons["lib/table.c"][0] == 1 and "no function" in reasons["lib/table.c"][1]


@pytest.mark.integration
def test_the_manifest_counts_only_the_tus_the_recipe_takes_now(tmp_path):
    # The cache of a codebase whose recipe changed (e.g. its sample) still holds results of TUs it no longer takes.
    cache = tmp_path / "cache"
    codebase = _five_functions(tmp_path)
    corpus_v2_lib.build_corpus_v2(str(cache), jobs=2, codebases=(codebase,), progress=False)
    (directory,) = os.listdir(cache / "corpus_v2" / "codebases")
    gone = {"name": "five/old", "source": "src/old.c", "status": "slow", "wall_seconds": 50.0, "cpu_seconds": 40.0}
    with open(cache / "corpus_v2" / "codebases" / directory / corpus_v2_lib.RESULTS_FILE, "a") as f:
        f.write(json.dumps(gone) + "\n")
    selection = corpus_v2_lib.Selection(max_modules=4)
    path, _ = corpus_v2_lib.build_corpus_v2(
        str(cache), jobs=2, selection=selection, codebases=(codebase,), progress=False
    )
    (record,) = v1.read_manifest(path).codebases
    assert not any("src/old.c" in x.what for x in record.left_out)
    assert record.compile_cpu_seconds < 40.0
    assert record.module_count == 4


@pytest.mark.integration
def test_tus_over_the_compile_time_limit_are_left_out_as_slow(tmp_path):
    with pytest.raises(v1.DefaultCorpusError, match=r"no module of \['five'\] .*'slow': 5"):
        corpus_v2_lib.build_corpus_v2(
            str(tmp_path / "cache"),
            jobs=1,
            codebases=(_five_functions(tmp_path),),
            max_compile_seconds=0.0,
            progress=False,
        )
    results = _results(tmp_path / "cache", "five")
    assert [r["status"] for r in results] == ["slow"] * 5
    assert all(r["cpu_seconds"] > 0 for r in results)


def _slow_list(tmp_path, codebases, max_compile_seconds=1.0):
    path = tmp_path / "slow.json"
    corpus_v2_lib.write_slow_list(str(path), corpus_v2_lib.SlowList(max_compile_seconds, "a test", codebases))
    return str(path)


@pytest.mark.integration
def test_pinned_slow_tus_are_left_out_uncompiled_and_the_rest_kept_whatever_this_machines_speed(tmp_path):
    # A limit of 0 s would leave every TU out as slow on any machine; the pinned list decides instead.
    slow_list = _slow_list(tmp_path, {"five": ("src/f1.c", "src/f3.c")})
    path, stats = corpus_v2_lib.build_corpus_v2(
        str(tmp_path / "cache"),
        jobs=1,
        codebases=(_five_functions(tmp_path),),
        max_compile_seconds=0.0,
        slow_list=slow_list,
        progress=False,
    )
    assert corpus.Corpus.load(path).names == ("five/src/f0", "five/src/f2", "five/src/f4")
    assert stats.compiled == 3
    assert sorted(r["source"] for r in _results(tmp_path / "cache", "five")) == ["src/f0.c", "src/f2.c", "src/f4.c"]
    (record,) = v1.read_manifest(path).codebases
    assert record.tu_count == 5
    ((what, count, reason),) = ((x.what, x.count, x.reason) for x in record.left_out)
    assert (what, count) == ("src/f1.c src/f3.c", 2)
    assert "too slow" in reason and "slow.json" in reason


@pytest.mark.integration
def test_a_full_builds_slow_tus_become_the_pinned_list_and_a_sample_cannot_make_one(tmp_path):
    cache = str(tmp_path / "cache")
    codebase = _five_functions(tmp_path)
    path, _ = corpus_v2_lib.build_corpus_v2(cache, jobs=2, codebases=(codebase,), slow_list=None, progress=False)
    manifest = v1.read_manifest(path)
    # As if two TUs had passed the limit on that build.
    (record,) = manifest.codebases
    slow = v1.LeftOut("src/f4.c src/f0.c", 2, "its -Oz compile is too slow")
    manifest = dataclasses.replace(manifest, codebases=(dataclasses.replace(record, left_out=(slow,)),))

    measured = corpus_v2_lib.slow_list_of(manifest, "here")
    assert measured.codebases == {"five": ("src/f0.c", "src/f4.c")}
    assert measured.max_compile_seconds == 3.0
    written = _slow_list(tmp_path, measured.codebases, measured.max_compile_seconds)
    assert corpus_v2_lib.read_slow_list(written) == dataclasses.replace(measured, measured_on="a test")

    sample = corpus_v2_lib.Selection(max_modules=2)
    sampled, _ = corpus_v2_lib.build_corpus_v2(
        cache, jobs=2, selection=sample, codebases=(codebase,), slow_list=None, progress=False
    )
    with pytest.raises(v1.DefaultCorpusError, match="full v2 build"):
        corpus_v2_lib.slow_list_of(v1.read_manifest(sampled), "here")


@pytest.mark.parametrize(
    "text", ["", "[]", '{"max_compile_seconds": 3}', '{"max_compile_seconds": 3, "codebases": {"a": "x.c"}}']
)
def test_a_damaged_slow_list_is_an_error_naming_the_file_and_the_fix(tmp_path, text):
    path = tmp_path / "slow.json"
    path.write_text(text)
    with pytest.raises(v1.DefaultCorpusError, match=f"{path} is not a slow list.*restore it from git"):
        corpus_v2_lib.read_slow_list(str(path))


def test_the_shipped_slow_list_names_only_codebases_and_sources_of_the_recipes():
    shipped = corpus_v2_lib.read_slow_list(corpus_v2_lib.SLOW_LIST_FILE)
    recipes = {cb.name: cb for cb in corpus_v2_recipes.CODEBASES}
    assert set(shipped.codebases) == set(recipes)
    for name, sources in shipped.codebases.items():
        patterns = recipes[name].sources
        # "**/" in a recipe's pattern also matches no directory at all (glob's rule).
        patterns = [*patterns, *(p.replace("**/", "") for p in patterns)]
        assert all(any(fnmatch.fnmatchcase(s, p) for p in patterns) for s in sources), name


def test_module_names_start_with_the_codebase_and_keep_a_suffix_only_to_stay_distinct():
    codebase = Codebase(name="x", sdist=None, license="MIT", root="x", sources=(), strip_prefix="src/")
    assert corpus_v2_lib.module_names(codebase, ["src/a.c", "src/a.cpp", "src/io/b.c"]) == {
        "src/a.c": "x/a.c",
        "src/a.cpp": "x/a.cpp",
        "src/io/b.c": "x/io/b",
    }


@pytest.mark.integration
def test_cli_builds_a_sample_of_one_real_codebase_and_prints_its_counts(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "compiler_opt.tools.make_default_corpus",
            "--corpus=v2",
            "--codebases=lz4",
            "--max_modules_per_codebase=2",
            "--progress=false",
            f"--output_dir={tmp_path / 'c'}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "default corpus: 2 modules (2 C, 0 C++)" in out
    assert re.search(r"lz4\s+4\.4\.5\s+4\s+2\s+2\s+0\s+2", out)
    names = corpus.Corpus.load(str(tmp_path / "c")).names
    assert len(names) == 2 and all(n.startswith("lz4/") for n in names)
