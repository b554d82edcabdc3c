"""The codebases of default corpus v2 (built by corpus_v2_lib): pinned sdists and how to compile them.

Each sdist is fetched by name with `pip download --no-deps --no-binary NAME` and checked against the
SHA-256 pinned here (recorded from the first download). Only library sources are compiled: no
tests, benchmarks, examples, platform code for other systems, or assembly.

Never add (they are kept for independent evaluation), nor copies of them bundled in other packages:
xxhash, zopfli, regex, greenlet, pycryptodome, ujson >= 6, SQLite in any form, 7-Zip (pyppmd,
py7zr's backends), Bullet, anything from LLVM's test-suite. Each library enters once: a bundled copy
of a library already here is excluded from the package that bundles it.
"""

from __future__ import annotations

import dataclasses
import sysconfig

from compiler_opt.rl import make_default_corpus_lib as v1
from compiler_opt.rl.make_default_corpus_lib import Sdist


@dataclasses.dataclass(frozen=True)
class Exclusion:
    """Sources matching `pattern` (fnmatch over paths relative to the codebase root) are left out: `reason`."""

    pattern: str
    reason: str


@dataclasses.dataclass(frozen=True)
class Codebase:
    """What to compile from an unpacked sdist.

    Attributes:
      name: codebase name, the first path component of its module names.
      sdist: where the sources come from.
      license: SPDX expression of the compiled sources.
      root: directory inside the unpacked sdist; compiles run there with relative source paths.
      sources: patterns (relative to `root`) of the TUs: globs (`**` recursive), or with
        `listed_in` fnmatch filters over the listed files.
      listed_in: (Python file relative to the sdist's top directory, variable): the TUs are the
        strings of that list (paths relative to the sdist's top directory) that match `sources`.
      exclude: sources left out, with the reason (recorded in the manifest).
      flags: flags of every compile (include dirs, defines); c_flags / cxx_flags: of C / C++ only.
        The language follows the source suffix (extract_corpus_lib.CXX_SUFFIXES are C++).
      strip_prefix: removed from a source path to make its module name.
      generated: (path relative to `root`, text) files written before compiling (configured headers).
      copied: (destination, source) paths relative to `root`, copied before compiling.
      amalgamation: a combine.py amalgamation (relative to `root`) split back into `root/split/`.
      sample: if > 0, the codebase keeps only this many of its TUs (a deterministic sample, the
        first in SHA-256 order of their module names), so that no codebase dominates the corpus.
    """

    name: str
    sdist: Sdist
    license: str
    root: str
    sources: tuple[str, ...]
    listed_in: tuple[str, str] | tuple[()] = ()
    exclude: tuple[Exclusion, ...] = ()
    flags: tuple[str, ...] = ()
    c_flags: tuple[str, ...] = ()
    cxx_flags: tuple[str, ...] = ()
    strip_prefix: str = ""
    generated: tuple[tuple[str, str], ...] = ()
    copied: tuple[tuple[str, str], ...] = ()
    amalgamation: str = ""
    sample: int = 0


