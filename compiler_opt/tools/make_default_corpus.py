"""Builds (or takes from the cache) a default corpus and puts it in --output_dir.

  python -m compiler_opt.tools.make_default_corpus --output_dir=build/default_corpus
  python -m compiler_opt.tools.make_default_corpus --corpus=v2 --codebases=zlib,re2 \
      --max_modules_per_codebase=20 --output_dir=build/corpus_v2_sample
  python -m compiler_opt.tools.make_default_corpus --corpus=v2_large --output_dir=build/corpus_v2_large

--corpus=v1 (default): the 91-module corpus of 5 libraries (brotli, zstandard's zstd, lz4,
fasttext, ujson's double-conversion). --corpus=v2: the codebases of
compiler_opt/rl/corpus_v2_recipes.py, or the subset chosen by --codebases and
--max_modules_per_codebase (a deterministic sample, --sample_seed); only the TUs the subset needs
are compiled, each once (compile results are cached per TU, so an interrupted build resumes).
Input: pinned sdists, downloaded once into the cache ($BCMAX_CACHE_DIR, default
~/.cache/compiler_opt_bcmax/). Output: an MLGO corpus (corpus_description.json, NAME.bc, NAME.cmd;
see compiler_opt/rl/corpus.py) plus default_corpus_manifest.json (modules' codebase and language;
for v2 also each codebase's version, SHA-256, license, counts and what was left out and why),
hard-linked from the cache. Prints modules per codebase, C vs C++ and the time taken.

--corpus=v2_large: the large-modules corpus, the TUs corpus v2 leaves out as slow (the pinned list
compiler_opt/rl/corpus_v2_slow.json), of --codebases or of all, built with a limit of
corpus_v2_lib.LARGE_MAX_COMPILE_SECONDS instead (corpus_v2_lib.build_large_modules). `bc_max
--large_data_path` adds those the split puts in validation to validation.

--write_slow_list=PATH (v2, whole corpus): measures every TU against the CPU-time limit instead of
reading compiler_opt/rl/corpus_v2_slow.json, then writes the TUs found slow to PATH in that file's
format (see compiler_opt/rl/corpus_v2_lib.py), to pin them for every later build.
"""

import datetime
import os
import sys
import time

from absl import app, flags

from compiler_opt import gin_setup
from compiler_opt.rl import corpus_v2_lib, make_default_corpus_lib

