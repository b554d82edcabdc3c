"""Builds (or takes from the cache) the default corpus and puts it in --output_dir.

  python -m compiler_opt.tools.make_default_corpus --output_dir=build/default_corpus

Input: pinned PyPI sdists (brotli, zstandard's zstd, lz4, fasttext, ujson's double-conversion),
downloaded once into the cache ($BCMAX_CACHE_DIR, default ~/.cache/compiler_opt_bcmax/).
Output: an MLGO corpus (corpus_description.json, NAME.bc, NAME.cmd; see compiler_opt/rl/corpus.py)
plus default_corpus_manifest.json (modules' library and language, build time), hard-linked from
the cache. Prints modules per library, C vs C++ and the time taken. A cached run takes seconds.
"""

import os
import sys
import time

import gin
from absl import app, flags, logging

from compiler_opt.rl import make_default_corpus_lib

_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", None, "Where to put the corpus (replaced if it holds another default corpus)."
)
_CACHE_DIR = flags.DEFINE_string(
    "cache_dir", None, "Cache root (default: $BCMAX_CACHE_DIR or ~/.cache/compiler_opt_bcmax)."
)
_JOBS = flags.DEFINE_integer("jobs", os.cpu_count() or 1, "Parallel compiles.")
_GIN_FILES = flags.DEFINE_multi_string("gin_files", [], "Gin config files.")
_GIN_BINDINGS = flags.DEFINE_multi_string("gin_bindings", [], "Gin bindings.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    gin.parse_config_files_and_bindings(_GIN_FILES.value, _GIN_BINDINGS.value, skip_unknown=False)
    logging.info("gin config:\n%s", gin.config_str())
    start = time.monotonic()
    try:
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
    for library, count in sorted(manifest.counts_by("library").items()):
        print(f"  {library:<20} {count:4d} modules")
    print(
        f"built once in {manifest.build_seconds:.1f} s with {manifest.clang_version}; "
        f"this run took {time.monotonic() - start:.1f} s (cache: {cached_dir})"
    )


def run():
    app.run(main)


if __name__ == "__main__":
    run()
