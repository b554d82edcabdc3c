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


_BROTLI = Sdist(
    "brotli", "1.2.1", "brotli-1.2.1.tar.gz", "02b2f7b5a83485efe448a44ddf7983def05c3bb1dcf917d4f7154070260e13de"
)
_ZSTANDARD = Sdist(
    "zstandard", "0.25.0", "zstandard-0.25.0.tar.gz", "7713e1179d162cf5c7906da876ec2ccb9c3a9dcbdffef0cc7f70c3667a205f0b"
)
_LZ4 = Sdist("lz4", "4.4.5", "lz4-4.4.5.tar.gz", "5f0b9e53c1e82e88c10d7c180069363980136b9d7a8306c4dca4f760d60c39f0")
_FASTTEXT = Sdist(
    "fasttext", "0.9.3", "fasttext-0.9.3.tar.gz", "eb03f2ef6340c6ac9e4398a30026f05471da99381b307aafe2f56e4cd26baaef"
)
_UJSON = Sdist(
    "ujson", "5.11.0", "ujson-5.11.0.tar.gz", "e204ae6f909f099ba6b6b942131cee359ddda2b6e4ea39c12eb8b991fe2010e0"
)
_GRPCIO = Sdist(
    "grpcio", "1.85.1", "grpcio-1.85.1.tar.gz", "5f530287d5de5f7f66089ead81de44f6787162944dab3922efa65dfdff108a1d"
)
_PYNACL = Sdist(
    "pynacl", "1.6.2", "pynacl-1.6.2.tar.gz", "018494d6d696ae03c7e656e5e74cdfd8ea1326962cc401bcf018f1ed8436811c"
)

# grpcio lists every file it compiles in this Python list.
_GRPC_LIST = ("src/python/grpcio/grpc_core_dependencies.py", "CORE_SOURCE_FILES")
_ABSL_INCLUDE = "-Ithird_party/abseil-cpp"

# The first five are the v1 corpus (make_default_corpus_lib.PINNED_LIBRARIES), same files and flags.
CODEBASES = (
    Codebase(
        name="brotli",
        sdist=_BROTLI,
        license="MIT",
        root="brotli-1.2.1",
        sources=("c/common/*.c", "c/dec/*.c", "c/enc/*.c", "c/tools/*.c"),
        flags=("-Ic/include",),
        strip_prefix="c/",
    ),
    Codebase(
        name="zstd",
        sdist=_ZSTANDARD,
        license="BSD-3-Clause OR GPL-2.0-only",
        root="zstandard-0.25.0/zstd",
        sources=("split/**/*.c",),
        # The settings zstd.c's preamble applies to every file it inlines.
        flags=(
            "-DDEBUGLEVEL=0",
            "-DMEM_MODULE",
            "-DXXH_NAMESPACE=ZSTD_",
            "-DXXH_PRIVATE_API",
            "-DXXH_INLINE_ALL",
            "-DZSTD_LEGACY_SUPPORT=0",
            "-DZSTD_MULTITHREAD",
            "-DZSTD_TRACE=0",
            "-DZSTD_DISABLE_ASM=1",
        ),
        strip_prefix="split/",
        amalgamation="zstd.c",
    ),
    Codebase(name="lz4", sdist=_LZ4, license="BSD-2-Clause", root="lz4-4.4.5/lz4libs", sources=("*.c",)),
    Codebase(
        name="fasttext",
        sdist=_FASTTEXT,
        license="MIT",
        root="fasttext-0.9.3/src",
        sources=("*.cc",),
        cxx_flags=("-std=c++17",),
    ),
    Codebase(
        name="double_conversion",
        sdist=_UJSON,
        license="BSD-3-Clause",
        root="ujson-5.11.0/src/ujson/deps/double-conversion",
        sources=("double-conversion/*.cc",),
        cxx_flags=("-std=c++17",),
        strip_prefix="double-conversion/",
    ),
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
)