_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", None, "Where to put the corpus (replaced if it holds another default corpus)."
)
_CACHE_DIR = flags.DEFINE_string(
    "cache_dir", None, "Cache root (default: $BCMAX_CACHE_DIR or ~/.cache/compiler_opt_bcmax)."
)
_JOBS = flags.DEFINE_integer("jobs", 2, "Parallel compiles.")
_CORPUS = flags.DEFINE_enum("corpus", "v1", ["v1", "v2", "v2_large"], "Which default corpus.")
_CODEBASES = flags.DEFINE_list("codebases", [], "v2 only: codebases to include (default: all).")
_MAX_MODULES = flags.DEFINE_integer(
    "max_modules_per_codebase", 0, "v2 only: at most this many modules per codebase (0: all)."
)
_SAMPLE_SEED = flags.DEFINE_integer("sample_seed", 0, "v2 only: seed of the per-codebase sample.")
_COMPILE = flags.DEFINE_bool(
    "compile", True, "v2 only: --nocompile makes a corpus of what is already cached, compiling nothing."
)
_WRITE_SLOW_LIST = flags.DEFINE_string(
    "write_slow_list", None, "v2, whole corpus: measure every TU and write the slow ones to this file."
)
_PROGRESS = flags.DEFINE_bool("progress", True, "v2 only: show a progress bar on stderr.")
_GIN_FILES = flags.DEFINE_multi_string("gin_files", [], "Gin config files.")
_GIN_BINDINGS = flags.DEFINE_multi_string("gin_bindings", [], "Gin bindings.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    gin_setup.parse(_GIN_FILES.value, _GIN_BINDINGS.value)
    start = time.monotonic()
    stats = None
    try:
        if _CORPUS.value == "v2_large":
            if _MAX_MODULES.value or _WRITE_SLOW_LIST.value:
                raise app.UsageError("--corpus=v2_large takes every slow TU: drop --max_modules and --write_slow_list")
            cached_dir, stats = corpus_v2_lib.build_large_modules(
                cache_dir=_CACHE_DIR.value,
                jobs=_JOBS.value,
                codebases=tuple(_CODEBASES.value),
                progress=_PROGRESS.value,
                compile=_COMPILE.value,
            )
        elif _CORPUS.value == "v2":
            selection = corpus_v2_lib.Selection(tuple(_CODEBASES.value), _MAX_MODULES.value, _SAMPLE_SEED.value)
            if _WRITE_SLOW_LIST.value and (_CODEBASES.value or _MAX_MODULES.value):
                raise app.UsageError("--write_slow_list measures the whole corpus: drop --codebases and --max_modules")
            measure = {"slow_list": None} if _WRITE_SLOW_LIST.value else {}
            cached_dir, stats = corpus_v2_lib.build_corpus_v2(
                cache_dir=_CACHE_DIR.value,
                jobs=_JOBS.value,
                selection=selection,
                progress=_PROGRESS.value,
                compile=_COMPILE.value,
                **measure,
            )
            if _WRITE_SLOW_LIST.value:
                manifest = make_default_corpus_lib.read_manifest(cached_dir)
                when = datetime.date.today().isoformat()
                measured_on = f"{manifest.clang_version}; {os.cpu_count()} cores; {_JOBS.value} jobs; {when}"
                slow = corpus_v2_lib.slow_list_of(manifest, measured_on)
                corpus_v2_lib.write_slow_list(_WRITE_SLOW_LIST.value, slow)
                print(f"slow list: {sum(map(len, slow.codebases.values()))} TUs in {_WRITE_SLOW_LIST.value}")
        else:
            if _CODEBASES.value or _MAX_MODULES.value or _WRITE_SLOW_LIST.value:
                raise app.UsageError("--codebases, --max_modules_per_codebase and --write_slow_list need --corpus=v2")
            cached_dir = make_default_corpus_lib.build_default_corpus(cache_dir=_CACHE_DIR.value, jobs=_JOBS.value)
        where = cached_dir
        if _OUTPUT_DIR.value:
            make_default_corpus_lib.install_corpus(cached_dir, _OUTPUT_DIR.value)
            where = _OUTPUT_DIR.value
    except make_default_corpus_lib.DefaultCorpusError as e:
        sys.exit(f"make_default_corpus: {e}")
    manifest = make_default_corpus_lib.read_manifest(cached_dir)
    languages = manifest.counts_by("language")
    print(
        f"default corpus: {len(manifest.modules)} modules "
        f"({languages.get('c', 0)} C, {languages.get('c++', 0)} C++) in {where}"
    )
    if manifest.codebases:
        print(f"  {'codebase':<18} {'version':>10} {'TUs':>5} {'modules':>7} {'C':>5} {'C++':>5} {'left out':>8}")
        for cb in manifest.codebases:
            left_out = sum(x.count for x in cb.left_out)
            c, cxx = cb.languages.get("c", 0), cb.languages.get("c++", 0)
            print(
                f"  {cb.name:<18} {cb.version:>10} {cb.tu_count:5d} {cb.module_count:7d} {c:5d} {cxx:5d} {left_out:8d}"
            )
        print(f"{len(manifest.codebases)} codebases")
        cpu = sum(cb.compile_cpu_seconds for cb in manifest.codebases)
        print(
            f"cold build: {manifest.build_seconds:.1f} s wall, {cpu:.1f} s CPU, summed over every TU compile "
            "of these codebases (one job at a time)"
        )
        print(f"this run compiled {stats.compiled} TUs in {stats.wall_seconds:.1f} s with {_JOBS.value} jobs")
    else:
        for library, count in sorted(manifest.counts_by("library").items()):
            print(f"  {library:<20} {count:4d} modules")
        print(f"built once in {manifest.build_seconds:.1f} s with {manifest.clang_version}")
    print(f"this run took {time.monotonic() - start:.1f} s (cache: {cached_dir})")


def run():
    app.run(main)


if __name__ == "__main__":
    run()
