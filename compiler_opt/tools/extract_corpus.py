r"""Extracts an MLGO corpus from a build with embedded bitcode.

From objects already built with `-Xclang -fembed-bitcode=all` (any directory, scanned recursively):

  python -m compiler_opt.tools.extract_corpus --input=build/ --output_dir=corpus/

From a compile_commands.json (each command is re-run with clang-22, embedded bitcode and a
temporary `-c -o`; the build tree is not touched):

  python -m compiler_opt.tools.extract_corpus \
      --compile_commands=build/compile_commands.json --output_dir=corpus/ --jobs=2

Output: an MLGO corpus in --output_dir (new or empty): corpus_description.json, NAME.bc, NAME.cmd
(see compiler_opt/rl/corpus.py). Objects without embedded bitcode and failed compiles are logged,
skipped and counted in the summary printed at the end.
"""

import os
import sys

from absl import app, flags

from compiler_opt import gin_setup
from compiler_opt.rl import extract_corpus_lib

_INPUT = flags.DEFINE_string("input", None, "Directory of object files built with -Xclang -fembed-bitcode=all.")
_COMPILE_COMMANDS = flags.DEFINE_string(
    "compile_commands", None, "compile_commands.json whose commands are re-run to make objects."
)
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "New or empty corpus directory.")
_JOBS = flags.DEFINE_integer("jobs", os.cpu_count() or 1, "Parallel compiles / llvm-objcopy runs.")
_CLANG = flags.DEFINE_string("clang", "clang-22", "C compiler for --compile_commands.")
_CLANGXX = flags.DEFINE_string("clangxx", "clang++-22", "C++ compiler for --compile_commands.")
_OBJCOPY = flags.DEFINE_string("llvm_objcopy", "llvm-objcopy-22", "llvm-objcopy binary.")
_GIN_FILES = flags.DEFINE_multi_string("gin_files", [], "Gin config files.")
_GIN_BINDINGS = flags.DEFINE_multi_string("gin_bindings", [], "Gin bindings.")

flags.mark_flag_as_required("output_dir")
flags.mark_flags_as_mutual_exclusive(["input", "compile_commands"], required=True)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    gin_setup.parse(_GIN_FILES.value, _GIN_BINDINGS.value)
    if _INPUT.value:
        summary = extract_corpus_lib.extract_from_directory(
            _INPUT.value, _OUTPUT_DIR.value, objcopy=_OBJCOPY.value, jobs=_JOBS.value
        )
    else:
        summary = extract_corpus_lib.extract_from_compile_commands(
            _COMPILE_COMMANDS.value,
            _OUTPUT_DIR.value,
            clang=_CLANG.value,
            clangxx=_CLANGXX.value,
            objcopy=_OBJCOPY.value,
            jobs=_JOBS.value,
        )
    print(summary.describe())
    for path in summary.no_sections:
        print(f"  no embedded bitcode: {path}")
    for failure in summary.failed:
        print(f"  failed: {failure.path}: {failure.reason.splitlines()[-1] if failure.reason else ''}")
    if not summary.modules:
        sys.exit("no module extracted: build the objects with -Xclang -fembed-bitcode=all")


def run():
    app.run(main)


if __name__ == "__main__":
    run()
