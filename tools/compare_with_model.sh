#!/bin/bash
# Rebuilds a program with a trained model (the exported pass plugin) and with stock clang-22 -Oz, links both with
# -Wl,--gc-sections, runs the smoke test on both and prints the linked sizes (compiler_opt.tools.compare_builds).
#   tools/compare_with_model.sh POLICY SOURCE_DIR BINARY 'BUILD COMMAND' 'SMOKE TEST' [more compare_builds flags]
# POLICY: the shipped model (models/inliner_size), a saved_policy, a bc_max run directory (the iteration it chose on
# validation) or an exported libbcmax_inliner.so. The build
# command runs in a copy of SOURCE_DIR with CC/CXX set; BINARY is the program it links, relative to the tree; the
# smoke test gets the program as $PROGRAM and must exit 0. Example:
#   tools/compare_with_model.sh models/inliner_size ~/src/prog build/prog \
#     'cmake -S . -B build -DCMAKE_C_COMPILER=$CC && cmake --build build' '"$PROGRAM" --version'
set -euo pipefail
if [ $# -lt 5 ]; then
  echo "usage: $0 POLICY SOURCE_DIR BINARY 'BUILD COMMAND' 'SMOKE TEST' [compare_builds flags...]" >&2; exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
policy=$1 source_dir=$2 binary=$3 build=$4 smoke=$5; shift 5
case "$policy" in
  *.so) model=--plugin="$policy" ;;
  *) model=--policy="$policy" ;;
esac
work_dir=${WORK_DIR:-build/compare/$(basename "$source_dir")}
exec "$root/.venv/bin/python" -m compiler_opt.tools.compare_builds "$model" --work_dir="$work_dir" \
  --source_dir="$source_dir" --binary="$binary" --build_command="$build" --smoke_test="$smoke" "$@"
