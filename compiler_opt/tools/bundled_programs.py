"""Three real programs to compare builds on, from sdists the project fetches by name (pinned SHA-256):

- `brotli`: the brotli command-line tool (C), brotli 1.2.1. The sdist ships no build system for the tool, so a
  CMakeLists.txt naming its sources is written next to them; CMake builds it (and exports compile_commands.json).
- `lua`: the Lua 5.4.8 interpreter (C) bundled in lupa 2.8, built by Lua's own makefile (readline left out; make
  variables set on the command line as Lua's makefile intends).
- `fasttext`: fastText's command-line tool (C++), fasttext 0.9.3, built by CMake like brotli.

Each smoke test checks known answers: brotli decompresses the reference `.compressed` files of its test data to
their originals and round-trips files through compress and decompress; Lua runs Lua's own test files (`testes/`)
that check themselves and a script with known output; fastText trains a classifier on a small labelled text
(one thread, fixed seed) and must label held-out lines correctly.
"""

from __future__ import annotations

import os
import shutil
import tarfile

from compiler_opt.rl import make_default_corpus_lib as corpus_lib
from compiler_opt.tools import compare_builds_lib

LUPA = corpus_lib.Sdist(
    "lupa",
    "2.8",
    "lupa-2.8.tar.gz",
    "d8022641b9ec8ecf2c5ecbe9f47e5a70e0b87c4b5ae921b92cb02a638e0acd08",
    pip_args=(),
)
NAMES = ("brotli", "lua", "fasttext")


def _sdist(project: str) -> corpus_lib.Sdist:
    for lib in corpus_lib.PINNED_LIBRARIES:
        if lib.sdist.project == project:
            return lib.sdist
    raise compare_builds_lib.CompareError(f"no pinned sdist named {project}")


_BROTLI_CMAKE = """cmake_minimum_required(VERSION 3.16)
project(brotli_cli C)
file(GLOB SOURCES c/common/*.c c/dec/*.c c/enc/*.c)
add_executable(brotli ${SOURCES} c/tools/brotli.c)
target_include_directories(brotli PRIVATE c/include)
target_link_libraries(brotli m)
"""

_FASTTEXT_CMAKE = """cmake_minimum_required(VERSION 3.16)
project(fasttext_cli CXX)
set(CMAKE_CXX_STANDARD 17)
set(THREADS_PREFER_PTHREAD_FLAG ON)
find_package(Threads REQUIRED)
file(GLOB SOURCES src/*.cc)
add_executable(fasttext ${SOURCES})
target_link_libraries(fasttext Threads::Threads)
"""

# Configure (no build type: only the flags the wrapper appends), build with at most 2 jobs.
_CMAKE_BUILD = (
    "cmake -S . -B build -DCMAKE_C_COMPILER=$CC -DCMAKE_CXX_COMPILER=$CXX -DCMAKE_BUILD_TYPE= "
    "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null && cmake --build build -j 2"
)

_BROTLI_SMOKE = """
for f in alice29.txt asyoulik.txt lcet10.txt plrabn12.txt x zeros mapsdatazrh ukkonooa quickfox_repeated; do
  "$PROGRAM" -d -c "$DATA/tests/testdata/$f.compressed" > ref.out
  cmp ref.out "$DATA/tests/testdata/$f"
  for q in 1 6; do
    "$PROGRAM" -c -q $q "$DATA/tests/testdata/$f" > rt.br
    "$PROGRAM" -d -c rt.br > rt.out
    cmp rt.out "$DATA/tests/testdata/$f"
  done
done
"$PROGRAM" -c -q 11 "$DATA/tests/testdata/alice29.txt" > q11.br
"$PROGRAM" -d -c q11.br | cmp - "$DATA/tests/testdata/alice29.txt"
"$PROGRAM" -c -q 9 "$PROGRAM" > self.br && "$PROGRAM" -d -c self.br | cmp - "$PROGRAM"
echo brotli smoke test passed
"""

_LUA_SCRIPT = r"""
local function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end
local t = {5, 3, 9, 1, 7}
table.sort(t)
local co = coroutine.wrap(function(a) local b = coroutine.yield(a + 1) return b * 2 end)
local words = {}
for w in ("the quick brown fox"):gmatch("%a+") do words[#words + 1] = w:upper() end
print(fib(20), table.concat(t, ","), co(1), co(21))
print(string.format("%5.2f|%d|%x|%q", math.pi, 7 // 2, 255, "a\n"), ("hello world"):gsub("o", "0"))
print(table.concat(words, " "), select("#", pcall(error, "boom")), 2^53 == 2^53 + 1, math.maxinteger)
"""
_LUA_EXPECTED = """6765\t1,3,5,7,9\t2\t42
 3.14|3|ff|"a\\
"\thell0 w0rld\t2
THE QUICK BROWN FOX\t2\ttrue\t9223372036854775807
"""
# Lua's own test files that check themselves with assert (in portable mode, _U), each ending with "OK".
_LUA_TESTES = (
    "strings.lua",
    "sort.lua",
    "math.lua",
    "nextvar.lua",
    "closure.lua",
    "coroutine.lua",
    "goto.lua",
    "literals.lua",
    "tpack.lua",
    "utf8.lua",
    "vararg.lua",
    "events.lua",
    "constructs.lua",
    "pm.lua",
    "bitwise.lua",
    "calls.lua",
)
_LUA_SMOKE = (
    "cat > known.lua <<'LUA'\n"
    + _LUA_SCRIPT
    + "LUA\ncat > known.expected <<'EXPECTED'\n"
    + _LUA_EXPECTED
    + "EXPECTED\n"
    + '"$PROGRAM" known.lua > known.out\ndiff known.expected known.out\n'
    + 'cp -r "$DATA/testes" testes && cd testes\n'
    + "for t in "
    + " ".join(_LUA_TESTES)
    + '; do "$PROGRAM" -e "_U=true" $t > $t.out 2>&1 || { cat $t.out; exit 1; }; done\n'
    + "echo lua smoke test passed\n"
)

