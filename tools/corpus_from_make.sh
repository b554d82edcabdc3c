#!/bin/bash
# Makes an MLGO corpus from a Make project: builds a copy of the tree with clang-22 at -Oz and embedded bitcode
# (CC, CXX, CFLAGS, CXXFLAGS on make's command line), then runs extract_corpus on the objects.
#   tools/corpus_from_make.sh SOURCE_DIR CORPUS_DIR [extra make arguments...]
# A makefile that ignores CFLAGS needs its own variable instead (e.g. Lua's MYCFLAGS): pass it as an argument.
set -euo pipefail
if [ $# -lt 2 ]; then echo "usage: $0 SOURCE_DIR CORPUS_DIR [make arguments...]" >&2; exit 2; fi
root=$(cd "$(dirname "$0")/.." && pwd)
source_dir=$1 corpus_dir=$2; shift 2
tree=$(mktemp -d -t bcmax-make-XXXXXX)
trap 'rm -rf "$tree"' EXIT
cp -r "$source_dir/." "$tree"
flags="-Oz -Xclang -fembed-bitcode=all"
make -C "$tree" -j "$(nproc)" CC=clang-22 CXX=clang++-22 CFLAGS="$flags" CXXFLAGS="$flags" "$@" >/dev/null
"$root/.venv/bin/python" -m compiler_opt.tools.extract_corpus --input="$tree" --output_dir="$corpus_dir" \
  --jobs="$(nproc)"
