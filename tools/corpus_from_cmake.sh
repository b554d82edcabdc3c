#!/bin/bash
# Makes an MLGO corpus from a CMake project: configures it with clang-22 at -Oz, exporting compile_commands.json
# (nothing is built), then runs extract_corpus --compile_commands, which re-runs each command with embedded bitcode.
#   tools/corpus_from_cmake.sh SOURCE_DIR CORPUS_DIR [extra cmake arguments...]
set -euo pipefail
if [ $# -lt 2 ]; then echo "usage: $0 SOURCE_DIR CORPUS_DIR [cmake arguments...]" >&2; exit 2; fi
root=$(cd "$(dirname "$0")/.." && pwd)
source_dir=$1 corpus_dir=$2; shift 2
build_dir=$(mktemp -d -t bcmax-cmake-XXXXXX)
trap 'rm -rf "$build_dir"' EXIT
cmake -S "$source_dir" -B "$build_dir" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON -DCMAKE_C_COMPILER=clang-22 \
  -DCMAKE_CXX_COMPILER=clang++-22 -DCMAKE_BUILD_TYPE= -DCMAKE_C_FLAGS=-Oz -DCMAKE_CXX_FLAGS=-Oz "$@" >/dev/null
"$root/.venv/bin/python" -m compiler_opt.tools.extract_corpus \
  --compile_commands="$build_dir/compile_commands.json" --output_dir="$corpus_dir" --jobs="$(nproc)"