_FASTTEXT_TRAIN = (
    ("fruit", "apple banana orange pear grape mango cherry plum lemon melon"),
    ("vehicle", "car truck bus train bicycle tram scooter van lorry ferry"),
    ("weather", "rain snow wind storm cloud sunny fog hail thunder drizzle"),
)
_FASTTEXT_TEST = (
    ("fruit", "banana mango plum"),
    ("vehicle", "bus tram ferry"),
    ("weather", "fog hail snow"),
    ("fruit", "cherry pear"),
    ("vehicle", "truck van"),
    ("weather", "storm thunder"),
)


def _fasttext_smoke() -> str:
    train_lines = []
    for rotation in range(10):
        for label, words in _FASTTEXT_TRAIN:
            w = words.split()
            k = rotation % len(w)
            train_lines.append(f"__label__{label} " + " ".join(w[k:] + w[:k][:3]))
    test_text = "\n".join(f"__label__{label} {words}" for label, words in _FASTTEXT_TEST)
    inputs = "\n".join(words for _, words in _FASTTEXT_TEST)
    expected = "\n".join(f"__label__{label}" for label, _ in _FASTTEXT_TEST)
    return (
        "cat > train.txt <<'EOF'\n" + "\n".join(train_lines) + "\nEOF\n"
        "cat > test.txt <<'EOF'\n" + test_text + "\nEOF\n"
        "cat > input.txt <<'EOF'\n" + inputs + "\nEOF\n"
        "cat > expected.txt <<'EOF'\n" + expected + "\nEOF\n"
        '"$PROGRAM" supervised -input train.txt -output model -epoch 10 -lr 0.5 -thread 1 -seed 1 -verbose 0\n'
        '"$PROGRAM" predict model.bin input.txt > predicted.txt\n'
        "diff expected.txt predicted.txt\n"
        '"$PROGRAM" test model.bin test.txt | tee test.out\n'
        "grep -qx 'P@1[[:space:]]*1' test.out\n"
        "echo fasttext smoke test passed\n"
    )


def _unpack(sdist: corpus_lib.Sdist, cache_dir: str, dest: str) -> None:
    path = corpus_lib.fetch_sdist(sdist, cache_dir)
    with tarfile.open(path) as tar:
        tar.extractall(dest, filter="data")


def prepare(name: str, work_dir: str, cache_dir: str | None = None) -> compare_builds_lib.Project:
    """Unpacks program `name` (one of NAMES) under `work_dir/sources/` and returns its Project."""
    cache_dir = cache_dir or corpus_lib.default_cache_dir()
    sources = os.path.join(os.path.abspath(work_dir), "sources", name)
    shutil.rmtree(sources, ignore_errors=True)
    os.makedirs(sources)
    if name == "brotli":
        sdist = _sdist("brotli")
        _unpack(sdist, cache_dir, sources)
        root = os.path.join(sources, f"brotli-{sdist.version}")
        with open(os.path.join(root, "CMakeLists.txt"), "w", encoding="utf-8") as f:
            f.write(_BROTLI_CMAKE)
        return compare_builds_lib.Project("brotli", root, _CMAKE_BUILD, "build/brotli", _BROTLI_SMOKE)
    if name == "lua":
        _unpack(LUPA, cache_dir, sources)
        root = os.path.join(sources, f"lupa-{LUPA.version}", "third-party", "lua54")
        os.unlink(os.path.join(root, "all"))  # the makefile's stamp of a finished build
        build = (
            "make -j 2 CC=\"$CC\" CFLAGS='-Wall $(MYCFLAGS) -fno-stack-protector -fno-common' "
            "MYCFLAGS='-std=c99 -DLUA_USE_LINUX' MYLIBS=-ldl"
        )
        return compare_builds_lib.Project("lua", root, build, "lua", _LUA_SMOKE)
    if name == "fasttext":
        sdist = _sdist("fasttext")
        _unpack(sdist, cache_dir, sources)
        root = os.path.join(sources, f"fasttext-{sdist.version}")
        with open(os.path.join(root, "CMakeLists.txt"), "w", encoding="utf-8") as f:
            f.write(_FASTTEXT_CMAKE)
        return compare_builds_lib.Project("fasttext", root, _CMAKE_BUILD, "build/fasttext", _fasttext_smoke())
    raise compare_builds_lib.CompareError(f"unknown bundled program {name!r}: choose from {', '.join(NAMES)}")