_GRPCIO = Sdist(
    "grpcio", "1.85.1", "grpcio-1.85.1.tar.gz", "5f530287d5de5f7f66089ead81de44f6787162944dab3922efa65dfdff108a1d"
)
_PYNACL = Sdist(
    "pynacl", "1.6.2", "pynacl-1.6.2.tar.gz", "018494d6d696ae03c7e656e5e74cdfd8ea1326962cc401bcf018f1ed8436811c"
)
_CAPSTONE = Sdist(
    "capstone", "5.0.9", "capstone-5.0.9.tar.gz", "0429af292ddc604d3c9344696807e281d5e728db029f00e6a4ea9e3bff1aac9e"
)
_UVLOOP = Sdist(
    "uvloop", "0.23.0", "uvloop-0.23.0.tar.gz", "28d160f51ab4da3b187063652e643dea6831072add4adc1e6d62afbe73b6be27"
)
_PILLOW = Sdist(
    "pillow", "13.0.0", "pillow-13.0.0.tar.gz", "cdcd1ba258178f7356d74170c9a81ba4eab6a5d55748bc402a5a2a6fe6be3510"
)
_PYERFA = Sdist(
    "pyerfa", "2.0.1.5", "pyerfa-2.0.1.5.tar.gz", "17d6b24fe4846c65d5e7d8c362dcb08199dc63b30a236aedd73875cc83e1f6c0"
)
_PYREADSTAT = Sdist(
    "pyreadstat", "1.3.7", "pyreadstat-1.3.7.tar.gz", "c15cc9f58edfd96afb850f65de252c52f5466ff27ce44772d3389d3a0c11b5ca"
)
_CMARKGFM = Sdist(
    "cmarkgfm",
    "2025.10.22",
    "cmarkgfm-2025.10.22.tar.gz",
    "5bec61007b65b919488442c838c58a6c8bf4741f5103c593b2ef180d39818eda",
)
_LIGHTGBM = Sdist(
    "lightgbm", "4.7.0", "lightgbm-4.7.0.tar.gz", "f8e20f682c9aabd000bcf4a7ed8aa6f473c1adfecccae34ec24e823d156f4af0"
)
_SENTENCEPIECE = Sdist(
    "sentencepiece",
    "0.2.0",
    "sentencepiece-0.2.0.tar.gz",
    "a52c19171daaf2e697dc6cbe67684e0fa341b1248966f6aebb541de654d15843",
)
_DUCKDB = Sdist(
    "duckdb", "2.0.0", "duckdb-2.0.0.tar.gz", "09de511ef0dc76a5213e8d3d87a8b89bb4d3e8a6fe73a9f60dc001269946b44f"
)
_XGBOOST = Sdist(
    "xgboost",
    "3.4.1",
    "xgboost-3.4.1.tar.gz",
    "6968a4c71efdfa859df0dfcad0d99211c95c28c4ffd6aecff46efff77d18026a",
    # Its metadata asks for a newer Python than the venv's; only the source is used.
    pip_args=("--ignore-requires-python",),
)
_LLAMA_CPP = Sdist(
    "llama-cpp-python",
    "0.3.36",
    "llama_cpp_python-0.3.36.tar.gz",
    "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e",
)
_DUCKDB_THIRD_PARTY = (
    "fmt/include utf8proc/include fsst re2 miniz hyperloglog fastpforlib fast_float skiplist yyjson/include "
    "zstd/include lz4 brotli/include pcg pdqsort tdigest jaro_winkler vergesort ska_sort mbedtls/include mbedtls "
    "concurrentqueue httplib jemalloc/include parquet thrift snappy"
).split()
_LLAMA_ROOT = "llama_cpp_python-0.3.36/vendor/llama.cpp"

# grpcio lists every file it compiles in this Python list.
_GRPC_LIST = ("src/python/grpcio/grpc_core_dependencies.py", "CORE_SOURCE_FILES")
_ABSL_INCLUDE = "-Ithird_party/abseil-cpp"

# The SPDX licenses of the v1 corpus' libraries (make_default_corpus_lib.PINNED_LIBRARIES).
_V1_LICENSES = {
    "brotli": "MIT",
    "zstd": "BSD-3-Clause OR GPL-2.0-only",
    "lz4": "BSD-2-Clause",
    "fasttext": "MIT",
    "double_conversion": "BSD-3-Clause",
}


def _from_v1(library: v1.Library) -> Codebase:
    """A library of the v1 corpus as a codebase: the same sdist, files and flags (a C++ library's flags apply to its
    C++ sources, what v1 compiles)."""
    flags = {"cxx_flags": library.flags} if library.language == "c++" else {"flags": library.flags}
    return Codebase(
        name=library.name,
        sdist=library.sdist,
        license=_V1_LICENSES[library.name],
        root=library.root,
        sources=library.sources,
        strip_prefix=library.strip_prefix,
        amalgamation=library.amalgamation,
        **flags,
    )


# The first five are the v1 corpus, same files and flags.
CODEBASES = (
    *(_from_v1(library) for library in v1.PINNED_LIBRARIES),
    # grpcio's bundled libraries (grpc core itself is left out: most of its TUs compile in 4-12 s).
    Codebase(
        name="abseil",
        sdist=_GRPCIO,
        license="Apache-2.0",
        root="grpcio-1.85.1",
        sources=("third_party/abseil-cpp/*",),
        listed_in=_GRPC_LIST,
        flags=(_ABSL_INCLUDE,),
        cxx_flags=("-std=c++17",),
        strip_prefix="third_party/abseil-cpp/",
    ),
    Codebase(
        name="boringssl",
        sdist=_GRPCIO,
        license="Apache-2.0 AND ISC AND OpenSSL",
        root="grpcio-1.85.1",
        sources=("third_party/boringssl-with-bazel/*",),
        listed_in=_GRPC_LIST,
        flags=("-Ithird_party/boringssl-with-bazel/include", "-DOPENSSL_NO_ASM", "-D_GNU_SOURCE"),
        cxx_flags=("-std=c++17",),
        strip_prefix="third_party/boringssl-with-bazel/",
    ),
    Codebase(
        name="re2",
        sdist=_GRPCIO,
        license="BSD-3-Clause",
        root="grpcio-1.85.1",
        sources=("third_party/re2/*",),
        listed_in=_GRPC_LIST,
        flags=("-Ithird_party/re2", _ABSL_INCLUDE),
        cxx_flags=("-std=c++17",),
        strip_prefix="third_party/re2/",
    ),
    Codebase(
        name="c_ares",
        sdist=_GRPCIO,
        license="MIT",
        root="grpcio-1.85.1",
        sources=("third_party/cares/*",),
        listed_in=_GRPC_LIST,
        exclude=(Exclusion("*/ares_android.c", "Android only"),),
        flags=(
            "-Ithird_party/cares/cares/include",
            "-Ithird_party/cares",
            "-Ithird_party/cares/cares",
            "-Ithird_party/cares/cares/src/lib/include",
            "-Ithird_party/cares/cares/src/lib",
            "-Ithird_party/cares/config_linux",
            "-DHAVE_CONFIG_H",
            "-DCARES_STATICLIB",
            "-D_GNU_SOURCE",
        ),
        strip_prefix="third_party/cares/cares/src/",
    ),
    Codebase(
        name="upb",
        sdist=_GRPCIO,
        license="BSD-3-Clause",
        root="grpcio-1.85.1",
        sources=("third_party/upb/*", "third_party/utf8_range/*"),
        listed_in=_GRPC_LIST,
        flags=("-Ithird_party/upb", "-Ithird_party/utf8_range", "-Isrc/core/ext/upb-gen"),
        strip_prefix="third_party/",
    ),
    Codebase(
        name="zlib",
        sdist=_GRPCIO,
        license="Zlib",
        root="grpcio-1.85.1",
        sources=("third_party/zlib/*",),
        listed_in=_GRPC_LIST,
        flags=("-Ithird_party/zlib", "-DHAVE_UNISTD_H"),
        strip_prefix="third_party/zlib/",
    ),
    Codebase(
        name="libsodium",
        sdist=_PYNACL,
        license="ISC",
        root="pynacl-1.6.2/src/libsodium/src/libsodium",
        sources=("**/*.c",),
        # What libsodium's configure finds on x86-64 Linux: the intrinsics headers (the files using
        # them set their target features themselves), 128-bit integers, getrandom.
        flags=(
            "-Iinclude",
            "-Iinclude/sodium",
            "-DCONFIGURED=1",
            "-D_GNU_SOURCE",
            "-DNATIVE_LITTLE_ENDIAN",
            "-DHAVE_TI_MODE",
            "-DHAVE_CPUID",
            "-DHAVE_MMINTRIN_H",
            "-DHAVE_EMMINTRIN_H",
            "-DHAVE_PMMINTRIN_H",
            "-DHAVE_TMMINTRIN_H",
            "-DHAVE_SMMINTRIN_H",
            "-DHAVE_AVXINTRIN_H",
            "-DHAVE_AVX2INTRIN_H",
            "-DHAVE_AVX512FINTRIN_H",
            "-DHAVE_WMMINTRIN_H",
            "-DHAVE_RDRAND",
            "-DHAVE_SYS_RANDOM_H",
            "-DHAVE_GETRANDOM",
            "-DHAVE_MLOCK",
            "-DHAVE_MMAP",
        ),
        copied=(("include/sodium/version.h", "../../builds/msvc/version.h"),),
    ),
    Codebase(
        name="capstone",
        sdist=_CAPSTONE,
        license="BSD-3-Clause",
        root="capstone-5.0.9/src",
        sources=("*.c", "arch/*/*.c"),
        flags=(
            "-Iinclude",
            "-DCAPSTONE_USE_SYS_DYN_MEM",
            "-DCAPSTONE_HAS_ARM",
            "-DCAPSTONE_HAS_ARM64",
            "-DCAPSTONE_HAS_BPF",
            "-DCAPSTONE_HAS_EVM",
            "-DCAPSTONE_HAS_M680X",
            "-DCAPSTONE_HAS_M68K",
            "-DCAPSTONE_HAS_MIPS",
            "-DCAPSTONE_HAS_MOS65XX",
            "-DCAPSTONE_HAS_POWERPC",
            "-DCAPSTONE_HAS_RISCV",
            "-DCAPSTONE_HAS_SH",
            "-DCAPSTONE_HAS_SPARC",
            "-DCAPSTONE_HAS_SYSZ",
            "-DCAPSTONE_HAS_TMS320C64X",
            "-DCAPSTONE_HAS_TRICORE",
            "-DCAPSTONE_HAS_WASM",
            "-DCAPSTONE_HAS_X86",
            "-DCAPSTONE_HAS_XCORE",
        ),
    ),
    Codebase(
        name="libuv",
        sdist=_UVLOOP,
        license="MIT",
        root="uvloop-0.23.0/vendor/libuv",
        # The Linux build's files (libuv's CMakeLists.txt).
        sources=(
            "src/*.c",
            *(
                f"src/unix/{f}.c"
                for f in (
                    "async core dl fs getaddrinfo getnameinfo loop-watcher loop pipe poll process "
                    "random-devurandom signal stream tcp thread tty udp linux procfs-exepath proctitle "
                    "random-getrandom random-sysctl-linux"
                ).split()
            ),
        ),
        flags=("-Iinclude", "-Isrc", "-D_GNU_SOURCE", "-D_FILE_OFFSET_BITS=64", "-D_LARGEFILE_SOURCE"),
        strip_prefix="src/",
    ),
    Codebase(
        name="pillow",
        sdist=_PILLOW,
        license="MIT-CMU",
        root="pillow-13.0.0/src/libImaging",
        sources=("*.c",),
        # ImPlatform.h includes Python.h (declarations only: libImaging calls no Python API).
        flags=("-I" + sysconfig.get_paths()["include"], "-D_GNU_SOURCE"),
    ),
    Codebase(
        name="erfa",
        sdist=_PYERFA,
        license="BSD-3-Clause",
        root="pyerfa-2.0.1.5/liberfa/erfa/src",
        sources=("*.c",),
        exclude=(
            Exclusion("t_*.c", "tests"),
            Exclusion("erfaversion.c", "needs the version macros of liberfa's configure"),
        ),
    ),
    Codebase(
        name="readstat",
        sdist=_PYREADSTAT,
        license="MIT",
        root="pyreadstat-1.3.7",
        sources=("src/**/*.c",),
        # What pyreadstat's setup.py leaves out.
        exclude=(
            Exclusion("src/test/*", "tests"),
            Exclusion("src/bin/*", "command-line tool"),
            Exclusion("src/fuzz/*", "fuzzers"),
            Exclusion("*/mod_xlsx.c", "needs libxlsxwriter"),
            Exclusion("*/mod_csv_reader.c", "needs libcsv"),
            Exclusion("*/readstat.c", "command-line tool"),
        ),
        flags=("-Isrc", "-Isrc/sas", "-Isrc/spss", "-Isrc/stata", "-Isrc/txt", "-DHAVE_ZLIB=1"),
        strip_prefix="src/",
    ),
    Codebase(
        name="cmark_gfm",
        sdist=_CMARKGFM,
        license="BSD-2-Clause",
        root="cmarkgfm-2025.10.22",
        sources=("third_party/cmark/src/*.c", "third_party/cmark/extensions/*.c"),
        exclude=(Exclusion("third_party/cmark/src/main.c", "command-line tool"),),
        flags=("-Ithird_party/cmark/src", "-Ithird_party/cmark/extensions", "-Igenerated/unix"),
        strip_prefix="third_party/cmark/",
    ),
    Codebase(
        name="lightgbm",
        sdist=_LIGHTGBM,
        license="MIT",
        root="lightgbm-4.7.0",
        sources=("src/**/*.cpp",),
        exclude=(Exclusion("*/cuda/*", "CUDA only"), Exclusion("src/main.cpp", "command-line entry point")),
        flags=(
            "-Iinclude",
            "-Iexternal_libs/eigen",
            "-Iexternal_libs/fast_double_parser/include",
            "-Iexternal_libs/fmt/include",
            "-DEIGEN_MPL2_ONLY",
            "-DEIGEN_DONT_PARALLELIZE",
            "-DUSE_SOCKET",
        ),
        cxx_flags=("-std=c++17",),
        strip_prefix="src/",
    ),
    Codebase(
        name="sentencepiece",
        sdist=_SENTENCEPIECE,
        license="Apache-2.0 AND BSD-3-Clause",
        root="sentencepiece-0.2.0/sentencepiece",
        sources=("src/*.cc", "src/builtin_pb/*.cc", "third_party/protobuf-lite/*.cc", "third_party/absl/flags/*.cc"),
        exclude=(
            Exclusion("*_test.cc", "tests"),
            Exclusion("src/test_main.cc", "tests"),
            Exclusion("src/testharness.cc", "tests"),
            Exclusion("*_main.cc", "command-line tools"),
        ),
        flags=(
            "-Isrc",
            "-Isrc/builtin_pb",
            "-Ithird_party/protobuf-lite",
            "-Ithird_party",
            "-I.",
            "-DHAVE_PTHREAD",
        ),
        cxx_flags=("-std=c++17",),
        generated=(
            (
                "config.h",
                '#define VERSION "0.2.0"\n#define PACKAGE "sentencepiece"\n#define PACKAGE_STRING "sentencepiece"\n',
            ),
        ),
    ),
    Codebase(
        name="duckdb",
        sdist=_DUCKDB,
        license="MIT",
        root="duckdb-2.0.0/external/duckdb",
        sources=("src/**/*.cpp",),
        flags=(
            "-Isrc/include",
            *(f"-Ithird_party/{d}" for d in _DUCKDB_THIRD_PARTY),
            "-DDUCKDB_MAJOR_VERSION=2",
            "-DDUCKDB_MINOR_VERSION=0",
            "-DDUCKDB_PATCH_VERSION=0",
            '-DDUCKDB_VERSION="v2.0.0"',
            '-DDUCKDB_SOURCE_ID="v2.0.0"',
        ),
        cxx_flags=("-std=c++17",),
        strip_prefix="src/",
        # Its own sources only (its third_party copies of brotli, zstd, lz4, re2 and others are
        # not compiled), sampled: 1,641 TUs would outweigh every other codebase.
        sample=400,
    ),
    Codebase(
        name="xgboost",
        sdist=_XGBOOST,
        license="Apache-2.0",
        root="xgboost-3.4.1/cpp_src",
        sources=("src/**/*.cc", "dmlc-core/src/*.cc", "dmlc-core/src/io/*.cc", "dmlc-core/src/data/*.cc"),
        exclude=(
            Exclusion("dmlc-core/src/io/hdfs_filesys.cc", "needs HDFS"),
            Exclusion("dmlc-core/src/io/s3_filesys.cc", "needs libcurl and OpenSSL"),
            Exclusion("dmlc-core/src/io/azure_filesys.cc", "needs the Azure SDK"),
            Exclusion("src/c_api/coll_c_api.cc", "needs its collective communication plugins"),
        ),
        flags=(
            "-Iinclude",
            "-Idmlc-core/include",
            "-DDMLC_USE_CXX11=1",
            "-DDMLC_CORE_USE_CMAKE",
            "-DXGBOOST_BUILTIN_PREFETCH_PRESENT=1",
            "-DXGBOOST_MM_PREFETCH_PRESENT=1",
        ),
        cxx_flags=("-std=c++17",),
        generated=(
            (
                "include/xgboost/version_config.h",
                "#define XGBOOST_VER_MAJOR 3\n#define XGBOOST_VER_MINOR 4\n#define XGBOOST_VER_PATCH 1\n",
            ),
            (
                "dmlc-core/include/dmlc/build_config.h",
                "#define DMLC_FOPEN_64_PRESENT\n#define DMLC_NANOSLEEP_PRESENT\n#define DMLC_CMAKE_LITTLE_ENDIAN 1\n",
            ),
        ),
    ),
    Codebase(
        name="ggml",
        sdist=_LLAMA_CPP,
        license="MIT",
        root=_LLAMA_ROOT,
        sources=(
            "ggml/src/*.c",
            "ggml/src/*.cpp",
            "ggml/src/ggml-cpu/*.c",
            "ggml/src/ggml-cpu/*.cpp",
            "ggml/src/ggml-cpu/arch/x86/*",
            "ggml/src/ggml-cpu/llamafile/*.cpp",
        ),
        flags=(
            "-Iggml/include",
            "-Iggml/src",
            "-Iggml/src/ggml-cpu",
            "-D_GNU_SOURCE",
            "-DGGML_USE_CPU",
            "-DGGML_SCHED_MAX_COPIES=4",
            "-DGGML_USE_LLAMAFILE",
        ),
        c_flags=("-std=gnu11",),
        cxx_flags=("-std=c++17",),
        strip_prefix="ggml/src/",
        generated=(("ggml/src/ggml-version.h", '#define GGML_VERSION "0.3.36"\n#define GGML_COMMIT "unknown"\n'),),
    ),
    Codebase(
        name="llama",
        sdist=_LLAMA_CPP,
        license="MIT",
        root=_LLAMA_ROOT,
        sources=("src/*.cpp", "src/models/*.cpp"),
        flags=("-Iinclude", "-Iggml/include", "-Isrc"),
        cxx_flags=("-std=c++17",),
        strip_prefix="src/",
        generated=(("src/llama-version.h", '#define LLAMA_VERSION "0.3.36"\n#define LLAMA_COMMIT "unknown"\n'),),
    ),
)
